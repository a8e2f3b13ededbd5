"""What operators read (SPEC §4.3): delivery search, a message's timeline, the audit log.

`message_filter` is shared with replay and cancel (`operators.py`), so that what an operator
finds is exactly what an action with the same filter selects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVarTuple

from sqlalchemy import Select, and_, or_, select

from adapters.db.models import Delivery, DeliveryEvent, Message, utcnow
from adapters.db.models_operators import OperatorActionRow
from adapters.db.store.base import SqlBase
from gateway.errors import DocumentNotFound
from gateway.operators import DeliveryRow, MessageDetail, MessageFilter, OperatorAction
from gateway.records import TimelineEntry

Columns = TypeVarTuple("Columns")


def delivery_row(d: Delivery, m: Message, timeline: Sequence[TimelineEntry] = ()) -> DeliveryRow:
    return DeliveryRow(
        row_id=d.id,
        message_id=m.public_id,
        delivery_id=d.public_id,
        kind=d.kind,
        from_code=m.from_code,
        to_code=d.recipient_code,
        requested_code=d.requested_code,
        route=d.route,
        system_id=d.system_id,
        state=d.state,
        state_changed_at=d.state_changed_at,
        attempts=d.attempts,
        fail_count=d.fail_count,
        subject=m.subject,
        document_id=m.document_id,
        code_number=m.code_number,
        code_notation=m.code_notation,
        received_at=m.received_at,
        available_at=d.available_at,
        timeline=tuple(timeline),
        peer=d.peer,
        peer_doc_id=d.peer_doc_id,
        downstream_state=d.downstream_state,
        downstream_at=d.downstream_at,
        last_error=d.last_error,
        next_attempt_at=d.next_attempt_at,
    )


def message_filter(
    query: Select[*Columns], where: MessageFilter, now: datetime
) -> Select[*Columns]:
    """`query` selects from deliveries joined to their messages."""
    if where.states:
        query = query.where(Delivery.state.in_(where.states))
    if where.sender:
        query = query.where(Message.from_code == where.sender)
    if where.recipient:
        query = query.where(
            or_(
                Delivery.recipient_code == where.recipient,
                Delivery.requested_code == where.recipient,
            )
        )
    if where.document_id:
        query = query.where(Message.document_id == where.document_id)
    if where.code:
        code = where.code.strip()
        matches = [
            Message.code_number.icontains(code, autoescape=True),
            Message.code_notation.icontains(code, autoescape=True),
        ]
        number, slash, notation = code.partition("/")
        if slash and number and notation:
            matches.append(
                and_(
                    Message.code_number == number.strip(),
                    Message.code_notation.icontains(notation.strip(), autoescape=True),
                )
            )
        query = query.where(or_(*matches))
    if where.since is not None:
        query = query.where(Message.received_at >= where.since)
    if where.until is not None:
        query = query.where(Message.received_at < where.until)
    if where.older_than_seconds is not None:
        query = query.where(
            Delivery.state_changed_at < now - timedelta(seconds=where.older_than_seconds)
        )
    if where.route:
        query = query.where(Delivery.route == where.route)
    if where.stuck:
        query = query.where(
            or_(
                *(
                    and_(
                        Delivery.state == state,
                        Delivery.state_changed_at < now - timedelta(seconds=seconds),
                    )
                    for state, seconds in where.stuck
                )
            )
        )
    return query


class SqlOperatorReads(SqlBase):
    """Search and timelines, each call one read-only transaction."""

    async def find_deliveries(
        self, where: MessageFilter, after: int, limit: int
    ) -> tuple[list[DeliveryRow], int | None]:
        """One page of deliveries (oldest row first) after cursor `after` (a row id)."""
        query = message_filter(
            select(Delivery, Message).join(Message, Message.id == Delivery.message_id),
            where,
            utcnow(),
        )
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.execute(
                    query.where(Delivery.id > after).order_by(Delivery.id).limit(limit + 1)
                )
            ).all()
        page = rows[:limit]
        next_cursor = page[-1][0].id if len(rows) > limit else None
        return [delivery_row(d, m) for d, m in page], next_cursor

    async def message_detail(self, message_id: str) -> MessageDetail:
        """A message and every recipient's delivery with its whole timeline."""
        async with self.transaction(read_only=True) as session:
            message = await session.scalar(select(Message).where(Message.public_id == message_id))
            if message is None:
                raise DocumentNotFound(f"no message {message_id}")
            deliveries = (
                await session.scalars(
                    select(Delivery).where(Delivery.message_id == message.id).order_by(Delivery.id)
                )
            ).all()
            events: dict[int, list[TimelineEntry]] = {}
            if deliveries:
                for e in (
                    await session.scalars(
                        select(DeliveryEvent)
                        .where(DeliveryEvent.delivery_id.in_([d.id for d in deliveries]))
                        .order_by(DeliveryEvent.id)
                    )
                ).all():
                    events.setdefault(e.delivery_id, []).append(
                        TimelineEntry(e.at, e.from_state, e.to_state, e.actor, e.reason, e.attempt)
                    )
        return MessageDetail(
            message_id=message.public_id,
            kind=message.kind,
            sender_system_id=message.sender_system_id,
            from_code=message.from_code,
            document_id=message.document_id,
            code_number=message.code_number,
            code_notation=message.code_notation,
            subject=message.subject,
            business_type=message.business_type,
            status_code=message.status_code,
            received_at=message.received_at,
            payload_sha256=message.payload_sha256,
            payload_size=message.payload_size,
            signature_outcome=message.signature_outcome,
            deliveries=tuple(delivery_row(d, message, events.get(d.id, ())) for d in deliveries),
        )

    async def operator_actions(
        self, after: int, limit: int, operator: str | None = None
    ) -> tuple[list[OperatorAction], int | None]:
        query = select(OperatorActionRow).where(OperatorActionRow.id > after)
        if operator is not None:
            query = query.where(OperatorActionRow.operator == operator)
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.scalars(query.order_by(OperatorActionRow.id).limit(limit + 1))
            ).all()
        page = rows[:limit]
        return [
            OperatorAction(
                id=r.id,
                at=r.at,
                operator=r.operator,
                role=r.role,
                action=r.action,
                target=r.target,
                reason=r.reason,
                dry_run=r.dry_run,
                details=r.details,
            )
            for r in page
        ], (page[-1].id if len(rows) > limit else None)
