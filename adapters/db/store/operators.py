"""The operator side of the SQL store (SPEC §4.3): search, timelines, replay and cancel.

Replay never creates a second inbox item: there is one delivery row per (message, recipient),
only deliveries that have not reached the recipient's inbox (`dead`, or stuck in `accepted`,
`queued`, `retrying`) are queued again, and the consumer (`SqlInbox.make_available`) turns a
delivery into an inbox item only from `queued`/`retrying`, under a row lock. A replayed
delivery keeps its message id and delivery id, so recipients can deduplicate.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery, DeliveryEvent, Message, OutboxEntry, utcnow
from adapters.db.models_operators import OperatorAccount, OperatorActionRow
from adapters.db.store.base import SqlBase, transition
from adapters.db.store.evidence import append_evidence
from gateway.delivery_states import DeliveryState, can_transition
from gateway.errors import DocumentNotFound, InvalidRequest, NotFound
from gateway.evidence import EvidenceEvent
from gateway.operators import (
    MAX_SELECTION,
    ActedOn,
    ActionOutcome,
    DeliveryRow,
    MessageDetail,
    MessageFilter,
    Operator,
    OperatorAction,
    OperatorCredentials,
    OperatorRecord,
    Role,
    Selection,
    Skipped,
    replay_refusal,
)
from gateway.records import TimelineEntry

S = DeliveryState
Row = tuple[Delivery, Message]
Columns = TypeVarTuple("Columns")


def _row(d: Delivery, m: Message, timeline: Sequence[TimelineEntry] = ()) -> DeliveryRow:
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
    )


def _operator_record(row: OperatorAccount) -> OperatorRecord:
    return OperatorRecord(
        name=row.name, role=Role(row.role), enabled=row.enabled, created_at=row.created_at
    )


def _filtered(query: Select[*Columns], where: MessageFilter, now: datetime) -> Select[*Columns]:
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
    return query


class SqlOperators(SqlBase):
    """What operators do, each call one transaction."""

    # -- operators -------------------------------------------------------------------------

    async def add_operator(self, name: str, role: Role, token_sha256: str, by: Operator) -> None:
        now = utcnow()
        try:
            async with self.transaction() as session:
                existing = await session.scalar(
                    select(OperatorAccount.id).where(OperatorAccount.name == name)
                )
                if existing is not None:
                    raise InvalidRequest(f"operator {name} already exists")
                session.add(
                    OperatorAccount(
                        name=name,
                        role=role.value,
                        token_sha256=token_sha256,
                        enabled=True,
                        created_at=now,
                    )
                )
                session.add(
                    self._action_row(
                        by,
                        "operator.add",
                        f"operator {name}",
                        None,
                        False,
                        {"role": role.value},
                        now,
                    )
                )
        except IntegrityError:
            raise InvalidRequest(f"operator {name} already exists") from None

    async def set_operator_enabled(self, name: str, enabled: bool, by: Operator) -> None:
        now = utcnow()
        async with self.transaction() as session:
            row = await session.scalar(select(OperatorAccount).where(OperatorAccount.name == name))
            if row is None:
                raise NotFound(f"no operator {name}")
            row.enabled = enabled
            session.add(
                self._action_row(
                    by,
                    "operator.enable" if enabled else "operator.disable",
                    f"operator {name}",
                    None,
                    False,
                    {},
                    now,
                )
            )

    async def get_operator(self, name: str) -> OperatorCredentials | None:
        async with self.transaction(read_only=True) as session:
            row = await session.scalar(select(OperatorAccount).where(OperatorAccount.name == name))
        if row is None:
            return None
        return OperatorCredentials(_operator_record(row), row.token_sha256)

    async def list_operators(self) -> list[OperatorRecord]:
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.scalars(select(OperatorAccount).order_by(OperatorAccount.name))
            ).all()
        return [_operator_record(row) for row in rows]

    # -- reading ---------------------------------------------------------------------------

    async def find_deliveries(
        self, where: MessageFilter, after: int, limit: int
    ) -> tuple[list[DeliveryRow], int | None]:
        """One page of deliveries (oldest row first) after cursor `after` (a row id)."""
        query = _filtered(
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
        return [_row(d, m) for d, m in page], next_cursor

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
            deliveries=tuple(_row(d, message, events.get(d.id, ())) for d in deliveries),
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

    # -- acting ----------------------------------------------------------------------------

    async def replay(
        self, selection: Selection, reason: str, by: Operator, dry_run: bool
    ) -> ActionOutcome:
        """Queue dead or stuck deliveries again: `queued`, and a new outbox row with the
        routing key and payload of the original. Others are skipped, with why."""
        now = utcnow()
        async with self.transaction() as session:
            rows, skipped = await self._select(session, selection, lock=not dry_run)
            routes = await self._routing_keys(session, [d.id for d, _ in rows])
            chosen: list[Row] = []
            for delivery, message in rows:
                why = replay_refusal(delivery.state)
                if why is None and delivery.id not in routes:
                    why = "no routing recorded for it (it was never queued)"
                if why is not None:
                    skipped.append(Skipped(delivery.public_id, why))
                else:
                    chosen.append((delivery, message))
            if not dry_run:
                for delivery, _ in chosen:
                    session.add(
                        OutboxEntry(
                            delivery_id=delivery.id,
                            routing_key=routes[delivery.id],
                            payload=json.dumps({"delivery": delivery.public_id}),
                            created_at=now,
                        )
                    )
            return await self._settle(
                session,
                "replay",
                S.QUEUED,
                EvidenceEvent.REPLAYED,
                chosen,
                skipped,
                selection,
                reason,
                by,
                dry_run,
                now,
            )

    async def cancel(
        self, selection: Selection, reason: str, by: Operator, dry_run: bool
    ) -> ActionOutcome:
        """Cancel deliveries that are not finished; the state machine decides which are."""
        if selection.filter is not None:
            raise InvalidRequest("cancel takes delivery ids or a message id, not a filter")
        now = utcnow()
        async with self.transaction() as session:
            rows, skipped = await self._select(session, selection, lock=not dry_run)
            chosen: list[Row] = []
            for delivery, message in rows:
                if can_transition(S(delivery.state), S.CANCELLED):
                    chosen.append((delivery, message))
                else:
                    skipped.append(
                        Skipped(delivery.public_id, f"{delivery.state}: cannot be cancelled")
                    )
            return await self._settle(
                session,
                "cancel",
                S.CANCELLED,
                EvidenceEvent.CANCELLED,
                chosen,
                skipped,
                selection,
                reason,
                by,
                dry_run,
                now,
            )

    async def _settle(
        self,
        session: AsyncSession,
        action: str,
        target: DeliveryState,
        event: EvidenceEvent,
        chosen: list[Row],
        skipped: list[Skipped],
        selection: Selection,
        reason: str,
        by: Operator,
        dry_run: bool,
        now: datetime,
    ) -> ActionOutcome:
        """What replay and cancel share: move the chosen deliveries (unless a dry run),
        record the action, and leave one evidence entry per delivery moved."""
        previous = {d.id: d.state for d, _ in chosen}
        if not dry_run:
            for delivery, _ in chosen:
                transition(session, delivery, target, by.actor, f"{action}: {reason}", now)
                delivery.lease_until = None
                delivery.next_offer_at = None
        done = tuple(
            ActedOn(d.public_id, m.public_id, d.recipient_code, d.state) for d, m in chosen
        )
        outcome = await self._record(
            session, by, action, selection, reason, dry_run, done, skipped, now
        )
        if not dry_run:
            for delivery, message in chosen:
                await append_evidence(
                    session,
                    event,
                    by.actor,
                    now,
                    message_id=message.public_id,
                    delivery_id=delivery.public_id,
                    payload_sha256=message.payload_sha256
                    if event is EvidenceEvent.REPLAYED
                    else None,
                    details={
                        "reason": reason,
                        "action": outcome.action_id,
                        "from_state": previous[delivery.id],
                        "recipient": delivery.recipient_code,
                    },
                )
        return outcome

    async def _select(
        self, session: AsyncSession, selection: Selection, lock: bool
    ) -> tuple[list[Row], list[Skipped]]:
        query = select(Delivery, Message).join(Message, Message.id == Delivery.message_id)
        skipped: list[Skipped] = []
        if selection.delivery_ids:
            query = query.where(Delivery.public_id.in_(selection.delivery_ids))
        elif selection.message_id is not None:
            query = query.where(Message.public_id == selection.message_id)
        else:
            assert selection.filter is not None
            query = _filtered(query, selection.filter, utcnow())
        query = query.order_by(Delivery.id).limit(MAX_SELECTION + 1)
        if lock:
            query = query.with_for_update(of=Delivery)
        rows: list[Row] = [(d, m) for d, m in (await session.execute(query)).all()]
        if len(rows) > MAX_SELECTION:
            raise InvalidRequest(
                f"more than {MAX_SELECTION} deliveries match: narrow the "
                "filter (a state, a recipient, a date range)"
            )
        if selection.message_id is not None and not rows:
            exists = await session.scalar(
                select(Message.id).where(Message.public_id == selection.message_id)
            )
            if exists is None:
                raise DocumentNotFound(f"no message {selection.message_id}")
        found = {d.public_id for d, _ in rows}
        skipped += [
            Skipped(i, "no such delivery")
            for i in dict.fromkeys(selection.delivery_ids)
            if i not in found
        ]
        return rows, skipped

    @staticmethod
    async def _routing_keys(session: AsyncSession, delivery_ids: Sequence[int]) -> dict[int, str]:
        """The routing key each delivery was last queued with."""
        if not delivery_ids:
            return {}
        rows = (
            await session.execute(
                select(OutboxEntry.delivery_id, OutboxEntry.routing_key)
                .where(OutboxEntry.delivery_id.in_(delivery_ids))
                .order_by(OutboxEntry.id)
            )
        ).all()
        return {r.delivery_id: r.routing_key for r in rows}

    async def _record(
        self,
        session: AsyncSession,
        by: Operator,
        action: str,
        selection: Selection,
        reason: str,
        dry_run: bool,
        done: tuple[ActedOn, ...],
        skipped: Sequence[Skipped],
        now: datetime,
    ) -> ActionOutcome:
        key = ("would_" if dry_run else "") + {"replay": "replay", "cancel": "cancel"}[action]
        details: dict[str, Any] = {
            "selection": {
                "delivery_ids": list(selection.delivery_ids),
                "message_id": selection.message_id,
                "filter": selection.filter.as_dict() if selection.filter else None,
            },
            key: [
                {
                    "delivery_id": a.delivery_id,
                    "message_id": a.message_id,
                    "to": a.to_code,
                    "state": a.state,
                }
                for a in done
            ],
            "skipped": [{"delivery_id": s.delivery_id, "why": s.why} for s in skipped],
        }
        row = self._action_row(by, action, selection.describe(), reason, dry_run, details, now)
        session.add(row)
        await session.flush()
        return ActionOutcome(
            action_id=row.id, action=action, dry_run=dry_run, done=done, skipped=tuple(skipped)
        )

    @staticmethod
    def _action_row(
        by: Operator,
        action: str,
        target: str,
        reason: str | None,
        dry_run: bool,
        details: dict[str, Any],
        now: datetime,
    ) -> OperatorActionRow:
        return OperatorActionRow(
            at=now,
            operator=by.name,
            role=by.role.value,
            action=action,
            target=target,
            reason=reason,
            dry_run=dry_run,
            details=details,
        )
