"""Acceptance in the store (SPEC §3.1 step 3): the message, one delivery per recipient with its
first timeline row, and the outbox, in one transaction; a status checked against its
document's flow, and a business act (revoke, update, replace) applied to its original."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.limits import check_fits
from adapters.db.models import (
    Delivery,
    DeliveryEvent,
    Message,
    MessageLink,
    OutboxEntry,
    PeerItem,
    StoredAttachment,
    table,
    utcnow,
)
from adapters.db.store.base import SqlBase, delivery_ref
from adapters.db.store.business_acts import apply_business
from adapters.db.store.evidence import append_evidence
from adapters.db.store.status_checks import check_status
from gateway.delivery_states import DeliveryState
from gateway.evidence import EvidenceEvent
from gateway.peers import PeerItemRef
from gateway.records import (
    AcceptedMessage,
    DeliveryRef,
    NewMessage,
    RecipientPlan,
)
from gateway.types import AgencyCode, DeliveryId, MessageId, MessageKind

S = DeliveryState


class SqlAcceptance(SqlBase):
    async def accept(self, new: NewMessage, actor: str) -> AcceptedMessage:
        """Message, deliveries, their first timeline rows and the outbox: one transaction."""
        check_fits(new)
        try:
            async with self.transaction() as session:
                accepted = await self._accept_in(session, new, actor)
                if new.peer_item is not None:
                    await remember_peer_item(session, new.peer_item, accepted)
                return accepted
        except IntegrityError:
            # A concurrent submission of the same package won the race: answer like it did.
            async with self.transaction() as session:
                duplicate = await self._find_duplicate(session, new)
            if duplicate is None:
                raise
            return duplicate

    async def _accept_in(
        self, session: AsyncSession, new: NewMessage, actor: str
    ) -> AcceptedMessage:
        duplicate = await self._find_duplicate(session, new)
        if (
            duplicate is not None
            and new.adds_recipients
            and duplicate.duplicate_of == "document-id"
        ):
            return await self._add_recipients(session, new, duplicate, actor)
        if duplicate is not None:
            return duplicate
        answered = await check_status(session, new.status) if new.status else None
        return await self._insert(session, new, actor, answered)

    async def _insert(
        self, session: AsyncSession, new: NewMessage, actor: str, answered: Message | None = None
    ) -> AcceptedMessage:
        """The hot path of every package: Core statements on the tables, no unit of work and
        no flush (fewer layers per statement: `bench/sql_overhead.py`); the rows are the same
        the ORM would write."""
        now = utcnow()
        package = new.package
        public_id = str(uuid.uuid4())
        inserted = await session.execute(
            insert(table(Message))
            .values(
                public_id=public_id,
                kind=new.kind.value,
                sender_system_id=new.sender_system_id,
                from_code=package.from_code,
                document_id=package.document_id,
                code_number=package.code_number,
                code_notation=package.code_notation,
                subject=package.subject,
                business_type=package.business_type,
                status_code=package.status_code,
                dedup_key=new.dedup_key,
                idempotency_key=new.idempotency_key,
                payload_sha256=new.payload_sha256,
                payload_size=new.payload_size,
                warnings=[w.as_dict() for w in new.warnings],
                header=new.header,
                signed=new.signed,
                paper=new.paper,
                received_at=now,
                signature_outcome=(new.signature or {}).get("outcome"),
                signature=new.signature,
            )
            .returning(table(Message).c.id)
        )
        message_id: int = inserted.scalar_one()
        if new.attachments:
            await session.execute(
                insert(table(StoredAttachment)),
                [
                    {
                        "message_id": message_id,
                        "position": a.position,
                        "content_id": a.content_id,
                        "name": a.name,
                        "description": a.description,
                        "content_type": a.content_type,
                        "size": a.size,
                        "sha256": a.sha256,
                    }
                    for a in new.attachments
                ],
            )
        if answered is not None:
            await session.execute(
                insert(table(MessageLink)).values(
                    message_id=message_id,
                    relation="answers",
                    target_document_id=answered.document_id,
                    target_message_id=answered.id,
                )
            )
        plans: tuple[RecipientPlan, ...] = new.recipients
        cancelled: tuple[DeliveryRef, ...] = ()
        if new.business is not None:
            plans, cancelled = await apply_business(session, new, message_id, public_id, actor, now)
        deliveries = await self._add_deliveries(
            session, message_id, public_id, new.kind, plans, actor, now
        )
        for ref in cancelled:
            await append_evidence(
                session,
                EvidenceEvent.CANCELLED,
                actor,
                now,
                delivery_id=ref.delivery_id,
                details={"by": public_id, "recipient": ref.recipient_code},
            )
        await append_evidence(
            session,
            EvidenceEvent.ACCEPTED,
            actor,
            now,
            message_id=public_id,
            payload_sha256=new.payload_sha256,
            details={
                "kind": new.kind.value,
                "from": package.from_code,
                "document_id": package.document_id,
                "recipients": {d.recipient_code: d.delivery_id for d in deliveries},
                "attachments": {a.content_id: a.sha256 for a in new.attachments},
                "signature": (new.signature or {}).get("outcome"),
            },
        )
        return AcceptedMessage(
            message_id=MessageId(public_id),
            received_at=now,
            deliveries=deliveries,
            cancelled=cancelled,
        )

    async def _add_deliveries(
        self,
        session: AsyncSession,
        message_id: int,
        message_public_id: str,
        kind: MessageKind,
        plans: Sequence[RecipientPlan],
        actor: str,
        now: datetime,
    ) -> tuple[DeliveryRef, ...]:
        """One delivery per plan, its first timeline row and its outbox row: three statements
        whatever the number of recipients. The outbox payload names the message too: the
        correlation id of the log lines of every step after (`gateway.logs`)."""
        if not plans:
            return ()
        public_ids = [str(uuid.uuid4()) for _ in plans]
        ids = (
            await session.scalars(
                insert(table(Delivery)).returning(
                    table(Delivery).c.id, sort_by_parameter_order=True
                ),
                [
                    {
                        "public_id": public_id,
                        "message_id": message_id,
                        "kind": kind.value,
                        "recipient_code": plan.recipient_code,
                        "requested_code": plan.requested_code,
                        "route": plan.route.value,
                        "system_id": plan.system_id,
                        "peer": plan.peer,
                        "state": S.ACCEPTED.value,
                        "state_changed_at": now,
                        "created_at": now,
                    }
                    for public_id, plan in zip(public_ids, plans, strict=True)
                ],
            )
        ).all()
        await session.execute(
            insert(table(DeliveryEvent)),
            [
                {
                    "delivery_id": delivery_id,
                    "at": now,
                    "from_state": None,
                    "to_state": S.ACCEPTED.value,
                    "actor": actor,
                    "reason": accepted_reason(plan),
                    "attempt": 0,
                }
                for delivery_id, plan in zip(ids, plans, strict=True)
            ],
        )
        await session.execute(
            insert(table(OutboxEntry)),
            [
                {
                    "delivery_id": delivery_id,
                    "routing_key": plan.routing_key,
                    "payload": json.dumps(
                        {
                            "delivery": public_id,
                            "route": plan.route.value,
                            "message": message_public_id,
                        }
                    ),
                    "created_at": now,
                    "publish_attempts": 0,
                }
                for delivery_id, public_id, plan in zip(ids, public_ids, plans, strict=True)
            ],
        )
        return tuple(
            DeliveryRef(AgencyCode(plan.recipient_code), DeliveryId(public_id), S.ACCEPTED)
            for public_id, plan in zip(public_ids, plans, strict=True)
        )

    async def _add_recipients(
        self, session: AsyncSession, new: NewMessage, existing: AcceptedMessage, actor: str
    ) -> AcceptedMessage:
        """The same document sent again for other recipients (`NewMessage.adds_recipients`):
        deliveries for the ones it does not reach yet; a duplicate if there are none."""
        message = await session.scalar(
            select(Message).where(Message.public_id == existing.message_id).with_for_update()
        )
        assert message is not None
        reached = set(
            (
                await session.execute(
                    select(Delivery.requested_code, Delivery.recipient_code).where(
                        Delivery.message_id == message.id
                    )
                )
            ).all()
        )
        known = {code for pair in reached for code in pair}
        plans = [
            p
            for p in new.recipients
            if p.requested_code not in known and p.recipient_code not in known
        ]
        if not plans:
            return existing
        now = utcnow()
        deliveries = await self._add_deliveries(
            session, message.id, message.public_id, new.kind, plans, actor, now
        )
        await append_evidence(
            session,
            EvidenceEvent.ACCEPTED,
            actor,
            now,
            message_id=message.public_id,
            payload_sha256=new.payload_sha256,
            details={
                "kind": new.kind.value,
                "from": new.package.from_code,
                "document_id": new.package.document_id,
                "added": True,
                "recipients": {d.recipient_code: d.delivery_id for d in deliveries},
            },
        )
        return AcceptedMessage(
            message_id=existing.message_id, received_at=now, deliveries=deliveries
        )

    async def _find_duplicate(
        self, session: AsyncSession, new: NewMessage
    ) -> AcceptedMessage | None:
        for column, key, reason in (
            (Message.idempotency_key, new.idempotency_key, "idempotency-key"),
            (Message.dedup_key, new.dedup_key, "document-id"),
        ):
            if key is None:
                continue
            message = await session.scalar(select(Message).where(column == key))
            if message is not None:
                deliveries = (
                    await session.scalars(
                        select(Delivery)
                        .where(Delivery.message_id == message.id)
                        .order_by(Delivery.id)
                    )
                ).all()
                return AcceptedMessage(
                    message_id=MessageId(message.public_id),
                    received_at=message.received_at,
                    deliveries=tuple(delivery_ref(d) for d in deliveries),
                    duplicate_of=reason,
                )
        return None

    async def original_recipients(self, target_key: str) -> list[str] | None:
        """Recipients of the new document a revoke/update acts on; None if unknown here."""
        async with self.transaction(read_only=True) as session:
            target = await session.scalar(select(Message.id).where(Message.dedup_key == target_key))
            if target is None:
                return None
            return list(
                (
                    await session.scalars(
                        select(Delivery.recipient_code)
                        .where(Delivery.message_id == target)
                        .order_by(Delivery.id)
                    )
                ).all()
            )


def accepted_reason(plan: RecipientPlan) -> str:
    """The first timeline row says where the delivery goes and why to that code."""
    reason = (
        f"accepted for {plan.recipient_code}"
        if plan.requested_code == plan.recipient_code
        else f"{plan.requested_code} was merged into {plan.recipient_code}"
    )
    return reason if plan.peer is None else f"{reason}; to be forwarded to peer {plan.peer}"


async def remember_peer_item(
    session: AsyncSession, item: PeerItemRef, accepted: AcceptedMessage
) -> None:
    """The peer's item id, in the transaction that accepted it: a peer that hands it out
    again finds it here (a second insert is a unique violation, never a second delivery)."""
    await session.execute(
        insert(table(PeerItem)).values(
            peer=item.peer,
            kind=item.kind,
            item_id=item.item_id,
            recipient_code=item.recipient_code,
            outcome="duplicate" if accepted.duplicate_of else "accepted",
            message_id=accepted.message_id,
            seen_at=utcnow(),
        )
    )
