"""What the node reports about its deliveries: the stuck ones (for operators and the daily
alert), the gauges of /metrics, and timestamps that benchmarks and fault tests measure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.exc import ProgrammingError

from adapters.db.models import Delivery, EvidenceEntry, EvidenceHead, Message, OutboxEntry, utcnow
from adapters.db.store.base import SqlBase
from adapters.db.store.views import delivery_view
from gateway.errors import ServiceUnavailable
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
                        Delivery.state,
                        Delivery.route,
                        func.count(),
                        func.min(Delivery.state_changed_at),
                    ).group_by(Delivery.state, Delivery.route)
                )
            ).all()
            unpublished, oldest_unpublished = (
                await session.execute(
                    select(func.count(), func.min(OutboxEntry.created_at)).where(
                        OutboxEntry.published_at.is_(None)
                    )
                )
            ).one()
            head = await session.scalar(select(EvidenceHead.seq).where(EvidenceHead.id == 1))
            unchained, oldest_unchained = (
                await session.execute(
                    select(func.count(), func.min(EvidenceEntry.at)).where(
                        EvidenceEntry.seq.is_(None)
                    )
                )
            ).one()
        oldest_by_state: dict[str, datetime] = {}
        for state, _, _, oldest in deliveries:
            if oldest is not None and (
                state not in oldest_by_state or oldest < oldest_by_state[state]
            ):
                oldest_by_state[state] = oldest
        return {
            "lienthong_messages": [
                ({"kind": kind, "signature": outcome or "unknown"}, n)
                for kind, outcome, n in messages
            ],
            "lienthong_deliveries": [
                ({"state": state, "route": route}, n) for state, route, n, _ in deliveries
            ],
            "lienthong_deliveries_oldest_age_seconds": [
                ({"state": state}, (now - oldest).total_seconds())
                for state, oldest in oldest_by_state.items()
            ],
            "lienthong_stuck_deliveries": [
                ({"state": state}, float(n or 0)) for state, n in stuck.items()
            ],
            "lienthong_outbox_unpublished": [({}, float(unpublished or 0))],
            "lienthong_outbox_oldest_unpublished_age_seconds": [
                ({}, (now - oldest_unpublished).total_seconds() if oldest_unpublished else 0.0)
            ],
            "lienthong_evidence_entries": [({}, float(head or 0))],
            "lienthong_evidence_unchained": [({}, float(unchained or 0))],
            "lienthong_evidence_unchained_oldest_age_seconds": [
                ({}, (now - oldest_unchained).total_seconds() if oldest_unchained else 0.0)
            ],
        }

    async def schema_revision(self) -> str | None:
        """The migration the database is at (None: never migrated); a round trip that also
        tells the database answers (readiness)."""
        try:
            async with self.transaction(read_only=True) as session:
                revision: str | None = await session.scalar(
                    text("SELECT version_num FROM alembic_version")
                )
                return revision
        except ProgrammingError:  # PostgreSQL: no such table
            return None
        except ServiceUnavailable as error:
            if "no such table" in str(error.__cause__):  # SQLite says it this way
                return None
            raise

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
