"""The inbox in the store: the consumer makes a delivery available, pollers lease, list,
download and acknowledge it.

A lease is an atomic `UPDATE` of locked candidate rows with the lease condition repeated in its
WHERE (as the outbox's claims), so concurrent pollers never get the same item as new.

Polls are the hot path (thousands of systems, a million pending items): every statement here
reads and writes only the columns its answer needs (never a message's JSON columns), in one
round trip per step, and filters by `_pending_term()`, the predicate of the partial index
`ix_deliveries_inbox_pending` (a system's pending items in id order) written literally, so
that both PostgreSQL (also with a generic plan) and SQLite use that index.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update

from adapters.db.models import INBOX_PENDING, Delivery, Message, utcnow
from adapters.db.store.base import SqlBase, catch_up_row, ids_in, state_values, transition_row
from adapters.db.store.evidence import append_evidence
from gateway.backoff import fail_backoff
from gateway.delivery_states import (
    ACKNOWLEDGED_AS,
    ACKNOWLEDGED_DONE_REASON,
    DELIVERABLE,
    DOWNLOADABLE,
    DOWNLOADED_REASON,
    OFFERED,
    OFFERED_AFTER_BACKOFF,
    DeliveryState,
    can_transition,
)
from gateway.errors import DocumentNotFound, NotYetDownloaded
from gateway.evidence import EvidenceEvent
from gateway.records import NO_FILTER, InboxFilter, InboxItem, MadeAvailable
from gateway.types import AgencyCode, DeliveryId, MessageId, MessageKind, RouteKind

S = DeliveryState

ITEM_DELIVERY = (
    Delivery.id,
    Delivery.public_id,
    Delivery.message_id,
    Delivery.kind,
    Delivery.recipient_code,
    Delivery.state,
    Delivery.created_at,
    Delivery.state_changed_at,
)
"""What an `InboxItem` takes from a delivery."""
ITEM_MESSAGE = (
    Message.public_id.label("message_public_id"),
    Message.from_code,
    Message.document_id,
    Message.subject,
    Message.payload_sha256,
    Message.payload_size,
)
"""What it takes from the message (labelled apart from the delivery's columns): never a JSON
column (header, signature, warnings)."""


def _states_in(values: Iterable[str]) -> Any:
    """`deliveries.state IN ('a', 'b')` with the values written into the SQL (a constant
    term a partial index's predicate can be matched with), sorted for one spelling."""
    return Delivery.state.in_(
        bindparam(None, sorted(values), expanding=True, literal_execute=True, unique=True)
    )


def _pending_term() -> Any:
    return _states_in(INBOX_PENDING)


def _item(
    delivery: Any,
    message: Any,
    first_handout: bool = False,
    state: str | None = None,
    updated_at: datetime | None = None,
) -> InboxItem:
    """An item from a row of `ITEM_DELIVERY` and one of `ITEM_MESSAGE` (or one row of both);
    `state` and `updated_at` when this transaction moved the delivery."""
    return InboxItem(
        delivery_id=DeliveryId(delivery.public_id),
        message_id=MessageId(message.message_public_id),
        kind=MessageKind(delivery.kind),
        from_code=AgencyCode(message.from_code),
        to_code=AgencyCode(delivery.recipient_code),
        document_id=message.document_id,
        subject=message.subject,
        state=state or delivery.state,
        created_at=delivery.created_at,
        updated_at=updated_at or delivery.state_changed_at,
        payload_sha256=message.payload_sha256,
        payload_size=message.payload_size,
        first_handout=first_handout,
    )


def _offerable(now: datetime) -> Any:
    """Offered to pollers now: in the inbox, or after `fail` once the re-offer time came
    (`_pending_term()` beside it is implied, and tells the planner which index serves)."""
    return and_(
        _pending_term(),
        or_(
            _states_in(state_values(OFFERED)),
            and_(
                _states_in(state_values(OFFERED_AFTER_BACKOFF)),
                or_(Delivery.next_offer_at.is_(None), Delivery.next_offer_at <= now),
            ),
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
    async def make_available(self, delivery_id: str, actor: str) -> MadeAvailable | None:
        """Idempotent: a redelivered broker message finds the item already available (None:
        nothing moved).

        Every package passes here once per recipient, so it reads columns, not objects: the
        delivery locked with its message's id and hash, its steps (the relay's, caught up,
        then its own) through `transition_row`, and the evidence entry."""
        now = utcnow()
        async with self.transaction() as session:
            row = (
                await session.execute(
                    select(
                        Delivery.id,
                        Delivery.state,
                        Delivery.attempts,
                        Delivery.system_id,
                        Delivery.recipient_code,
                        Delivery.available_at,
                        Message.public_id,
                        Message.payload_sha256,
                        Message.received_at,
                    )
                    .join(Message, Message.id == Delivery.message_id)
                    # The route is checked: a message left in the broker from before the
                    # delivery was re-routed elsewhere (`agencies merge`) finds nothing to do.
                    .where(
                        Delivery.public_id == delivery_id, Delivery.route == RouteKind.INBOX.value
                    )
                    .with_for_update(of=Delivery)
                )
            ).first()
            if row is None or DeliveryState(row.state) not in DELIVERABLE:
                return None
            current = await catch_up_row(
                session, row.id, DeliveryState(row.state), row.attempts, actor, now
            )
            await transition_row(
                session,
                row.id,
                current.value,
                row.attempts,
                S.AVAILABLE,
                actor,
                f"in the inbox of {row.system_id}",
                now,
                available_at=now,
            )
            await append_evidence(
                session,
                EvidenceEvent.DELIVERED,
                actor,
                now,
                message_id=row.public_id,
                delivery_id=delivery_id,
                payload_sha256=row.payload_sha256,
                details={"recipient": row.recipient_code, "system": row.system_id},
            )
            return MadeAvailable(
                MessageId(row.public_id), row.received_at, first_time=row.available_at is None
            )

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
        nothing; `first_handout` tells whether this is the first time it is handed out.
        Two statements: the lease (returning the items' delivery columns) and their
        messages' columns by primary key."""
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
            .returning(*ITEM_DELIVERY, Delivery.lease_count)
            .execution_options(synchronize_session=False)
        )
        async with self.transaction() as session:
            leased = sorted((await session.execute(statement)).all(), key=lambda row: row.id)
            if not leased:
                return []
            messages = {
                row.id: row
                for row in await session.execute(
                    select(Message.id, *ITEM_MESSAGE).where(
                        ids_in(session, Message.id, {row.message_id for row in leased})
                    )
                )
            }
        return [_item(d, messages[d.message_id], first_handout=d.lease_count == 1) for d in leased]

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
                    select(*ITEM_DELIVERY, Delivery.lease_until, *ITEM_MESSAGE)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(
                        Delivery.system_id == system_id,
                        Delivery.kind == kind.value,
                        _pending_term(),
                        Delivery.id > after,
                    )
                    .order_by(Delivery.id)
                    .limit(limit + 1)
                )
            ).all()
        page = rows[:limit]
        next_cursor = page[-1].id if len(rows) > limit else None
        return [
            _item(
                row,
                row,
                first_handout=row.state == S.AVAILABLE.value
                and (row.lease_until is None or row.lease_until < now),
            )
            for row in page
        ], next_cursor

    async def download(self, system_id: str, delivery_id: str, actor: str) -> InboxItem:
        """The recipient fetched the package: `available`/`fail` → `downloaded`."""
        now = utcnow()
        async with self.transaction() as session:
            row = (
                await session.execute(
                    select(*ITEM_DELIVERY, Delivery.attempts, Delivery.available_at, *ITEM_MESSAGE)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(Delivery.public_id == delivery_id, Delivery.system_id == system_id)
                    .with_for_update(of=Delivery)
                )
            ).first()
            if row is None or row.state not in DOWNLOADABLE:
                raise DocumentNotFound(f"no package {delivery_id} in the inbox of {system_id}")
            item = _item(row, row)
            if can_transition(S(row.state), S.DOWNLOADED):
                since = row.available_at if row.state == S.AVAILABLE.value else None
                await transition_row(
                    session,
                    row.id,
                    row.state,
                    row.attempts,
                    S.DOWNLOADED,
                    actor,
                    DOWNLOADED_REASON,
                    now,
                    downloaded_at=now,
                )
                item = _item(row, row, state=S.DOWNLOADED.value, updated_at=now)
                if since is not None:
                    item = replace(item, available_since=since)
            await append_evidence(
                session,
                EvidenceEvent.DOWNLOADED,
                actor,
                now,
                message_id=item.message_id,
                delivery_id=delivery_id,
                payload_sha256=item.payload_sha256,
                details={"recipient": item.to_code},
            )
            return item

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
            row = (
                await session.execute(
                    select(
                        Delivery.id,
                        Delivery.state,
                        Delivery.attempts,
                        Delivery.fail_count,
                        Delivery.recipient_code,
                    )
                    .where(Delivery.public_id == delivery_id, Delivery.system_id == system_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                raise DocumentNotFound(f"no package {delivery_id} in the inbox of {system_id}")
            row_id, state, attempts, fail_count, recipient = row
            target = ACKNOWLEDGED_AS.get(outcome)
            if target is None or state == target.value:
                return str(state)  # `processing`, or a repeated acknowledgement
            if state == S.AVAILABLE.value:
                raise NotYetDownloaded(
                    f"package {delivery_id} must be downloaded (getEdoc) "
                    f"before it is acknowledged '{outcome}'"
                )
            values: dict[str, Any] = {"lease_until": None}
            if target is S.DONE:
                values["done_at"] = now
                why = reason or ACKNOWLEDGED_DONE_REASON
            else:
                wait = fail_backoff(retry_after, fail_count + 1)
                values["fail_count"] = fail_count + 1
                values["next_offer_at"] = now + timedelta(seconds=wait)
                why = reason or f"acknowledged fail: offered again in {wait:.0f} s"
            await transition_row(
                session, row_id, state, attempts, target, actor, why, now, **values
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
                    "recipient": recipient,
                },
            )
            return target.value
