"""What every part of the SQL store stands on: one engine, one transaction per unit of work,
SQLite's writers queued in the process, and every delivery state change made through the
state machine (`gateway.delivery_states`) with its timeline row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from adapters.db.engine import READ_ONLY, session_factory
from adapters.db.models import Delivery, DeliveryEvent
from adapters.secretbox import SecretBox
from gateway.delivery_states import (
    CAUGHT_UP,
    DeliveryState,
    can_transition,
    caught_up,
    require_transition,
)
from gateway.errors import ServiceUnavailable
from gateway.records import DeliveryRef
from gateway.types import AgencyCode, DeliveryId


class SqlBase:
    """The engine and the transaction helper; every part of `SqlStore` derives from it."""

    def __init__(self, engine: AsyncEngine, secret_box: SecretBox) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._box = secret_box
        # SQLite has one writer at a time and its busy handler sleeps in growing steps (up to
        # 100 ms) while it waits: queueing writers here instead keeps the tail short. The
        # embedded node is one process, so an in-process lock covers every writer.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work; a lost database becomes `ServiceUnavailable` (503), never a 500.

        `read_only` lets SQLite readers run beside the writer instead of queueing for it."""
        try:
            async with self._sessions() as session:
                if read_only:
                    # Procuring the connection with the option is what begins the transaction.
                    await session.connection(execution_options={READ_ONLY: True})
                    yield session
                    await session.commit()
                else:
                    async with self._writing(), session.begin():
                        yield session
        except (IntegrityError, ProgrammingError, DataError):
            raise
        except (DBAPIError, OSError) as error:
            raise ServiceUnavailable(
                "the database is unreachable; nothing was stored, retry"
            ) from error

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
        else:
            async with self._write_lock:
                yield

    async def ping(self) -> None:
        async with self.transaction(read_only=True) as session:
            await session.execute(text("SELECT 1"))


def state_values(states: Iterable[DeliveryState]) -> list[str]:
    """A named state set as the column values a query compares with (in a stable order)."""
    return sorted(state.value for state in states)


def transition(
    session: AsyncSession,
    delivery: Delivery,
    target: DeliveryState,
    actor: str,
    reason: str | None,
    now: datetime,
) -> None:
    """Move a locked delivery to `target` if the state machine allows it (else the client
    error it raises), with its timeline row."""
    require_transition(delivery.state, target)
    session.add(
        DeliveryEvent(
            delivery_id=delivery.id,
            at=now,
            from_state=delivery.state,
            to_state=target.value,
            actor=actor,
            reason=reason,
            attempt=delivery.attempts,
        )
    )
    delivery.state = target.value
    delivery.state_changed_at = now


async def transition_row(
    session: AsyncSession,
    delivery_id: int,
    current: str,
    attempts: int,
    target: DeliveryState,
    actor: str,
    reason: str | None,
    now: datetime,
    **values: Any,
) -> None:
    """`transition` for a locked delivery read as columns instead of loaded as an object (the
    hot paths): the state machine's check, one UPDATE (with `values`, other columns the step
    sets) and its timeline row."""
    require_transition(current, target)
    await session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values(state=target.value, state_changed_at=now, **values)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        insert(DeliveryEvent).values(
            delivery_id=delivery_id,
            at=now,
            from_state=current,
            to_state=target.value,
            actor=actor,
            reason=reason,
            attempt=attempts,
        )
    )


def catch_up(session: AsyncSession, delivery: Delivery, actor: str, now: datetime) -> None:
    """A consumer that got the delivery before the relay recorded `queued` records that step
    first (`gateway.delivery_states.caught_up`)."""
    current = DeliveryState(delivery.state)
    if caught_up(current) is not current:
        transition(session, delivery, caught_up(current), actor, CAUGHT_UP, now)


async def move_all(
    session: AsyncSession,
    delivery_ids: Sequence[int],
    sources: Iterable[DeliveryState],
    target: DeliveryState,
    actor: str,
    reason: str,
    now: datetime,
) -> list[int]:
    """Move those of `delivery_ids` that are in one of `sources` to `target` in bulk (one
    UPDATE per source state, for the relay's batches), each once and with its timeline row;
    the others stay as they are. Only sources the state machine lets become `target` move."""
    moved: list[int] = []
    for source in sorted(s for s in sources if can_transition(s, target)):
        pending = sorted(set(delivery_ids).difference(moved))
        if not pending:
            break
        ids = (
            (
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(pending), Delivery.state == source.value)
                    .values(state=target.value, state_changed_at=now)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)
                )
            )
            .scalars()
            .all()
        )
        session.add_all(
            DeliveryEvent(
                delivery_id=i,
                at=now,
                from_state=source.value,
                to_state=target.value,
                actor=actor,
                reason=reason,
            )
            for i in ids
        )
        moved.extend(ids)
    return moved


def delivery_ref(delivery: Delivery) -> DeliveryRef:
    """What a caller is told of a delivery: recipient, public id, state."""
    return DeliveryRef(
        AgencyCode(delivery.recipient_code), DeliveryId(delivery.public_id), delivery.state
    )
