"""What the node reports about its deliveries: the stuck ones (for operators and the daily
alert), the gauges of /metrics, and timestamps that benchmarks and fault tests measure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select

from adapters.db.models import Delivery, EvidenceEntry, EvidenceHead, Message, OutboxEntry, utcnow
from adapters.db.store.base import SqlBase
from adapters.db.store.views import delivery_view
from gateway.records import DeliveryView


class SqlMetrics(SqlBase):
    async def stuck(
        self, thresholds: Mapping[str, float], limit: int = 500
    ) -> list[tuple[str, DeliveryView]]:
        """Deliveries that stayed in a state longer than its threshold (seconds), oldest
        first, each with the state it is stuck in: accepted/queued (not yet in the inbox),
        available (not collected: the provinces' daily alert), fail, retrying, dead."""
        now = utcnow()
        stuck = or_(
            *(
                and_(
                    Delivery.state == state,
                    Delivery.state_changed_at < now - timedelta(seconds=seconds),
                )
                for state, seconds in thresholds.items()
            )
        )
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.execute(
                    select(Delivery, Message)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(stuck)
                    .order_by(Delivery.state_changed_at)
                    .limit(limit)
                )
            ).all()
        return [(d.state, delivery_view(d, m)) for d, m in rows]

    async def metrics(
        self, stuck_thresholds: Mapping[str, float]
    ) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Gauges for /metrics, from the database so every process reports the node's truth."""
        now = utcnow()
        async with self.transaction(read_only=True) as session:
            stuck = {
                state: await session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(
                        Delivery.state == state,
                        Delivery.state_changed_at < now - timedelta(seconds=seconds),
                    )
                )
                for state, seconds in stuck_thresholds.items()
            }
            messages = (
                await session.execute(
                    select(Message.kind, Message.signature_outcome, func.count()).group_by(
                        Message.kind, Message.signature_outcome
                    )
                )
            ).all()
            deliveries = (
                await session.execute(
                    select(
                        Delivery.state, func.count(), func.min(Delivery.state_changed_at)
                    ).group_by(Delivery.state)
                )
            ).all()
            unpublished = await session.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .where(OutboxEntry.published_at.is_(None))
            )
            head = await session.scalar(select(EvidenceHead.seq).where(EvidenceHead.id == 1))
            unchained, oldest_unchained = (
                await session.execute(
                    select(func.count(), func.min(EvidenceEntry.at)).where(
                        EvidenceEntry.seq.is_(None)
                    )
                )
            ).one()
        return {
            "lienthong_messages": [
                ({"kind": kind, "signature": outcome or "unknown"}, n)
                for kind, outcome, n in messages
            ],
            "lienthong_deliveries": [({"state": state}, n) for state, n, _ in deliveries],
            "lienthong_deliveries_oldest_age_seconds": [
                ({"state": state}, (now - oldest).total_seconds())
                for state, _, oldest in deliveries
                if oldest is not None
            ],
            "lienthong_stuck_deliveries": [
                ({"state": state}, float(n or 0)) for state, n in stuck.items()
            ],
            "lienthong_outbox_unpublished": [({}, float(unpublished or 0))],
            "lienthong_evidence_entries": [({}, float(head or 0))],
            "lienthong_evidence_unchained": [({}, float(unchained or 0))],
            "lienthong_evidence_unchained_oldest_age_seconds": [
                ({}, (now - oldest_unchained).total_seconds() if oldest_unchained else 0.0)
            ],
        }

    async def delivery_timestamps(
        self, delivery_ids: Sequence[str]
    ) -> dict[str, tuple[datetime, datetime | None]]:
        """(accepted, available) per delivery: what benchmarks and fault tests measure."""
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.execute(
                    select(Delivery.public_id, Delivery.created_at, Delivery.available_at).where(
                        Delivery.public_id.in_(delivery_ids)
                    )
                )
            ).all()
        return {r.public_id: (r.created_at, r.available_at) for r in rows}
