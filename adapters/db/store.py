"""The SQL store: every state change is one short transaction here.

Claims (outbox rows for relays, inbox items for pollers) are atomic `UPDATE … WHERE id IN
(SELECT … FOR UPDATE SKIP LOCKED)` with the claim condition repeated in the outer WHERE, so on
PostgreSQL a row another worker just claimed drops out instead of being handed out twice; on
SQLite `BEGIN IMMEDIATE` serialises writers and the same statement is simply atomic.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from adapters.db.engine import READ_ONLY, session_factory
from adapters.db.limits import check_fits
from adapters.db.models import (
    Agency,
    AgencyCertificate,
    Delivery,
    DeliveryEvent,
    EvidenceEntry,
    EvidenceHead,
    Message,
    MessageLink,
    OutboxEntry,
    StoredAttachment,
    System,
    utcnow,
)
from adapters.db.store_directory import DirectoryStore
from adapters.db.store_operators import OperatorStore
from adapters.db.store_push import PushStore
from adapters.secretbox import SecretBox
from gateway import status_flow
from gateway.business import TargetDelivery, decide
from gateway.codes import ServePattern
from gateway.delivery_states import (
    DOWNLOADABLE,
    PENDING_FOR_RECIPIENT,
    DeliveryState,
    Part,
    may_read,
    readable_states,
    require_transition,
)
from gateway.edxml.model import BusinessType, StatusCode
from gateway.errors import (
    DuplicatePackage,
    InvalidRequest,
    NotFound,
    PackageRejected,
    Problem,
    ServiceUnavailable,
)
from gateway.evidence import EvidenceEvent, entry_hash
from gateway.evidence import timestamp as evidence_time
from gateway.records import (
    NO_FILTER,
    AcceptedMessage,
    AgencyRecord,
    AttachmentView,
    DeliveryRef,
    DeliveryView,
    InboxFilter,
    InboxItem,
    LinkView,
    MessageView,
    NewMessage,
    OutboxWork,
    RecipientPlan,
    StatusAct,
    SystemCredentials,
    SystemRecord,
    TimelineEntry,
)
from gateway.signatures import CertificateBinding
from gateway.types import AgencyCode, DeliveryId, MessageId, MessageKind, SystemId

S = DeliveryState
MAX_SUCCESSOR_HOPS = 16


MAX_FAIL_BACKOFF_SECONDS = 3600.0


def fail_backoff(base: float, fail_count: int) -> float:
    """A recipient that cannot store a package is offered it again after base, 2×base,
    4×base … capped at an hour, with ±20 % jitter so that a system whose pollers all failed
    at once does not get everything back at the same instant."""
    delay = min(MAX_FAIL_BACKOFF_SECONDS, base * float(2 ** max(0, fail_count - 1)))
    return delay * random.uniform(0.8, 1.2)


def _not_visible(message_id: str, system_id: str) -> NotFound:
    return NotFound(f"no package {message_id} visible to {system_id}",
                    desc_vi="Khong tim thay van ban")


def _view(d: Delivery, m: Message, timeline: Sequence[TimelineEntry] = (),
          status: tuple[str, datetime, str | None] | None = None) -> DeliveryView:
    code, at, description = status or (None, None, None)
    return DeliveryView(
        message_id=MessageId(m.public_id), delivery_id=DeliveryId(d.public_id),
        kind=MessageKind(m.kind), from_code=AgencyCode(m.from_code),
        to_code=AgencyCode(d.recipient_code), requested_code=AgencyCode(d.requested_code),
        subject=m.subject, code_number=m.code_number, code_notation=m.code_notation,
        document_id=m.document_id, sent_at=m.received_at, available_at=d.available_at,
        state=d.state, state_changed_at=d.state_changed_at, fail_count=d.fail_count,
        timeline=tuple(timeline), business_status=code, business_status_at=at,
        business_status_desc=description)


def _ref(delivery: Delivery) -> DeliveryRef:
    return DeliveryRef(AgencyCode(delivery.recipient_code), DeliveryId(delivery.public_id),
                       delivery.state)


class SqlStore(OperatorStore, PushStore, DirectoryStore):
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
            raise ServiceUnavailable("the database is unreachable; nothing was stored, retry",
                                     desc_vi="Loi he thong, thu lai sau") from error

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

    # -- systems ---------------------------------------------------------------------------

    async def add_system(self, system_id: str, secret: str, patterns: Sequence[str],
                         delivery_mode: str = "poll", push_url: str | None = None) -> None:
        async with self.transaction() as session:
            existing = await session.scalar(select(System).where(System.system_id == system_id))
            if existing is not None:
                raise InvalidRequest(f"system {system_id} already exists")
            session.add(System(system_id=system_id, secret_ciphertext=self._box.seal(secret),
                               serves=list(patterns), delivery_mode=delivery_mode,
                               push_url=push_url))

    async def get_system(self, system_id: str) -> SystemRecord | None:
        async with self.transaction(read_only=True) as session:
            row = await session.scalar(select(System).where(System.system_id == system_id))
        return self._system_record(row) if row is not None else None

    async def get_credentials(self, system_id: str) -> SystemCredentials | None:
        async with self.transaction(read_only=True) as session:
            row = await session.scalar(select(System).where(System.system_id == system_id))
        if row is None:
            return None
        return SystemCredentials(self._system_record(row), self._box.open(row.secret_ciphertext))

    async def list_systems(self) -> list[SystemRecord]:
        async with self.transaction(read_only=True) as session:
            rows = (await session.scalars(select(System).order_by(System.system_id))).all()
        return [self._system_record(row) for row in rows]

    @staticmethod
    def _system_record(row: System) -> SystemRecord:
        return SystemRecord(
            system_id=SystemId(row.system_id),
            patterns=tuple(ServePattern.parse(p) for p in row.serves),
            delivery_mode=row.delivery_mode, enabled=row.enabled)

    async def signature_policies(self, system_id: str, agency_code: str
                                 ) -> tuple[str | None, str | None]:
        """(system's, agency's) signature policy overrides; None where unset."""
        async with self.transaction(read_only=True) as session:
            system = await session.scalar(select(System.signature_policy)
                                          .where(System.system_id == system_id))
            agency = await session.scalar(select(Agency.signature_policy)
                                          .where(Agency.code == agency_code))
        return system, agency

    async def set_signature_policy(self, *, system_id: str | None = None,
                                   agency_code: str | None = None,
                                   policy: str | None) -> None:
        async with self.transaction() as session:
            if system_id is not None:
                row: System | Agency | None = await session.scalar(
                    select(System).where(System.system_id == system_id))
            else:
                row = await session.scalar(select(Agency).where(Agency.code == agency_code))
            if row is None:
                raise NotFound(f"no system or agency {system_id or agency_code}")
            row.signature_policy = policy

    async def add_binding(self, agency_code: str, fingerprint: str | None,
                          subject: str | None) -> None:
        async with self.transaction() as session:
            session.add(AgencyCertificate(agency_code=agency_code, fingerprint=fingerprint,
                                          subject=subject))

    async def certificate_bindings(self, agency_code: str, fingerprint: str | None
                                   ) -> list[CertificateBinding]:
        """Bindings of the sender, and any binding the signer's certificate could match."""
        async with self.transaction(read_only=True) as session:
            rows = (await session.scalars(select(AgencyCertificate).where(or_(
                AgencyCertificate.agency_code == agency_code,
                AgencyCertificate.fingerprint == (fingerprint or "").lower(),
                AgencyCertificate.subject.is_not(None))))).all()
        return [CertificateBinding(r.agency_code, r.fingerprint, r.subject) for r in rows]

    # -- directory (its changes, listings and sync: `store_directory`) ---------------------

    async def list_agencies(self, prefix: str | None = None) -> list[AgencyRecord]:
        """The directory, or the agencies whose code ends with `prefix` (codes read right to
        left: `H53` is one province), each with its parent's row id, filtered in SQL."""
        parent = aliased(Agency)
        query = (select(Agency, parent.id)
                 .outerjoin(parent, parent.code == Agency.parent_code).order_by(Agency.code))
        if prefix is not None:
            query = query.where(Agency.code.endswith(prefix, autoescape=True))
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(query)).all()
        return [AgencyRecord(code=AgencyCode(r.code), name=r.name, parent_code=r.parent_code,
                             mail=r.mail, status=r.status, successor_code=r.successor_code,
                             old_code=r.old_code, id=r.id, parent_id=parent_id)
                for r, parent_id in rows]

    async def current_codes(self, codes: Sequence[str]) -> dict[str, str]:
        """Follow merged agencies to their successor (SPEC §3.1 step 3); unknown codes map to
        themselves. Cycles and over-long chains stop where they are. One query per hop for
        all codes, not one per code: a package may name hundreds of recipients."""
        current = {code: code for code in codes}
        seen = {code: {code} for code in codes}
        async with self.transaction(read_only=True) as session:
            for _ in range(MAX_SUCCESSOR_HOPS):
                rows = (await session.execute(
                    select(Agency.code, Agency.successor_code)
                    .where(Agency.code.in_(set(current.values())), Agency.status == "merged",
                           Agency.successor_code.is_not(None)))).all()
                successor = {row.code: row.successor_code for row in rows}
                moved = False
                for code, now_at in current.items():
                    following = successor.get(now_at)
                    if following and following not in seen[code]:
                        current[code] = following
                        seen[code].add(following)
                        moved = True
                if not moved:
                    break
        return current

    # -- acceptance ------------------------------------------------------------------------

    async def accept(self, new: NewMessage, actor: str) -> AcceptedMessage:
        """Message, deliveries, their first timeline rows and the outbox: one transaction."""
        check_fits(new)
        try:
            async with self.transaction() as session:
                duplicate = await self._find_duplicate(session, new)
                if duplicate is not None and new.adds_recipients and \
                        duplicate.duplicate_of == "document-id":
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
            raise PackageRejected(
                f"no document {act.document_id!r} from {act.original_sender} to "
                f"{act.recipient} went through this node", desc_vi="Khong tim thay van ban goc",
                problems=[Problem("STATUS_UNKNOWN_DOCUMENT", "MessageHeader/ResponseFor",
                                  f"no document {act.document_id!r} from "
                                  f"{act.original_sender} to {act.recipient} (matched by "
                                  "DocumentId, then by sender, recipient and Code "
                                  f"{act.code_number}/{act.code_notation})")])
        history = await self._status_history(session, target.id, act.recipient)
        verdict = status_flow.check(StatusCode(act.code),
                                    [StatusCode(code) for code, _ in history])
        if verdict.duplicate:
            earlier = next(public for code, public in reversed(history) if code == act.code)
            raise DuplicatePackage(
                f"status {act.code} for {act.document_id!r} from {act.recipient} was already "
                f"accepted as {earlier}", desc_vi="Trang thai da duoc gui",
                problems=[Problem("STATUS_DUPLICATE", "MessageHeader/StatusCode",
                                  f"{act.code} was already sent for this document")],
                extra={"messageId": earlier})
        if verdict.problem:
            raise PackageRejected(verdict.problem, desc_vi="Sai trinh tu trang thai",
                                  problems=[Problem("STATUS_FLOW", "MessageHeader/StatusCode",
                                                    verdict.problem)])
        return target

    async def _status_target(self, session: AsyncSession, act: StatusAct) -> Message | None:
        """By DocumentId first, else by (sender, recipient, Code) (SPEC §2.2)."""
        to_recipient = or_(Delivery.recipient_code == act.recipient,
                           Delivery.requested_code == act.recipient)
        base = (select(Message).join(Delivery, Delivery.message_id == Message.id)
                .where(Message.kind == MessageKind.EDOC.value, to_recipient)
                .order_by(Message.id.desc()).limit(1).with_for_update(of=Message))
        found = await session.scalar(base.where(
            Message.dedup_key == f"{act.original_sender}|{act.document_id}"))
        if found is None and act.code_number and act.code_notation:
            found = await session.scalar(base.where(
                Message.from_code == act.original_sender,
                Message.code_number == act.code_number,
                Message.code_notation == act.code_notation))
        return found

    async def _status_history(self, session: AsyncSession, target_id: int, recipient: str
                              ) -> list[tuple[str, str]]:
        """(code, status message id) of this document and recipient, oldest first: what the
        recipient sent back, and the sender's recall requests addressed to it."""
        answers = (select(Message.id, Message.status_code, Message.public_id,
                          Message.from_code)
                   .join(MessageLink, MessageLink.message_id == Message.id)
                   .where(MessageLink.relation == "answers",
                          MessageLink.target_message_id == target_id))
        rows = (await session.execute(answers.order_by(Message.id))).all()
        recalls = set((await session.scalars(
            select(Delivery.message_id).where(
                Delivery.message_id.in_([r.id for r in rows if r.status_code == "13"]),
                Delivery.recipient_code == recipient))).all())
        return [(r.status_code, r.public_id) for r in rows
                if (r.status_code != "13" and r.from_code == recipient) or r.id in recalls]

    async def _insert(self, session: AsyncSession, new: NewMessage, actor: str,
                      answered: Message | None = None) -> AcceptedMessage:
        now = utcnow()
        package = new.package
        message = Message(
            public_id=str(uuid.uuid4()), kind=new.kind.value,
            sender_system_id=new.sender_system_id, from_code=package.from_code,
            document_id=package.document_id, code_number=package.code_number,
            code_notation=package.code_notation, subject=package.subject,
            business_type=package.business_type, status_code=package.status_code,
            dedup_key=new.dedup_key, idempotency_key=new.idempotency_key,
            payload_sha256=new.payload_sha256, payload_size=new.payload_size,
            warnings=[w.as_dict() for w in new.warnings], header=new.header,
            signed=new.signed, paper=new.paper, received_at=now,
            signature_outcome=(new.signature or {}).get("outcome"), signature=new.signature)
        session.add(message)
        await session.flush()
        session.add_all(StoredAttachment(
            message_id=message.id, position=a.position, content_id=a.content_id, name=a.name,
            description=a.description, content_type=a.content_type, size=a.size,
            sha256=a.sha256) for a in new.attachments)
        if answered is not None:
            session.add(MessageLink(message_id=message.id, relation="answers",
                                    target_document_id=answered.document_id,
                                    target_message_id=answered.id))
        plans: tuple[RecipientPlan, ...] = new.recipients
        cancelled: tuple[DeliveryRef, ...] = ()
        if new.business is not None:
            plans, cancelled = await self._apply_business(session, new, message, actor, now)
        deliveries = await self._add_deliveries(session, message, new.kind, plans, actor, now)
        for ref in cancelled:
            await self._evidence(session, EvidenceEvent.CANCELLED, actor, now,
                                 delivery_id=ref.delivery_id,
                                 details={"by": message.public_id, "recipient":
                                          ref.recipient_code})
        await self._evidence(
            session, EvidenceEvent.ACCEPTED, actor, now, message_id=message.public_id,
            payload_sha256=new.payload_sha256,
            details={"kind": new.kind.value, "from": package.from_code,
                     "document_id": package.document_id,
                     "recipients": {d.recipient_code: d.public_id for d in deliveries},
                     "attachments": {a.content_id: a.sha256 for a in new.attachments},
                     "signature": (new.signature or {}).get("outcome")})
        return AcceptedMessage(
            message_id=MessageId(message.public_id), received_at=now,
            deliveries=tuple(_ref(d) for d in deliveries), cancelled=cancelled)

    async def _add_deliveries(self, session: AsyncSession, message: Message, kind: MessageKind,
                              plans: Sequence[RecipientPlan], actor: str, now: datetime
                              ) -> list[Delivery]:
        """One delivery per plan, its first timeline row and its outbox row."""
        deliveries = [Delivery(
            public_id=str(uuid.uuid4()), message_id=message.id, kind=kind.value,
            recipient_code=plan.recipient_code, requested_code=plan.requested_code,
            route=plan.route.value, system_id=plan.system_id, state=S.ACCEPTED.value,
            state_changed_at=now, created_at=now) for plan in plans]
        session.add_all(deliveries)
        await session.flush()
        for plan, delivery in zip(plans, deliveries, strict=True):
            reason = (f"accepted for {plan.recipient_code}" if plan.requested_code ==
                      plan.recipient_code else
                      f"{plan.requested_code} was merged into {plan.recipient_code}")
            session.add(DeliveryEvent(delivery_id=delivery.id, at=now, from_state=None,
                                      to_state=S.ACCEPTED.value, actor=actor, reason=reason))
            session.add(OutboxEntry(delivery_id=delivery.id, routing_key=plan.routing_key,
                                    payload=json.dumps({"delivery": delivery.public_id}),
                                    created_at=now))
        return deliveries

    async def _add_recipients(self, session: AsyncSession, new: NewMessage,
                              existing: AcceptedMessage, actor: str) -> AcceptedMessage:
        """The same document sent again for other recipients (`NewMessage.adds_recipients`):
        deliveries for the ones it does not reach yet; a duplicate if there are none."""
        message = await session.scalar(select(Message).where(
            Message.public_id == existing.message_id).with_for_update())
        assert message is not None
        reached = set((await session.execute(
            select(Delivery.requested_code, Delivery.recipient_code)
            .where(Delivery.message_id == message.id))).all())
        known = {code for pair in reached for code in pair}
        plans = [p for p in new.recipients if p.requested_code not in known
                 and p.recipient_code not in known]
        if not plans:
            return existing
        now = utcnow()
        deliveries = await self._add_deliveries(session, message, new.kind, plans, actor, now)
        await self._evidence(
            session, EvidenceEvent.ACCEPTED, actor, now, message_id=message.public_id,
            payload_sha256=new.payload_sha256,
            details={"kind": new.kind.value, "from": new.package.from_code,
                     "document_id": new.package.document_id, "added": True,
                     "recipients": {d.recipient_code: d.public_id for d in deliveries}})
        return AcceptedMessage(message_id=existing.message_id, received_at=now,
                               deliveries=tuple(_ref(d) for d in deliveries))

    async def _apply_business(self, session: AsyncSession, new: NewMessage, message: Message,
                              actor: str, now: datetime
                              ) -> tuple[tuple[RecipientPlan, ...], tuple[DeliveryRef, ...]]:
        """Link the act to its target and apply `gateway.business.decide` with the target's
        deliveries locked (a download racing with a revocation is decided one way only)."""
        act = new.business
        assert act is not None
        target = await session.scalar(select(Message).where(Message.dedup_key ==
                                                            act.target_key))
        relation = {BusinessType.REVOKE: "revokes", BusinessType.UPDATE: "updates",
                    BusinessType.REPLACE: "replaces"}[act.kind]
        targets = [(act.target_document_id, target)] if act.kind is not BusinessType.REPLACE \
            else [(key.partition("|")[2], await session.scalar(
                select(Message).where(Message.dedup_key == key))) for key in act.replaced_keys]
        session.add_all(MessageLink(message_id=message.id, relation=relation,
                                    target_document_id=document_id,
                                    target_message_id=found.id if found else None)
                        for document_id, found in targets)
        rows: list[Delivery] = []
        if target is not None:
            rows = list((await session.scalars(
                select(Delivery).where(Delivery.message_id == target.id)
                .order_by(Delivery.id).with_for_update())).all())
        decision = decide(act, new.recipients, new.holders,
                          [TargetDelivery(d.id, d.recipient_code, d.state) for d in rows]
                          if target is not None else None, message.public_id)
        cancelled = []
        for delivery in rows:
            if delivery.id in decision.cancel:
                self._transition(session, delivery, S.CANCELLED, actor, decision.reason, now)
                delivery.lease_until = None
                cancelled.append(_ref(delivery))
        return decision.plans, tuple(cancelled)

    async def _find_duplicate(self, session: AsyncSession, new: NewMessage
                              ) -> AcceptedMessage | None:
        for column, key, reason in ((Message.idempotency_key, new.idempotency_key,
                                     "idempotency-key"),
                                    (Message.dedup_key, new.dedup_key, "document-id")):
            if key is None:
                continue
            message = await session.scalar(select(Message).where(column == key))
            if message is not None:
                deliveries = (await session.scalars(
                    select(Delivery).where(Delivery.message_id == message.id)
                    .order_by(Delivery.id))).all()
                return AcceptedMessage(
                    message_id=MessageId(message.public_id), received_at=message.received_at,
                    deliveries=tuple(_ref(d) for d in deliveries), duplicate_of=reason)
        return None

    # -- evidence --------------------------------------------------------------------------

    @staticmethod
    async def _evidence(session: AsyncSession, event: EvidenceEvent, actor: str, at: datetime,
                        *, message_id: str | None = None, delivery_id: str | None = None,
                        payload_sha256: str | None = None,
                        details: dict[str, Any] | None = None) -> None:
        """Append to the chain in the caller's transaction: the event and its evidence commit
        together or not at all. Call it last, because it locks the head row until commit
        (which is what orders appends across gateway processes)."""
        head = await session.scalar(select(EvidenceHead).where(EvidenceHead.id == 1)
                                    .with_for_update())
        if head is None:
            raise RuntimeError("evidence_head is missing: run `lienthong migrate`")
        fields: dict[str, Any] = {
            "seq": head.seq + 1, "at": evidence_time(at), "event": event.value,
            "message_id": message_id, "delivery_id": delivery_id, "actor": actor,
            "payload_sha256": payload_sha256, "details": details or {},
            "prev_hash": head.entry_hash}
        digest = entry_hash(fields)
        session.add(EvidenceEntry(seq=fields["seq"], at=at, event=event.value,
                                  message_id=message_id, delivery_id=delivery_id, actor=actor,
                                  payload_sha256=payload_sha256, details=fields["details"],
                                  prev_hash=head.entry_hash, entry_hash=digest))
        head.seq, head.entry_hash = fields["seq"], digest

    async def record_refusal(self, actor: str, payload_sha256: str | None, code: str,
                             detail: str) -> None:
        """A refused package leaves evidence too (its hash; its bytes are not kept)."""
        async with self.transaction() as session:
            await self._evidence(session, EvidenceEvent.REFUSED, actor, utcnow(),
                                 payload_sha256=payload_sha256,
                                 details={"code": code, "detail": detail[:1000]})

    async def evidence_head(self) -> tuple[int, str]:
        async with self.transaction(read_only=True) as session:
            head = await session.scalar(select(EvidenceHead).where(EvidenceHead.id == 1))
        assert head is not None
        return head.seq, head.entry_hash

    async def evidence_page(self, after_seq: int, limit: int, *, since: datetime | None = None,
                            until: datetime | None = None) -> list[dict[str, Any]]:
        """Entries after `after_seq` in chain order, as the dicts `gateway.evidence` hashes."""
        query = select(EvidenceEntry).where(EvidenceEntry.seq > after_seq)
        if since is not None:
            query = query.where(EvidenceEntry.at >= since)
        if until is not None:
            query = query.where(EvidenceEntry.at < until)
        async with self.transaction(read_only=True) as session:
            rows = (await session.scalars(query.order_by(EvidenceEntry.seq).limit(limit))).all()
        return [{"seq": r.seq, "at": evidence_time(r.at), "event": r.event,
                 "message_id": r.message_id, "delivery_id": r.delivery_id, "actor": r.actor,
                 "payload_sha256": r.payload_sha256, "details": r.details,
                 "prev_hash": r.prev_hash, "entry_hash": r.entry_hash} for r in rows]

    # -- relay -----------------------------------------------------------------------------

    async def claim_outbox(self, owner: str, limit: int, claim_seconds: float
                           ) -> list[OutboxWork]:
        now = utcnow()
        claimable = and_(OutboxEntry.published_at.is_(None),
                         or_(OutboxEntry.claimed_until.is_(None),
                             OutboxEntry.claimed_until < now))
        candidates = (select(OutboxEntry.id).where(claimable).order_by(OutboxEntry.id)
                      .limit(limit).with_for_update(skip_locked=True))
        statement = (update(OutboxEntry)
                     .where(OutboxEntry.id.in_(candidates.scalar_subquery()), claimable)
                     .values(claimed_by=owner,
                             claimed_until=now + timedelta(seconds=claim_seconds),
                             publish_attempts=OutboxEntry.publish_attempts + 1)
                     .returning(OutboxEntry.id, OutboxEntry.routing_key, OutboxEntry.payload)
                     .execution_options(synchronize_session=False))
        async with self.transaction() as session:
            rows = (await session.execute(statement)).all()
        return sorted((OutboxWork(r.id, r.routing_key, r.payload) for r in rows),
                      key=lambda w: w.outbox_id)

    async def mark_published(self, outbox_ids: Sequence[int], actor: str) -> None:
        """After the broker confirmed: the rows are done and their deliveries are `queued`."""
        if not outbox_ids:
            return
        now = utcnow()
        async with self.transaction() as session:
            delivery_ids = (await session.execute(
                update(OutboxEntry).where(OutboxEntry.id.in_(outbox_ids))
                .values(published_at=now, claimed_by=None, claimed_until=None, last_error=None)
                .returning(OutboxEntry.delivery_id)
                .execution_options(synchronize_session=False))).scalars().all()
            queued = (await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(delivery_ids), Delivery.state == S.ACCEPTED.value)
                .values(state=S.QUEUED.value, state_changed_at=now)
                .returning(Delivery.id).execution_options(synchronize_session=False)
            )).scalars().all()
            session.add_all(DeliveryEvent(delivery_id=i, at=now, from_state=S.ACCEPTED.value,
                                          to_state=S.QUEUED.value, actor=actor,
                                          reason="published to the broker (confirmed)")
                            for i in queued)

    async def release_outbox(self, outbox_ids: Sequence[int], error: str) -> None:
        if not outbox_ids:
            return
        async with self.transaction() as session:
            await session.execute(
                update(OutboxEntry).where(OutboxEntry.id.in_(outbox_ids))
                .values(claimed_by=None, claimed_until=None, last_error=error[:2000])
                .execution_options(synchronize_session=False))

    async def republish_stale(self, published_before: datetime) -> int:
        """Publish again what the broker confirmed but no consumer turned into an inbox item
        (an embedded broker that restarted, a message lost on a broken node). Consumers are
        idempotent, so a second copy is harmless; a lost one would not be."""
        waiting = select(Delivery.id).where(or_(
            Delivery.state.in_([S.ACCEPTED.value, S.QUEUED.value]),
            # a push retry whose delayed message was lost (process or broker gone)
            and_(Delivery.state == S.RETRYING.value,
                 Delivery.next_attempt_at < published_before)))
        async with self.transaction() as session:
            result = await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.delivery_id.in_(waiting.scalar_subquery()),
                       OutboxEntry.published_at.is_not(None),
                       OutboxEntry.published_at < published_before)
                .values(published_at=None, claimed_by=None, claimed_until=None)
                .returning(OutboxEntry.id).execution_options(synchronize_session=False))
            return len(result.all())

    async def unpublished_count(self) -> int:
        async with self.transaction(read_only=True) as session:
            return int(await session.scalar(
                select(func.count()).select_from(OutboxEntry)
                .where(OutboxEntry.published_at.is_(None))) or 0)

    # -- delivery to the inbox -------------------------------------------------------------

    async def make_available(self, delivery_id: str, actor: str) -> bool:
        """Idempotent: a redelivered broker message finds the item already available."""
        now = utcnow()
        async with self.transaction() as session:
            delivery = await session.scalar(
                select(Delivery).where(Delivery.public_id == delivery_id).with_for_update())
            if delivery is None:
                return False
            if delivery.state == S.ACCEPTED.value:
                self._transition(session, delivery, S.QUEUED, actor,
                                 "consumed before the relay recorded its confirm", now)
            if delivery.state not in (S.QUEUED.value, S.RETRYING.value):
                return False
            self._transition(session, delivery, S.AVAILABLE, actor,
                             f"in the inbox of {delivery.system_id}", now)
            delivery.available_at = now
            message = await session.get(Message, delivery.message_id)
            assert message is not None
            await self._evidence(session, EvidenceEvent.DELIVERED, actor, now,
                                 message_id=message.public_id, delivery_id=delivery_id,
                                 payload_sha256=message.payload_sha256,
                                 details={"recipient": delivery.recipient_code,
                                          "system": delivery.system_id})
            return True

    @staticmethod
    def _transition(session: AsyncSession, delivery: Delivery, target: DeliveryState,
                    actor: str, reason: str | None, now: datetime) -> None:
        require_transition(delivery.state, target)
        session.add(DeliveryEvent(delivery_id=delivery.id, at=now, from_state=delivery.state,
                                  to_state=target.value, actor=actor, reason=reason,
                                  attempt=delivery.attempts))
        delivery.state = target.value
        delivery.state_changed_at = now

    # -- inbox -----------------------------------------------------------------------------

    def _offerable(self, now: datetime) -> Any:
        return or_(Delivery.state.in_([S.AVAILABLE.value, S.DOWNLOADED.value]),
                   and_(Delivery.state == S.FAIL.value,
                        or_(Delivery.next_offer_at.is_(None), Delivery.next_offer_at <= now)))

    async def lease_inbox(self, system_id: str, kind: MessageKind, limit: int,
                          lease_seconds: float, only: InboxFilter = NO_FILTER
                          ) -> list[InboxItem]:
        """Hand pending items to one poller and hide them from the others for a lease.

        An item nobody acknowledges comes back after the lease, so a crashed poller loses
        nothing; `first_handout` tells whether this is the first time it is handed out."""
        now = utcnow()
        unleased = or_(Delivery.lease_until.is_(None), Delivery.lease_until < now)
        mine = and_(Delivery.system_id == system_id, Delivery.kind == kind.value,
                    *self._filtered(only))
        # A CTE, not `IN (subquery)`: PostgreSQL may re-run a LIMIT subquery inside a
        # semi-join and hand out more than `limit` items; a locking CTE runs once.
        candidates = (select(Delivery.id).where(mine, self._offerable(now), unleased)
                      .order_by(Delivery.id).offset(only.skip).limit(limit)
                      .with_for_update(skip_locked=True).cte("candidates"))
        statement = (update(Delivery)
                     .where(Delivery.id.in_(select(candidates.c.id)), mine,
                            self._offerable(now), unleased)
                     .values(lease_until=now + timedelta(seconds=lease_seconds),
                             lease_count=Delivery.lease_count + 1)
                     .returning(Delivery.id).execution_options(synchronize_session=False))
        async with self.transaction() as session:
            ids = (await session.execute(statement)).scalars().all()
            rows = (await session.execute(
                select(Delivery, Message).join(Message, Message.id == Delivery.message_id)
                .where(Delivery.id.in_(ids)).order_by(Delivery.id))).all()
        return [self._inbox_item(d, m, first_handout=d.lease_count == 1) for d, m in rows]

    @staticmethod
    def _filtered(only: InboxFilter) -> list[Any]:
        conditions: list[Any] = []
        if only.created_from is not None:
            conditions.append(Delivery.created_at >= only.created_from)
        if only.created_before is not None:
            conditions.append(Delivery.created_at < only.created_before)
        if only.recipients is not None:
            conditions.append(Delivery.recipient_code.in_(sorted(only.recipients)))
        if only.handed_out is not None:
            conditions.append(Delivery.lease_count > 0 if only.handed_out
                              else Delivery.lease_count == 0)
        return conditions

    async def count_inbox(self, system_id: str, kind: MessageKind) -> int:
        """Items waiting for the caller's agencies, handed out or not (countReceiveEdoc)."""
        async with self.transaction(read_only=True) as session:
            return int(await session.scalar(
                select(func.count()).select_from(Delivery)
                .where(Delivery.system_id == system_id, Delivery.kind == kind.value,
                       self._offerable(utcnow()))) or 0)

    async def list_inbox(self, system_id: str, kind: MessageKind, after: int, limit: int
                         ) -> tuple[list[InboxItem], int | None]:
        """Read-only page of pending items after cursor `after` (the internal row id)."""
        now = utcnow()
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(
                select(Delivery, Message).join(Message, Message.id == Delivery.message_id)
                .where(Delivery.system_id == system_id, Delivery.kind == kind.value,
                       Delivery.state.in_([s.value for s in PENDING_FOR_RECIPIENT]),
                       Delivery.id > after)
                .order_by(Delivery.id).limit(limit + 1))).all()
        page = rows[:limit]
        next_cursor = page[-1][0].id if len(rows) > limit else None
        return [self._inbox_item(d, m, first_handout=d.state == S.AVAILABLE.value
                                 and (d.lease_until is None or d.lease_until < now))
                for d, m in page], next_cursor

    async def download(self, system_id: str, delivery_id: str, actor: str) -> InboxItem:
        """The recipient fetched the package: `available`/`fail` → `downloaded`."""
        now = utcnow()
        async with self.transaction() as session:
            row = (await session.execute(
                select(Delivery, Message).join(Message, Message.id == Delivery.message_id)
                .where(Delivery.public_id == delivery_id, Delivery.system_id == system_id)
                .with_for_update(of=Delivery))).first()
            if row is None or row[0].state not in DOWNLOADABLE:
                raise NotFound(f"no package {delivery_id} in the inbox of {system_id}",
                               desc_vi="Khong tim thay van ban")
            delivery, message = row
            if delivery.state in (S.AVAILABLE.value, S.FAIL.value):
                self._transition(session, delivery, S.DOWNLOADED, actor, None, now)
                delivery.downloaded_at = now
            await self._evidence(session, EvidenceEvent.DOWNLOADED, actor, now,
                                 message_id=message.public_id, delivery_id=delivery_id,
                                 payload_sha256=message.payload_sha256,
                                 details={"recipient": delivery.recipient_code})
            return self._inbox_item(delivery, message)

    async def acknowledge(self, system_id: str, delivery_id: str, outcome: str,
                          reason: str | None, actor: str, retry_after: float) -> str:
        """`done` ends the delivery; `fail` offers it again after `retry_after` seconds."""
        now = utcnow()
        async with self.transaction() as session:
            delivery = await session.scalar(
                select(Delivery).where(Delivery.public_id == delivery_id,
                                       Delivery.system_id == system_id).with_for_update())
            if delivery is None:
                raise NotFound(f"no package {delivery_id} in the inbox of {system_id}",
                               desc_vi="Khong tim thay van ban")
            target = {"done": S.DONE, "fail": S.FAIL}.get(outcome)
            if target is None or delivery.state == target.value:
                return delivery.state  # `processing`, or a repeated acknowledgement
            if delivery.state == S.AVAILABLE.value:
                raise InvalidRequest(f"package {delivery_id} must be downloaded (getEdoc) "
                                     f"before it is acknowledged '{outcome}'",
                                     desc_vi="Chua tai van ban")
            self._transition(session, delivery, target, actor, reason, now)
            delivery.lease_until = None
            if target is S.DONE:
                delivery.done_at = now
            else:
                delivery.fail_count += 1
                delivery.next_offer_at = now + timedelta(
                    seconds=fail_backoff(retry_after, delivery.fail_count))
            await self._evidence(session, EvidenceEvent.ACKNOWLEDGED, actor, now,
                                 delivery_id=delivery_id,
                                 details={"outcome": outcome, "reason": reason,
                                          "recipient": delivery.recipient_code})
            return delivery.state

    async def original_recipients(self, target_key: str) -> list[str] | None:
        """Recipients of the new document a revoke/update acts on; None if unknown here."""
        async with self.transaction(read_only=True) as session:
            target = await session.scalar(select(Message.id).where(Message.dedup_key ==
                                                                   target_key))
            if target is None:
                return None
            return list((await session.scalars(
                select(Delivery.recipient_code).where(Delivery.message_id == target)
                .order_by(Delivery.id))).all())

    @staticmethod
    def _inbox_item(d: Delivery, m: Message, first_handout: bool = False) -> InboxItem:
        return InboxItem(
            delivery_id=DeliveryId(d.public_id), message_id=MessageId(m.public_id),
            kind=MessageKind(d.kind), from_code=AgencyCode(m.from_code),
            to_code=AgencyCode(d.recipient_code), document_id=m.document_id,
            subject=m.subject, state=d.state, created_at=d.created_at,
            updated_at=d.state_changed_at, payload_sha256=m.payload_sha256,
            payload_size=m.payload_size, first_handout=first_handout)

    # -- what senders see ------------------------------------------------------------------

    async def sent_deliveries(self, system_id: str, message_id: str | None = None,
                              with_timeline: bool = False, limit: int = 1000
                              ) -> list[DeliveryView]:
        query = (select(Delivery, Message).join(Message, Message.id == Delivery.message_id)
                 .where(Message.sender_system_id == system_id))
        if message_id is not None:
            query = query.where(Message.public_id == message_id)
        query = query.order_by(Message.id.desc(), Delivery.id).limit(limit)
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(query)).all()
            events: dict[int, list[TimelineEntry]] = {}
            if with_timeline and rows:
                for e in (await session.scalars(
                        select(DeliveryEvent)
                        .where(DeliveryEvent.delivery_id.in_([d.id for d, _ in rows]))
                        .order_by(DeliveryEvent.id))).all():
                    events.setdefault(e.delivery_id, []).append(TimelineEntry(
                        e.at, e.from_state, e.to_state, e.actor, e.reason, e.attempt))
            statuses = await self._latest_statuses(session, {m.id for _, m in rows})
        return [_view(d, m, events.get(d.id, ()), statuses.get((m.id, d.recipient_code)))
                for d, m in rows]

    @staticmethod
    async def _latest_statuses(session: AsyncSession, message_ids: set[int]
                               ) -> dict[tuple[int, str], tuple[str, datetime, str | None]]:
        """(document row, recipient) → the latest business status it sent back."""
        if not message_ids:
            return {}
        rows = (await session.execute(
            select(MessageLink.target_message_id, Message.from_code, Message.status_code,
                   Message.received_at, Message.subject)
            .join(Message, Message.id == MessageLink.message_id)
            .where(MessageLink.relation == "answers",
                   MessageLink.target_message_id.in_(message_ids),
                   Message.status_code != "13").order_by(Message.id))).all()
        return {(r.target_message_id, r.from_code): (r.status_code, r.received_at, r.subject)
                for r in rows}

    async def message_view(self, message_id: str, system_id: str) -> MessageView:
        """Metadata of a package its sender or one of its recipients' systems may read."""
        async with self.transaction(read_only=True) as session:
            message = await session.scalar(select(Message).where(Message.public_id == message_id))
            if message is None:
                raise _not_visible(message_id, system_id)
            is_sender = message.sender_system_id == system_id
            query = select(Delivery).where(Delivery.message_id == message.id)
            if not is_sender:
                query = query.where(Delivery.system_id == system_id, Delivery.state.in_(
                    [s.value for s in readable_states(Part.METADATA)]))
            deliveries = (await session.scalars(query.order_by(Delivery.id))).all()
            if not is_sender and not deliveries:
                raise _not_visible(message_id, system_id)
            statuses = await self._latest_statuses(session, {message.id})
            attachments = (await session.scalars(
                select(StoredAttachment).where(StoredAttachment.message_id == message.id)
                .order_by(StoredAttachment.position))).all()
            target = aliased(Message)
            links = (await session.execute(
                select(MessageLink, target.public_id)
                .outerjoin(target, target.id == MessageLink.target_message_id)
                .where(MessageLink.message_id == message.id).order_by(MessageLink.id))).all()
        return MessageView(
            message_id=MessageId(message.public_id), kind=MessageKind(message.kind),
            from_code=AgencyCode(message.from_code), document_id=message.document_id,
            code_number=message.code_number, code_notation=message.code_notation,
            subject=message.subject, business_type=message.business_type,
            status_code=message.status_code, signed=message.signed, paper=message.paper,
            received_at=message.received_at, payload_sha256=message.payload_sha256,
            payload_size=message.payload_size, header=message.header,
            signature=message.signature, warnings=tuple(message.warnings or ()),
            attachments=tuple(AttachmentView(a.position, a.content_id, a.name, a.description,
                                             a.content_type, a.size, a.sha256)
                              for a in attachments),
            links=tuple(LinkView(link.relation, link.target_document_id,
                                 MessageId(public) if public else None)
                        for link, public in links),
            deliveries=tuple(_view(d, message, (), statuses.get((message.id, d.recipient_code)))
                             for d in deliveries), is_sender=is_sender)

    async def message_payload(self, message_id: str, system_id: str) -> tuple[str, str]:
        """(sha256, kind) of a message its sender or one of its recipients may read."""
        async with self.transaction(read_only=True) as session:
            message = await session.scalar(select(Message).where(Message.public_id == message_id))
            allowed = message is not None and may_read(
                Part.ORIGINAL, is_sender=message.sender_system_id == system_id,
                recipient_states=(await session.scalars(select(Delivery.state).where(
                    Delivery.message_id == message.id, Delivery.system_id == system_id))).all())
        if not allowed or message is None:
            raise _not_visible(message_id, system_id)
        return message.payload_sha256, message.kind

    async def stuck(self, thresholds: Mapping[str, float], limit: int = 500
                    ) -> list[tuple[str, DeliveryView]]:
        """Deliveries that stayed in a state longer than its threshold (seconds), oldest
        first, each with the state it is stuck in: accepted/queued (not yet in the inbox),
        available (not collected: the provinces' daily alert), fail, retrying, dead."""
        now = utcnow()
        stuck = or_(*(and_(Delivery.state == state,
                           Delivery.state_changed_at < now - timedelta(seconds=seconds))
                      for state, seconds in thresholds.items()))
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(
                select(Delivery, Message).join(Message, Message.id == Delivery.message_id)
                .where(stuck).order_by(Delivery.state_changed_at).limit(limit))).all()
        return [(d.state, _view(d, m)) for d, m in rows]

    async def metrics(self, stuck_thresholds: Mapping[str, float]
                      ) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Gauges for /metrics, from the database so every process reports the node's truth."""
        now = utcnow()
        async with self.transaction(read_only=True) as session:
            stuck = {state: await session.scalar(
                select(func.count()).select_from(Delivery).where(
                    Delivery.state == state,
                    Delivery.state_changed_at < now - timedelta(seconds=seconds)))
                for state, seconds in stuck_thresholds.items()}
            messages = (await session.execute(
                select(Message.kind, Message.signature_outcome, func.count())
                .group_by(Message.kind, Message.signature_outcome))).all()
            deliveries = (await session.execute(
                select(Delivery.state, func.count(), func.min(Delivery.state_changed_at))
                .group_by(Delivery.state))).all()
            unpublished = await session.scalar(select(func.count()).select_from(OutboxEntry)
                                               .where(OutboxEntry.published_at.is_(None)))
            head = await session.scalar(select(EvidenceHead.seq).where(EvidenceHead.id == 1))
        return {
            "lienthong_messages": [({"kind": kind, "signature": outcome or "unknown"}, n)
                                   for kind, outcome, n in messages],
            "lienthong_deliveries": [({"state": state}, n) for state, n, _ in deliveries],
            "lienthong_deliveries_oldest_age_seconds": [
                ({"state": state}, (now - oldest).total_seconds())
                for state, _, oldest in deliveries if oldest is not None],
            "lienthong_stuck_deliveries": [({"state": state}, float(n or 0))
                                           for state, n in stuck.items()],
            "lienthong_outbox_unpublished": [({}, float(unpublished or 0))],
            "lienthong_evidence_entries": [({}, float(head or 0))],
        }

    async def delivery_timestamps(self, delivery_ids: Sequence[str]
                                  ) -> dict[str, tuple[datetime, datetime | None]]:
        """(accepted, available) per delivery: what benchmarks and fault tests measure."""
        async with self.transaction(read_only=True) as session:
            rows = (await session.execute(
                select(Delivery.public_id, Delivery.created_at, Delivery.available_at)
                .where(Delivery.public_id.in_(delivery_ids)))).all()
        return {r.public_id: (r.created_at, r.available_at) for r in rows}
