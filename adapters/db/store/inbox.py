"""The inbox in the store: the consumer makes a delivery available, pollers lease, list,
download and acknowledge it.

A lease is an atomic `UPDATE` of locked candidate rows with the lease condition repeated in its
WHERE (as the outbox's claims), so concurrent pollers never get the same item as new.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from adapters.db.models import Delivery, Message, utcnow
from adapters.db.store.base import SqlBase, catch_up, state_values, transition
from adapters.db.store.evidence import append_evidence
from gateway.backoff import fail_backoff
from gateway.delivery_states import (
    ACKNOWLEDGED_AS,
    DELIVERABLE,
    DOWNLOADABLE,
    OFFERED,
    OFFERED_AFTER_BACKOFF,
    PENDING_FOR_RECIPIENT,
    DeliveryState,
    can_transition,
)
from gateway.errors import DocumentNotFound, NotYetDownloaded
from gateway.evidence import EvidenceEvent
from gateway.records import NO_FILTER, InboxFilter, InboxItem
from gateway.types import AgencyCode, DeliveryId, MessageId, MessageKind

S = DeliveryState


def _inbox_item(d: Delivery, m: Message, first_handout: bool = False) -> InboxItem:
    return InboxItem(
        delivery_id=DeliveryId(d.public_id),
        message_id=MessageId(m.public_id),
        kind=MessageKind(d.kind),
        from_code=AgencyCode(m.from_code),
        to_code=AgencyCode(d.recipient_code),
        document_id=m.document_id,
        subject=m.subject,
        state=d.state,
        created_at=d.created_at,
        updated_at=d.state_changed_at,
        payload_sha256=m.payload_sha256,
        payload_size=m.payload_size,
        first_handout=first_handout,
    )


def _offerable(now: datetime) -> Any:
    """Offered to pollers now: in the inbox, or after `fail` once the re-offer time came."""
    return or_(
        Delivery.state.in_(state_values(OFFERED)),
        and_(
            Delivery.state.in_(state_values(OFFERED_AFTER_BACKOFF)),
            or_(Delivery.next_offer_at.is_(None), Delivery.next_offer_at <= now),
        ),
    )


def _filtered(only: InboxFilter) -> list[Any]:
    conditions: list[Any] = []
    if only.created_from is not None:
        conditions.append(Delivery.created_at >= only.created_from)
    if only.created_before is not None:
        conditions.append(Delivery.created_at < only.created_before)
    if only.recipients is not None:
        conditions.append(Delivery.recipient_code.in_(sorted(only.recipients)))
    if only.handed_out is not None:
        conditions.append(
            Delivery.lease_count > 0 if only.handed_out else Delivery.lease_count == 0
        )
    return conditions


class SqlInbox(SqlBase):
    async def make_available(self, delivery_id: str, actor: str) -> bool:
        """Idempotent: a redelivered broker message finds the item already available."""
        now = utcnow()
        async with self.transaction() as session:
            delivery = await session.scalar(
                select(Delivery).where(Delivery.public_id == delivery_id).with_for_update()
            )
            if delivery is None or delivery.state not in DELIVERABLE:
                return False
            catch_up(session, delivery, actor, now)
            transition(
                session, delivery, S.AVAILABLE, actor, f"in the inbox of {delivery.system_id}", now
            )
            delivery.available_at = now
            message = await session.get(Message, delivery.message_id)
            assert message is not None
            await append_evidence(
                session,
                EvidenceEvent.DELIVERED,
                actor,
                now,
                message_id=message.public_id,
                delivery_id=delivery_id,
                payload_sha256=message.payload_sha256,
                details={"recipient": delivery.recipient_code, "system": delivery.system_id},
            )
            return True

    async def lease_inbox(
        self,
        system_id: str,
        kind: MessageKind,
        limit: int,
        lease_seconds: float,
        only: InboxFilter = NO_FILTER,
    ) -> list[InboxItem]:
        """Hand pending items to one poller and hide them from the others for a lease.

        An item nobody acknowledges comes back after the lease, so a crashed poller loses
        nothing; `first_handout` tells whether this is the first time it is handed out."""
        now = utcnow()
        unleased = or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
        mine = and_(Delivery.system_id == system_id, Delivery.kind == kind.value, *_filtered(only))
        # A CTE, not `IN (subquery)`: PostgreSQL may re-run a LIMIT subquery inside a
        # semi-join and hand out more than `limit` items; a locking CTE runs once.
        candidates = (
            select(Delivery.id)
            .where(mine, _offerable(now), unleased)
            .order_by(Delivery.id)
            .offset(only.skip)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .cte("candidates")
        )
        statement = (
            update(Delivery)
            .where(Delivery.id.in_(select(candidates.c.id)), mine, _offerable(now), unleased)
            .values(
                lease_until=now + timedelta(seconds=lease_seconds),
                lease_count=Delivery.lease_count + 1,
            )
            .returning(Delivery.id)
            .execution_options(synchronize_session=False)
        )
        async with self.transaction() as session:
            ids = (await session.execute(statement)).scalars().all()
            rows = (
                await session.execute(
                    select(Delivery, Message)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(Delivery.id.in_(ids))
                    .order_by(Delivery.id)
                )
            ).all()
        return [_inbox_item(d, m, first_handout=d.lease_count == 1) for d, m in rows]

    async def count_inbox(self, system_id: str, kind: MessageKind) -> int:
        """Items waiting for the caller's agencies, handed out or not (countReceiveEdoc)."""
        async with self.transaction(read_only=True) as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(
                        Delivery.system_id == system_id,
                        Delivery.kind == kind.value,
                        _offerable(utcnow()),
                    )
                )
                or 0
            )

    async def list_inbox(
        self, system_id: str, kind: MessageKind, after: int, limit: int
    ) -> tuple[list[InboxItem], int | None]:
        """Read-only page of pending items after cursor `after` (the internal row id)."""
        now = utcnow()
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.execute(
                    select(Delivery, Message)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(
                        Delivery.system_id == system_id,
                        Delivery.kind == kind.value,
                        Delivery.state.in_(state_values(PENDING_FOR_RECIPIENT)),
                        Delivery.id > after,
                    )
                    .order_by(Delivery.id)
                    .limit(limit + 1)
                )
            ).all()
        page = rows[:limit]
        next_cursor = page[-1][0].id if len(rows) > limit else None
        return [
            _inbox_item(
                d,
                m,
                first_handout=d.state == S.AVAILABLE.value
                and (d.lease_until is None or d.lease_until < now),
            )
            for d, m in page
        ], next_cursor

    async def download(self, system_id: str, delivery_id: str, actor: str) -> InboxItem:
        """The recipient fetched the package: `available`/`fail` → `downloaded`."""
        now = utcnow()
        async with self.transaction() as session:
            row = (
                await session.execute(
                    select(Delivery, Message)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(Delivery.public_id == delivery_id, Delivery.system_id == system_id)
                    .with_for_update(of=Delivery)
                )
            ).first()
            if row is None or row[0].state not in DOWNLOADABLE:
                raise DocumentNotFound(f"no package {delivery_id} in the inbox of {system_id}")
            delivery, message = row
            if can_transition(S(delivery.state), S.DOWNLOADED):
                transition(session, delivery, S.DOWNLOADED, actor, None, now)
                delivery.downloaded_at = now
            await append_evidence(
                session,
                EvidenceEvent.DOWNLOADED,
                actor,
                now,
                message_id=message.public_id,
                delivery_id=delivery_id,
                payload_sha256=message.payload_sha256,
                details={"recipient": delivery.recipient_code},
            )
            return _inbox_item(delivery, message)

    async def acknowledge(
        self,
        system_id: str,
        delivery_id: str,
        outcome: str,
        reason: str | None,
        actor: str,
        retry_after: float,
    ) -> str:
        """`done` ends the delivery; `fail` offers it again after `retry_after` seconds."""
        now = utcnow()
        async with self.transaction() as session:
            delivery = await session.scalar(
                select(Delivery)
                .where(Delivery.public_id == delivery_id, Delivery.system_id == system_id)
                .with_for_update()
            )
            if delivery is None:
                raise DocumentNotFound(f"no package {delivery_id} in the inbox of {system_id}")
            target = ACKNOWLEDGED_AS.get(outcome)
            if target is None or delivery.state == target.value:
                return delivery.state  # `processing`, or a repeated acknowledgement
            if delivery.state == S.AVAILABLE.value:
                raise NotYetDownloaded(
                    f"package {delivery_id} must be downloaded (getEdoc) "
                    f"before it is acknowledged '{outcome}'"
                )
            transition(session, delivery, target, actor, reason, now)
            delivery.lease_until = None
            if target is S.DONE:
                delivery.done_at = now
            else:
                delivery.fail_count += 1
                delivery.next_offer_at = now + timedelta(
                    seconds=fail_backoff(retry_after, delivery.fail_count)
                )
            await append_evidence(
                session,
                EvidenceEvent.ACKNOWLEDGED,
                actor,
                now,
                delivery_id=delivery_id,
                details={
                    "outcome": outcome,
                    "reason": reason,
                    "recipient": delivery.recipient_code,
                },
            )
            return delivery.state
