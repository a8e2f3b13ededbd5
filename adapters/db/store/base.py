"""What every part of the SQL store stands on: one engine, one transaction per unit of work,
SQLite's writers queued in the process, and every delivery state change made through the
state machine (`gateway.delivery_states`) with its timeline row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, any_, bindparam, insert, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from adapters.db.engine import READ_ONLY, session_factory
from adapters.db.models import Delivery, DeliveryEvent, table
from adapters.db.store.config import CONFIG_CHANGED, VERSION_QUERY, load_config, read_version
from adapters.secretbox import SecretBox
from gateway.config import ConfigCache, NodeConfig
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

EVIDENCE_APPENDED = "lienthong_evidence_appended"
"""`session.info` key set by `append_evidence`: the commit wakes the evidence sequencer."""


class SqlBase:
    """The engine, the transaction helper and the configuration cache; every part of
    `SqlStore` derives from it."""

    def __init__(self, engine: AsyncEngine, secret_box: SecretBox) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._box = secret_box
        # SQLite has one writer at a time and its busy handler sleeps in growing steps (up to
        # 100 ms) while it waits: queueing writers here instead keeps the tail short. The
        # embedded node is one process, so an in-process lock covers every writer.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # The version check is one statement: on PostgreSQL it runs outside a transaction
        # (one round trip instead of BEGIN, SELECT, COMMIT).
        self._autocommit = (
            None if self._write_lock else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._opened: dict[str, str] = {}
        self._config = ConfigCache(self._config_version, self._load_config)
        self._evidence_appended: Callable[[], None] = lambda: None

    def on_evidence_appended(self, callback: Callable[[], None]) -> None:
        """`callback` runs after each commit that appended evidence (the sequencer's wake)."""
        self._evidence_appended = callback

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def transaction(self, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """One unit of work; a lost database becomes `ServiceUnavailable` (503), never a 500.

        `read_only` lets SQLite readers run beside the writer instead of queueing for it.
        The connection is checked out and the transaction begun before the work runs: a
        pooled connection found dead there (the database restarted) is replaced once, since
        nothing was done on it yet (there is no pre-ping round trip per checkout). A
        connection lost later fails the unit of work: 503, and nothing was committed unless
        the commit itself was lost with its answer. A transaction that bumped the
        configuration version tells this process's cache once it has committed; one that
        appended evidence wakes the evidence sequencer."""
        try:
            async with self._writing(read_only):
                session = await self._open(read_only)
                try:
                    yield session
                    await session.commit()
                except BaseException:
                    await session.rollback()
                    raise
                finally:
                    await session.close()
        except (IntegrityError, ProgrammingError, DataError):
            raise
        except (DBAPIError, OSError) as error:
            raise ServiceUnavailable(UNREACHABLE) from error
        except PoolTimeout as error:
            raise ServiceUnavailable(POOL_EXHAUSTED) from error
        if session.info.get(CONFIG_CHANGED):
            self._config.changed()
        if session.info.pop(EVIDENCE_APPENDED, False):
            self._evidence_appended()

    async def _open(self, read_only: bool) -> AsyncSession:
        """A session with its connection checked out and its transaction begun; a connection
        that turns out dead at BEGIN is discarded and the next one tried, once."""
        options = {READ_ONLY: True} if read_only else {}
        for attempt in (1, 2):
            session: AsyncSession = self._sessions()
            try:
                connection = await session.connection(execution_options=options)
                await begin_now(connection)
            except BaseException as error:
                disconnected = await discard_if_disconnected(self.engine, session, error)
                await session.close()
                if attempt == 1 and disconnected:
                    continue
                if disconnected or isinstance(error, driver_errors(self.engine)):
                    raise ServiceUnavailable(UNREACHABLE) from error
                raise
            return session
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def _writing(self, read_only: bool = False) -> AsyncIterator[None]:
        if self._write_lock is None or read_only:
            yield
        else:
            async with self._write_lock:
                yield

    async def ping(self) -> None:
        async with self.transaction(read_only=True) as session:
            await session.execute(text("SELECT 1"))

    # -- the configuration cache (gateway.config) -----------------------------------------

    async def config(self) -> NodeConfig:
        """The configuration snapshot: checked against the database's version once per
        request (or per call outside one), reloaded only when it changed."""
        return await self._config.current()

    @property
    def config_loads(self) -> int:
        return self._config.loads

    async def _config_version(self) -> int:
        if self._autocommit is None:
            async with self.transaction(read_only=True) as session:
                return await read_version(session)
        for attempt in (1, 2):
            try:
                async with self._autocommit.connect() as connection:
                    version = (await connection.exec_driver_sql(VERSION_QUERY)).scalar()
            except DBAPIError as error:
                if attempt == 1 and error.connection_invalidated:
                    continue  # a read: safe to run again on a fresh connection
                raise ServiceUnavailable(UNREACHABLE) from error
            except OSError as error:
                raise ServiceUnavailable(UNREACHABLE) from error
            except PoolTimeout as error:
                raise ServiceUnavailable(POOL_EXHAUSTED) from error
            if version is None:
                raise RuntimeError("config_version is missing: run `lienthong migrate`")
            return int(version)
        raise AssertionError("unreachable")

    async def _load_config(self) -> NodeConfig:
        async with self.transaction(read_only=True) as session:
            config = await load_config(session, self._open_secret)
        live = {entry.secret_ciphertext for entry in config.systems.values()}
        for ciphertext in set(self._opened).difference(live):
            del self._opened[ciphertext]
        return config

    def _open_secret(self, ciphertext: str) -> str:
        """A system's secret, decrypted once per process and ciphertext (a rotated secret is
        a new ciphertext)."""
        secret = self._opened.get(ciphertext)
        if secret is None:
            secret = self._opened[ciphertext] = self._box.open(ciphertext)
        return secret


UNREACHABLE = "the database is unreachable; nothing was stored, retry"
POOL_EXHAUSTED = (
    "every database connection of this gateway process is in use; nothing was stored, retry"
)


def driver_errors(engine: AsyncEngine) -> tuple[type[BaseException], ...]:
    """The driver's own errors, as `begin_now` may see them (not wrapped by SQLAlchemy)."""
    error = getattr(engine.dialect.dbapi, "Error", None)
    return (error,) if isinstance(error, type) else ()


async def begin_now(connection: AsyncConnection) -> None:
    """Send asyncpg's BEGIN now instead of just before the first statement: the same round
    trip, made where a dead connection can still be swapped for another."""
    if connection.dialect.driver != "asyncpg":
        return  # SQLite begins when the connection is procured (engine.py)
    raw = await connection.get_raw_connection()
    adapted = raw.dbapi_connection
    start = getattr(adapted, "_start_transaction", None)
    if start is not None and getattr(adapted, "_transaction", True) is None:
        await start()


async def discard_if_disconnected(
    engine: AsyncEngine, session: AsyncSession, error: BaseException
) -> bool:
    """True (and the connection invalidated, so the pool does not hand it out again) when
    `error` says the connection is gone."""
    if isinstance(error, DBAPIError):
        return bool(error.connection_invalidated)
    if not isinstance(error, driver_errors(engine)):
        return False  # not from `begin_now`: no connection to look at
    try:
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        adapted = raw.dbapi_connection
        if not connection.dialect.is_disconnect(cast(Any, error), adapted, None):
            return False
        await connection.invalidate(error)
    except Exception:
        return False
    return True


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
    deliveries = table(Delivery)
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(state=target.value, state_changed_at=now, **values)
    )
    await session.execute(
        insert(table(DeliveryEvent)).values(
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


async def catch_up_row(
    session: AsyncSession,
    delivery_id: int,
    current: DeliveryState,
    attempts: int,
    actor: str,
    now: datetime,
) -> DeliveryState:
    """`catch_up` for a delivery read as columns (`transition_row`); the state it is in
    after the catch-up."""
    target = caught_up(current)
    if target is not current:
        await transition_row(
            session, delivery_id, current.value, attempts, target, actor, CAUGHT_UP, now
        )
    return target


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
                    .where(ids_in(session, Delivery.id, pending), Delivery.state == source.value)
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


def ids_in(session: AsyncSession, column: Any, ids: Iterable[int]) -> Any:
    """`column IN (ids)` for a batch of integer ids. On PostgreSQL one array parameter
    (`= ANY(:ids)`): an expanding IN renders one bind parameter per id on every execution,
    which was most of the cost of a 500-item poll's read-back; SQLite has no arrays."""
    values = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(BigInteger)))
    return column.in_(values)


def delivery_ref(delivery: Delivery) -> DeliveryRef:
    """What a caller is told of a delivery: recipient, public id, state."""
    return DeliveryRef(
        AgencyCode(delivery.recipient_code), DeliveryId(delivery.public_id), delivery.state
    )
