"""Acceptance in the store (SPEC §3.1 step 3): the message, one delivery per recipient with its
first timeline row, and the outbox, in one transaction; a status checked against its
document's flow, and a business act (revoke, update, replace) applied to its original."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.limits import check_fits
from adapters.db.models import (
    Delivery,
    DeliveryEvent,
    Message,
    MessageLink,
    OutboxEntry,
    StoredAttachment,
    utcnow,
)
from adapters.db.store.base import SqlBase, transition
from adapters.db.store.evidence import append_evidence
from gateway import status_flow
from gateway.business import TargetDelivery, decide
from gateway.delivery_states import DeliveryState
from gateway.edxml.model import BusinessType, StatusCode
from gateway.errors import OriginalUnknown, Problem, StatusDuplicate, StatusFlowBroken
from gateway.evidence import EvidenceEvent
from gateway.records import (
    AcceptedMessage,
    DeliveryRef,
    NewMessage,
    RecipientPlan,
    StatusAct,
)
from gateway.types import AgencyCode, DeliveryId, MessageId, MessageKind

S = DeliveryState


def _ref(delivery: Delivery) -> DeliveryRef:
    return DeliveryRef(
        AgencyCode(delivery.recipient_code), DeliveryId(delivery.public_id), delivery.state
    )


class SqlAcceptance(SqlBase):
    async def accept(self, new: NewMessage, actor: str) -> AcceptedMessage:
        """Message, deliveries, their first timeline rows and the outbox: one transaction."""
        check_fits(new)
        try:
            async with self.transaction() as session:
                duplicate = await self._find_duplicate(session, new)
                if (
                    duplicate is not None
                    and new.adds_recipients
                    and duplicate.duplicate_of == "document-id"
                ):
                    return await self._add_recipients(session, new, duplicate, actor)
                if duplicate is not None:
                    return duplicate
                answered = await self._check_status(session, new.status) if new.status else None
                return await self._insert(session, new, actor, answered)
        except IntegrityError:
            # A concurrent submission of the same package won the race: answer like it did.
            async with self.transaction() as session:
                duplicate = await self._find_duplicate(session, new)
            if duplicate is None:
                raise
            return duplicate

    async def _check_status(self, session: AsyncSession, act: StatusAct) -> Message:
        """The document a status answers (row locked), after checking the recipient's flow;
        refuses an unknown document, a broken flow or a duplicate."""
        target = await self._status_target(session, act)
        if target is None:
            raise OriginalUnknown(
                f"no document {act.document_id!r} from {act.original_sender} to "
                f"{act.recipient} went through this node",
                problems=[
                    Problem(
                        "STATUS_UNKNOWN_DOCUMENT",
                        "MessageHeader/ResponseFor",
                        f"no document {act.document_id!r} from "
                        f"{act.original_sender} to {act.recipient} (matched by "
                        "DocumentId, then by sender, recipient and Code "
                        f"{act.code_number}/{act.code_notation})",
                    )
                ],
            )
        history = await self._status_history(session, target.id, act.recipient)
        verdict = status_flow.check(StatusCode(act.code), [StatusCode(code) for code, _ in history])
        if verdict.duplicate:
            earlier = next(public for code, public in reversed(history) if code == act.code)
            raise StatusDuplicate(
                f"status {act.code} for {act.document_id!r} from {act.recipient} was already "
                f"accepted as {earlier}",
                problems=[
                    Problem(
                        "STATUS_DUPLICATE",
                        "MessageHeader/StatusCode",
                        f"{act.code} was already sent for this document",
                    )
                ],
                extra={"messageId": earlier},
            )
        if verdict.problem:
            raise StatusFlowBroken(
                verdict.problem,
                problems=[Problem("STATUS_FLOW", "MessageHeader/StatusCode", verdict.problem)],
            )
        return target

    async def _status_target(self, session: AsyncSession, act: StatusAct) -> Message | None:
        """By DocumentId first, else by (sender, recipient, Code) (SPEC §2.2)."""
        to_recipient = or_(
            Delivery.recipient_code == act.recipient, Delivery.requested_code == act.recipient
        )
        base = (
            select(Message)
            .join(Delivery, Delivery.message_id == Message.id)
            .where(Message.kind == MessageKind.EDOC.value, to_recipient)
            .order_by(Message.id.desc())
            .limit(1)
            .with_for_update(of=Message)
        )
        found = await session.scalar(
            base.where(Message.dedup_key == f"{act.original_sender}|{act.document_id}")
        )
        if found is None and act.code_number and act.code_notation:
            found = await session.scalar(
                base.where(
                    Message.from_code == act.original_sender,
                    Message.code_number == act.code_number,
                    Message.code_notation == act.code_notation,
                )
            )
        return found

    async def _status_history(
        self, session: AsyncSession, target_id: int, recipient: str
    ) -> list[tuple[str, str]]:
        """(code, status message id) of this document and recipient, oldest first: what the
        recipient sent back, and the sender's recall requests addressed to it."""
        answers = (
            select(Message.id, Message.status_code, Message.public_id, Message.from_code)
            .join(MessageLink, MessageLink.message_id == Message.id)
            .where(MessageLink.relation == "answers", MessageLink.target_message_id == target_id)
        )
        rows = (await session.execute(answers.order_by(Message.id))).all()
        recalls = set(
            (
                await session.scalars(
                    select(Delivery.message_id).where(
                        Delivery.message_id.in_([r.id for r in rows if r.status_code == "13"]),
                        Delivery.recipient_code == recipient,
                    )
                )
            ).all()
        )
        return [
            (r.status_code, r.public_id)
            for r in rows
            if (r.status_code != "13" and r.from_code == recipient) or r.id in recalls
        ]

    async def _insert(
        self, session: AsyncSession, new: NewMessage, actor: str, answered: Message | None = None
    ) -> AcceptedMessage:
        now = utcnow()
        package = new.package
        message = Message(
            public_id=str(uuid.uuid4()),
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
        session.add(message)
        await session.flush()
        session.add_all(
            StoredAttachment(
                message_id=message.id,
                position=a.position,
                content_id=a.content_id,
                name=a.name,
                description=a.description,
                content_type=a.content_type,
                size=a.size,
                sha256=a.sha256,
            )
            for a in new.attachments
        )
        if answered is not None:
            session.add(
                MessageLink(
                    message_id=message.id,
                    relation="answers",
                    target_document_id=answered.document_id,
                    target_message_id=answered.id,
                )
            )
        plans: tuple[RecipientPlan, ...] = new.recipients
        cancelled: tuple[DeliveryRef, ...] = ()
        if new.business is not None:
            plans, cancelled = await self._apply_business(session, new, message, actor, now)
        deliveries = await self._add_deliveries(session, message, new.kind, plans, actor, now)
        for ref in cancelled:
            await append_evidence(
                session,
                EvidenceEvent.CANCELLED,
                actor,
                now,
                delivery_id=ref.delivery_id,
                details={"by": message.public_id, "recipient": ref.recipient_code},
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
                "from": package.from_code,
                "document_id": package.document_id,
                "recipients": {d.recipient_code: d.public_id for d in deliveries},
                "attachments": {a.content_id: a.sha256 for a in new.attachments},
                "signature": (new.signature or {}).get("outcome"),
            },
        )
        return AcceptedMessage(
            message_id=MessageId(message.public_id),
            received_at=now,
            deliveries=tuple(_ref(d) for d in deliveries),
            cancelled=cancelled,
        )

    async def _add_deliveries(
        self,
        session: AsyncSession,
        message: Message,
        kind: MessageKind,
        plans: Sequence[RecipientPlan],
        actor: str,
        now: datetime,
    ) -> list[Delivery]:
        """One delivery per plan, its first timeline row and its outbox row."""
        deliveries = [
            Delivery(
                public_id=str(uuid.uuid4()),
                message_id=message.id,
                kind=kind.value,
                recipient_code=plan.recipient_code,
                requested_code=plan.requested_code,
                route=plan.route.value,
                system_id=plan.system_id,
                state=S.ACCEPTED.value,
                state_changed_at=now,
                created_at=now,
            )
            for plan in plans
        ]
        session.add_all(deliveries)
        await session.flush()
        for plan, delivery in zip(plans, deliveries, strict=True):
            reason = (
                f"accepted for {plan.recipient_code}"
                if plan.requested_code == plan.recipient_code
                else f"{plan.requested_code} was merged into {plan.recipient_code}"
            )
            session.add(
                DeliveryEvent(
                    delivery_id=delivery.id,
                    at=now,
                    from_state=None,
                    to_state=S.ACCEPTED.value,
                    actor=actor,
                    reason=reason,
                )
            )
            session.add(
                OutboxEntry(
                    delivery_id=delivery.id,
                    routing_key=plan.routing_key,
                    payload=json.dumps({"delivery": delivery.public_id}),
                    created_at=now,
                )
            )
        return deliveries

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
        deliveries = await self._add_deliveries(session, message, new.kind, plans, actor, now)
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
                "recipients": {d.recipient_code: d.public_id for d in deliveries},
            },
        )
        return AcceptedMessage(
            message_id=existing.message_id,
            received_at=now,
            deliveries=tuple(_ref(d) for d in deliveries),
        )

    async def _apply_business(
        self, session: AsyncSession, new: NewMessage, message: Message, actor: str, now: datetime
    ) -> tuple[tuple[RecipientPlan, ...], tuple[DeliveryRef, ...]]:
        """Link the act to its target and apply `gateway.business.decide` with the target's
        deliveries locked (a download racing with a revocation is decided one way only)."""
        act = new.business
        assert act is not None
        target = await session.scalar(select(Message).where(Message.dedup_key == act.target_key))
        relation = {
            BusinessType.REVOKE: "revokes",
            BusinessType.UPDATE: "updates",
            BusinessType.REPLACE: "replaces",
        }[act.kind]
        targets = (
            [(act.target_document_id, target)]
            if act.kind is not BusinessType.REPLACE
            else [
                (
                    key.partition("|")[2],
                    await session.scalar(select(Message).where(Message.dedup_key == key)),
                )
                for key in act.replaced_keys
            ]
        )
        session.add_all(
            MessageLink(
                message_id=message.id,
                relation=relation,
                target_document_id=document_id,
                target_message_id=found.id if found else None,
            )
            for document_id, found in targets
        )
        rows: list[Delivery] = []
        if target is not None:
            rows = list(
                (
                    await session.scalars(
                        select(Delivery)
                        .where(Delivery.message_id == target.id)
                        .order_by(Delivery.id)
                        .with_for_update()
                    )
                ).all()
            )
        decision = decide(
            act,
            new.recipients,
            new.holders,
            [TargetDelivery(d.id, d.recipient_code, d.state) for d in rows]
            if target is not None
            else None,
            message.public_id,
        )
        cancelled = []
        for delivery in rows:
            if delivery.id in decision.cancel:
                transition(session, delivery, S.CANCELLED, actor, decision.reason, now)
                delivery.lease_until = None
                cancelled.append(_ref(delivery))
        return decision.plans, tuple(cancelled)

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
                    deliveries=tuple(_ref(d) for d in deliveries),
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
