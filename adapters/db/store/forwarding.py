"""Forwarded deliveries in the store (SPEC §3.5): claiming the deliveries of one package to
one peer together, and what the peer's answer makes of them.

A claim is a short lease on the rows (`lease_until`, unused before a delivery reaches an
inbox): the process that holds it sends once for every recipient behind that peer; a
broker message for a sibling finds it claimed and waits, or finds it forwarded and stops.
A process killed after the peer accepted but before this node recorded it leaves a lease
that runs out: the next attempt sends the same package again, and the peer answers it as a
duplicate, which counts as success (`forward_succeeded`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery, Message, utcnow
from adapters.db.store.base import SqlBase, catch_up, transition
from adapters.db.store.evidence import append_evidence
from gateway.delivery_states import DELIVERABLE, DeliveryState
from gateway.evidence import EvidenceEvent
from gateway.peers import Busy, ForwardBatch
from gateway.types import RouteKind

S = DeliveryState
LOCKED_RETRY_SECONDS = 1.0
"""A delivery row locked by a transaction in flight (the relay recording `queued`, another
claim): those commit in milliseconds, so look again soon."""
DOWNSTREAM_FINAL = frozenset({S.DONE.value, S.DEAD.value, S.CANCELLED.value})
"""States a delivery at the peer does not leave: not read again."""


class SqlForwarding(SqlBase):
    async def claim_forward(
        self, delivery_id: str, lease_seconds: float
    ) -> ForwardBatch | Busy | None:
        """The deliveries of this one's package to its peer that are still to be forwarded,
        leased together; `Busy` when another attempt holds them (its claim's lease runs, or
        a transaction has the row locked this instant); None when there is nothing to do
        (forwarded, dead, cancelled, or the peer is gone — then it is dead here).

        Rows locked by another transaction are skipped rather than waited for (no lock
        order to get wrong against the relay's batch updates); if this very delivery was
        among them it is looked at again after `LOCKED_RETRY_SECONDS`, not after a lease."""
        now = utcnow()
        async with self.transaction() as session:
            row = (
                await session.execute(
                    select(
                        Delivery.message_id, Delivery.peer, Delivery.state, Delivery.lease_until
                    ).where(
                        Delivery.public_id == delivery_id, Delivery.route == RouteKind.PEER.value
                    )
                )
            ).first()
            if row is None or row.state not in DELIVERABLE:
                return None
            peer = (await self.config()).peers.get(row.peer or "")
            siblings = (
                await session.scalars(
                    select(Delivery)
                    .where(
                        Delivery.message_id == row.message_id,
                        Delivery.route == RouteKind.PEER.value,
                        Delivery.peer == row.peer,
                        Delivery.state.in_([s.value for s in DELIVERABLE]),
                        or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
                    )
                    .order_by(Delivery.id)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not any(d.public_id == delivery_id for d in siblings):
                if row.lease_until is not None and row.lease_until > now:
                    return Busy((row.lease_until - now).total_seconds())
                return Busy(LOCKED_RETRY_SECONDS)
            if peer is None or not peer.enabled:
                reason = (
                    f"peer {row.peer} is no longer configured"
                    if peer is None
                    else (f"peer {row.peer} is disabled")
                )
                for delivery in siblings:
                    catch_up(session, delivery, "forward", now)
                    transition(session, delivery, S.DEAD, "forward", reason, now)
                    delivery.last_error = reason
                return None
            message = await session.get(Message, row.message_id)
            assert message is not None
            until = now + timedelta(seconds=lease_seconds)
            for delivery in siblings:
                delivery.lease_until = until
            return ForwardBatch(
                peer=peer,
                message_id=message.public_id,
                kind=message.kind,
                from_code=message.from_code,
                payload_sha256=message.payload_sha256,
                deliveries=tuple((d.public_id, d.recipient_code) for d in siblings),
                attempts=max(d.attempts for d in siblings),
                created_at=min(d.created_at for d in siblings),
                trace_organs=trace_organs(message.header),
            )

    async def forward_succeeded(
        self, delivery_ids: Sequence[str], peer_doc_id: str, detail: str
    ) -> int:
        """`forwarded`, with the peer's DocId; evidence for each. Returns how many moved."""
        now = utcnow()
        async with self.transaction() as session:
            deliveries = await self._claimed(session, delivery_ids)
            for delivery, message in deliveries:
                catch_up(session, delivery, "forward", now)
                delivery.attempts += 1
                transition(
                    session,
                    delivery,
                    S.FORWARDED,
                    "forward",
                    f"forwarded to peer {delivery.peer} as {peer_doc_id}: {detail}"[:2000],
                    now,
                )
                delivery.peer_doc_id = peer_doc_id[:100]
                delivery.lease_until = delivery.next_attempt_at = delivery.last_error = None
                await append_evidence(
                    session,
                    EvidenceEvent.FORWARDED,
                    f"peer:{delivery.peer}",
                    now,
                    message_id=message.public_id,
                    delivery_id=delivery.public_id,
                    payload_sha256=message.payload_sha256,
                    details={
                        "recipient": delivery.recipient_code,
                        "peer": delivery.peer,
                        "peer_doc_id": peer_doc_id,
                    },
                )
            return len(deliveries)

    async def forward_failed(
        self, delivery_ids: Sequence[str], error: str, retry_in: float | None
    ) -> list[str]:
        """A failed attempt for each: `retrying` (next in `retry_in` s) or, with None,
        `dead` (budget spent or a permanent refusal). Returns the states they are now in."""
        now = utcnow()
        async with self.transaction() as session:
            states = []
            for delivery, _ in await self._claimed(session, delivery_ids):
                catch_up(session, delivery, "forward", now)
                delivery.attempts += 1
                target = S.DEAD if retry_in is None else S.RETRYING
                reason = f"attempt {delivery.attempts} to peer {delivery.peer}: {error}" + (
                    "" if retry_in is not None else "; not retried"
                )
                transition(session, delivery, target, "forward", reason[:2000], now)
                delivery.last_error = error[:2000]
                delivery.lease_until = None
                delivery.next_attempt_at = (
                    None if retry_in is None else now + timedelta(seconds=retry_in)
                )
                states.append(delivery.state)
            return states

    @staticmethod
    async def _claimed(
        session: AsyncSession, delivery_ids: Sequence[str]
    ) -> list[tuple[Delivery, Message]]:
        rows = (
            await session.execute(
                select(Delivery, Message)
                .join(Message, Message.id == Delivery.message_id)
                .where(
                    Delivery.public_id.in_(list(delivery_ids)),
                    Delivery.state.in_([s.value for s in DELIVERABLE]),
                )
                .order_by(Delivery.id)
                .with_for_update(of=Delivery)
            )
        ).all()
        return [(d, m) for d, m in rows]

    async def forwarded_awaiting_downstream(self, limit: int) -> list[tuple[str, str, str, str]]:
        """(peer, peer DocId, delivery id, recipient) of forwarded deliveries whose
        downstream state is not final yet, least recently read first (the downstream
        tracker reads them)."""
        async with self.transaction(read_only=True) as session:
            rows = await session.execute(
                select(
                    Delivery.peer,
                    Delivery.peer_doc_id,
                    Delivery.public_id,
                    Delivery.recipient_code,
                )
                .where(
                    Delivery.state == S.FORWARDED.value,
                    Delivery.peer_doc_id.is_not(None),
                    or_(
                        Delivery.downstream_state.is_(None),
                        Delivery.downstream_state.not_in(sorted(DOWNSTREAM_FINAL)),
                    ),
                )
                .order_by(Delivery.downstream_at.is_not(None), Delivery.downstream_at)
                .limit(limit)
            )
            return [
                (r.peer or "", r.peer_doc_id or "", r.public_id, r.recipient_code)
                for r in rows.all()
            ]

    async def record_downstream(
        self, delivery_id: str, state: str, at: datetime | None = None
    ) -> None:
        async with self.transaction() as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.public_id == delivery_id)
                .values(downstream_state=state[:32], downstream_at=at or utcnow())
                .execution_options(synchronize_session=False)
            )


def trace_organs(header: dict[str, Any] | None) -> tuple[str, ...]:
    """The OrganIds of the TraceHeaders in a stored header (relays may leave them out)."""
    traces = (header or {}).get("traces") or []
    return tuple(str(t["organ_id"]) for t in traces if isinstance(t, dict) and t.get("organ_id"))
