"""Connected systems in the store: their credentials (secrets sealed), what they serve and
how they take deliveries. Reads come from the configuration snapshot (`gateway.config`);
every change bumps its version, and every change an operator makes (`by`) is recorded in the
operator audit trail in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery, Message, System, utcnow
from adapters.db.store.base import SqlBase, state_values, transition
from adapters.db.store.config import bump_config
from adapters.db.store.evidence import append_evidence
from adapters.db.store.operator_accounts import operator_action_row
from gateway.delivery_states import UNFINISHED, DeliveryState
from gateway.errors import InvalidRequest, NotFound, SystemHasDeliveries
from gateway.evidence import EvidenceEvent
from gateway.operators.roles import Operator
from gateway.records import RemovedSystem, SystemCredentials, SystemRecord

AUDITED_IDS = 100
"""Delivery ids named in one audit row (the count is always complete)."""


class SqlSystems(SqlBase):
    async def add_system(
        self,
        system_id: str,
        secret: str,
        patterns: Sequence[str],
        delivery_mode: str = "poll",
        push_url: str | None = None,
        *,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> None:
        now = utcnow()
        async with self.transaction() as session:
            existing = await session.scalar(select(System).where(System.system_id == system_id))
            if existing is not None:
                raise InvalidRequest(f"system {system_id} already exists")
            session.add(
                System(
                    system_id=system_id,
                    secret_ciphertext=self._box.seal(secret),
                    serves=list(patterns),
                    delivery_mode=delivery_mode,
                    push_url=push_url,
                )
            )
            _audit(
                session,
                by,
                "system.add",
                system_id,
                reason,
                {"serves": list(patterns), "delivery_mode": delivery_mode, "push_url": push_url},
                now,
            )
            await bump_config(session)

    async def get_system(self, system_id: str) -> SystemRecord | None:
        return (await self.config()).system(system_id)

    async def get_credentials(self, system_id: str) -> SystemCredentials | None:
        return (await self.config()).credentials(system_id)

    async def list_systems(self) -> list[SystemRecord]:
        return (await self.config()).list_systems()

    async def set_system_enabled(
        self,
        system_id: str,
        enabled: bool,
        *,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> bool:
        """A disabled system is refused at authentication (`SystemDisabled`), its agencies
        are locked as recipients (`RecipientLocked`) and nothing is pushed to it. True when
        this changed the flag (doing it twice is recorded, and changes nothing)."""
        now = utcnow()
        async with self.transaction() as session:
            row = await self._system_row(session, system_id)
            changed = row.enabled != enabled
            row.enabled = enabled
            _audit(
                session,
                by,
                "system.enable" if enabled else "system.disable",
                system_id,
                reason,
                {"changed": changed},
                now,
            )
            await bump_config(session)
        return changed

    async def set_system_secret(
        self,
        system_id: str,
        secret: str,
        *,
        previous_until: datetime | None = None,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> None:
        """Rotate a system's secret on every process at once. With `previous_until` the
        secret it replaces still authenticates until then (a grace period for the system's
        software to switch); without, the old one stops working at once. A secret replaced
        during an earlier grace is dropped: only one previous secret is kept."""
        now = utcnow()
        keep = previous_until is not None and previous_until > now
        async with self.transaction() as session:
            row = await self._system_row(session, system_id)
            row.previous_secret_ciphertext = row.secret_ciphertext if keep else None
            row.previous_secret_until = previous_until if keep else None
            row.secret_ciphertext = self._box.seal(secret)
            _audit(
                session,
                by,
                "system.rotate-secret",
                system_id,
                reason,
                {
                    "previous_valid_until": previous_until.isoformat()
                    if keep and previous_until
                    else None
                },
                now,
            )
            await bump_config(session)

    async def remove_system(
        self,
        system_id: str,
        *,
        force: bool = False,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> RemovedSystem:
        """Forget a system: its messages and deliveries keep their rows (and its id), nothing
        is routed to it again. Refused while deliveries to it are unfinished (in its inbox,
        on their way, retrying or dead), unless `force`: those are then cancelled, with the
        removal as the reason in their timelines and in the evidence log."""
        now = utcnow()
        async with self.transaction() as session:
            row = await self._system_row(session, system_id)
            unfinished = (
                select(Delivery, Message)
                .join(Message, Message.id == Delivery.message_id)
                .where(
                    Delivery.system_id == system_id,
                    Delivery.state.in_(state_values(UNFINISHED)),
                )
            )
            if not force:
                count = await session.scalar(
                    select(func.count()).select_from(unfinished.subquery())
                )
                if count:
                    raise SystemHasDeliveries(
                        f"system {system_id} has {count} unfinished deliver"
                        f"{'y' if count == 1 else 'ies'} (in its inbox, on their way, retrying "
                        "or dead): let it collect them, cancel them, or remove it with force "
                        "(which cancels them)",
                        extra={"unfinished": count},
                    )
                cancelled: list[str] = []
            else:
                cancelled = await self._cancel_all(
                    session, unfinished.order_by(Delivery.id), system_id, by, reason, now
                )
            await session.delete(row)
            details: dict[str, Any] = {
                "forced": force,
                "cancelled_count": len(cancelled),
                "cancelled": cancelled[:AUDITED_IDS],
            }
            _audit(session, by, "system.remove", system_id, reason, details, now)
            await bump_config(session)
        return RemovedSystem(system_id, tuple(cancelled))

    @staticmethod
    async def _cancel_all(
        session: AsyncSession,
        query: Any,
        system_id: str,
        by: Operator | None,
        reason: str | None,
        now: datetime,
    ) -> list[str]:
        actor = by.actor if by is not None else "system-removal"
        why = f"system {system_id} removed" + (f": {reason}" if reason else "")
        cancelled: list[str] = []
        for delivery, message in (await session.execute(query.with_for_update(of=Delivery))).all():
            previous = delivery.state
            transition(session, delivery, DeliveryState.CANCELLED, actor, why, now)
            delivery.lease_until = None
            delivery.next_offer_at = None
            await append_evidence(
                session,
                EvidenceEvent.CANCELLED,
                actor,
                now,
                message_id=message.public_id,
                delivery_id=delivery.public_id,
                details={
                    "reason": why,
                    "from_state": previous,
                    "recipient": delivery.recipient_code,
                },
            )
            cancelled.append(delivery.public_id)
        return cancelled

    @staticmethod
    async def _system_row(session: AsyncSession, system_id: str) -> System:
        row = await session.scalar(select(System).where(System.system_id == system_id))
        if row is None:
            raise NotFound(f"no system {system_id}")
        return row


def _audit(
    session: AsyncSession,
    by: Operator | None,
    action: str,
    system_id: str,
    reason: str | None,
    details: dict[str, Any],
    now: datetime,
) -> None:
    """The audit row of an operator's change (none for the node's own setup, e.g. --demo)."""
    if by is not None:
        session.add(
            operator_action_row(by, action, f"system {system_id}", reason, False, details, now)
        )
