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
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery, Message, OutboxEntry, utcnow
from adapters.db.store.base import SqlBase, transition
from adapters.db.store.evidence import append_evidence
from adapters.db.store.operator_accounts import operator_action_row
from adapters.db.store.operator_reads import message_filter
from gateway.delivery_states import DeliveryState, can_transition
from gateway.errors import DocumentNotFound, InvalidRequest
from gateway.evidence import EvidenceEvent
from gateway.operators import (
    MAX_SELECTION,
    ActedOn,
    ActionOutcome,
    Operator,
    Selection,
    Skipped,
    replay_refusal,
)

S = DeliveryState
Row = tuple[Delivery, Message]


class SqlOperators(SqlBase):
    """Replay and cancel, each call one transaction."""

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
                for delivery, message in chosen:
                    session.add(
                        OutboxEntry(
                            delivery_id=delivery.id,
                            routing_key=routes[delivery.id],
                            payload=json.dumps(
                                {
                                    "delivery": delivery.public_id,
                                    "route": delivery.route,
                                    "message": message.public_id,
                                }
                            ),
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
            query = message_filter(query, selection.filter, utcnow())
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
        row = operator_action_row(by, action, selection.describe(), reason, dry_run, details, now)
        session.add(row)
        await session.flush()
        return ActionOutcome(
            action_id=row.id, action=action, dry_run=dry_run, done=done, skipped=tuple(skipped)
        )
