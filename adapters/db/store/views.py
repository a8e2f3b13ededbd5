"""What senders see in the store: their sent packages per recipient (transport state and
latest business status, with timelines if asked), and a package's metadata and bytes for a
sender or a recipient allowed to read them (`gateway.delivery_states.may_read`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from adapters.db.models import Delivery, DeliveryEvent, Message, MessageLink, StoredAttachment
from adapters.db.store.base import SqlBase, state_values
from gateway.delivery_states import Part, may_read, readable_states
from gateway.errors import DocumentNotFound, NotFound
from gateway.records import AttachmentView, DeliveryView, LinkView, MessageView, TimelineEntry
from gateway.types import AgencyCode, DeliveryId, MessageId, MessageKind


def _not_visible(message_id: str, system_id: str) -> NotFound:
    return DocumentNotFound(f"no package {message_id} visible to {system_id}")


def delivery_view(
    d: Delivery,
    m: Message,
    timeline: Sequence[TimelineEntry] = (),
    status: tuple[str, datetime, str | None] | None = None,
) -> DeliveryView:
    code, at, description = status or (None, None, None)
    return DeliveryView(
        message_id=MessageId(m.public_id),
        delivery_id=DeliveryId(d.public_id),
        kind=MessageKind(m.kind),
        from_code=AgencyCode(m.from_code),
        to_code=AgencyCode(d.recipient_code),
        requested_code=AgencyCode(d.requested_code),
        subject=m.subject,
        code_number=m.code_number,
        code_notation=m.code_notation,
        document_id=m.document_id,
        sent_at=m.received_at,
        available_at=d.available_at,
        state=d.state,
        state_changed_at=d.state_changed_at,
        fail_count=d.fail_count,
        timeline=tuple(timeline),
        route=d.route,
        peer=d.peer,
        peer_doc_id=d.peer_doc_id,
        downstream_state=d.downstream_state,
        downstream_at=d.downstream_at,
        business_status=code,
        business_status_at=at,
        business_status_desc=description,
    )


async def _latest_statuses(
    session: AsyncSession, message_ids: set[int]
) -> dict[tuple[int, str], tuple[str, datetime, str | None]]:
    """(document row, recipient) → the latest business status it sent back."""
    if not message_ids:
        return {}
    rows = (
        await session.execute(
            select(
                MessageLink.target_message_id,
                Message.from_code,
                Message.status_code,
                Message.received_at,
                Message.subject,
            )
            .join(Message, Message.id == MessageLink.message_id)
            .where(
                MessageLink.relation == "answers",
                MessageLink.target_message_id.in_(message_ids),
                Message.status_code != "13",
            )
            .order_by(Message.id)
        )
    ).all()
    return {
        (r.target_message_id, r.from_code): (r.status_code, r.received_at, r.subject) for r in rows
    }


class SqlViews(SqlBase):
    async def sent_deliveries(
        self,
        system_id: str,
        message_id: str | None = None,
        with_timeline: bool = False,
        limit: int = 1000,
    ) -> list[DeliveryView]:
        query = (
            select(Delivery, Message)
            .join(Message, Message.id == Delivery.message_id)
            .where(Message.sender_system_id == system_id)
        )
        if message_id is not None:
            query = query.where(Message.public_id == message_id)
        query = query.order_by(Message.id.desc(), Delivery.id).limit(limit)
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(query)).all()
            events: dict[int, list[TimelineEntry]] = {}
            if with_timeline and rows:
                for e in (
                    await session.scalars(
                        select(DeliveryEvent)
                        .where(DeliveryEvent.delivery_id.in_([d.id for d, _ in rows]))
                        .order_by(DeliveryEvent.id)
                    )
                ).all():
                    events.setdefault(e.delivery_id, []).append(
                        TimelineEntry(e.at, e.from_state, e.to_state, e.actor, e.reason, e.attempt)
                    )
            statuses = await _latest_statuses(session, {m.id for _, m in rows})
        return [
            delivery_view(d, m, events.get(d.id, ()), statuses.get((m.id, d.recipient_code)))
            for d, m in rows
        ]

    async def message_view(self, message_id: str, system_id: str) -> MessageView:
        """Metadata of a package its sender or one of its recipients' systems may read."""
        async with self.transaction(read_only=True) as session:
            message = await session.scalar(select(Message).where(Message.public_id == message_id))
            if message is None:
                raise _not_visible(message_id, system_id)
            is_sender = message.sender_system_id == system_id
            query = select(Delivery).where(Delivery.message_id == message.id)
            if not is_sender:
                query = query.where(
                    Delivery.system_id == system_id,
                    Delivery.state.in_(state_values(readable_states(Part.METADATA))),
                )
            deliveries = (await session.scalars(query.order_by(Delivery.id))).all()
            if not is_sender and not deliveries:
                raise _not_visible(message_id, system_id)
            statuses = await _latest_statuses(session, {message.id})
            attachments = (
                await session.scalars(
                    select(StoredAttachment)
                    .where(StoredAttachment.message_id == message.id)
                    .order_by(StoredAttachment.position)
                )
            ).all()
            target = aliased(Message)
            links = (
                await session.execute(
                    select(MessageLink, target.public_id)
                    .outerjoin(target, target.id == MessageLink.target_message_id)
                    .where(MessageLink.message_id == message.id)
                    .order_by(MessageLink.id)
                )
            ).all()
        return MessageView(
            message_id=MessageId(message.public_id),
            kind=MessageKind(message.kind),
            from_code=AgencyCode(message.from_code),
            document_id=message.document_id,
            code_number=message.code_number,
            code_notation=message.code_notation,
            subject=message.subject,
            business_type=message.business_type,
            status_code=message.status_code,
            signed=message.signed,
            paper=message.paper,
            received_at=message.received_at,
            payload_sha256=message.payload_sha256,
            payload_size=message.payload_size,
            header=message.header,
            signature=message.signature,
            warnings=tuple(message.warnings or ()),
            attachments=tuple(
                AttachmentView(
                    a.position,
                    a.content_id,
                    a.name,
                    a.description,
                    a.content_type,
                    a.size,
                    a.sha256,
                )
                for a in attachments
            ),
            links=tuple(
                LinkView(
                    link.relation, link.target_document_id, MessageId(public) if public else None
                )
                for link, public in links
            ),
            deliveries=tuple(
                delivery_view(d, message, (), statuses.get((message.id, d.recipient_code)))
                for d in deliveries
            ),
            is_sender=is_sender,
        )

    async def message_payload(self, message_id: str, system_id: str) -> tuple[str, str]:
        """(sha256, kind) of a message its sender or one of its recipients may read."""
        async with self.transaction(read_only=True) as session:
            message = await session.scalar(select(Message).where(Message.public_id == message_id))
            allowed = message is not None and may_read(
                Part.ORIGINAL,
                is_sender=message.sender_system_id == system_id,
                recipient_states=(
                    await session.scalars(
                        select(Delivery.state).where(
                            Delivery.message_id == message.id, Delivery.system_id == system_id
                        )
                    )
                ).all(),
            )
        if not allowed or message is None:
            raise _not_visible(message_id, system_id)
        return message.payload_sha256, message.kind
