"""The outbox in the store: what the relays publish, and what the broker's confirms change.

A claim is an atomic `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` with the claim
condition repeated in the outer WHERE, so on PostgreSQL a row another relay just claimed drops
out instead of being handed out twice; on SQLite `BEGIN IMMEDIATE` serialises writers and the
same statement is simply atomic.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update

from adapters.db.models import Delivery, OutboxEntry, utcnow
from adapters.db.store.base import SqlBase, ids_in, move_all, state_values
from gateway.delivery_states import IN_TRANSPORT, PUBLISHED, PUBLISHED_REASON, DeliveryState
from gateway.records import OutboxWork

S = DeliveryState


class SqlOutbox(SqlBase):
    async def claim_outbox(self, owner: str, limit: int, claim_seconds: float) -> list[OutboxWork]:
        now = utcnow()
        claimable = and_(
            OutboxEntry.published_at.is_(None),
            or_(OutboxEntry.claimed_until.is_(None), OutboxEntry.claimed_until < now),
        )
        candidates = (
            select(OutboxEntry.id)
            .where(claimable)
            .order_by(OutboxEntry.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(candidates.scalar_subquery()), claimable)
            .values(
                claimed_by=owner,
                claimed_until=now + timedelta(seconds=claim_seconds),
                publish_attempts=OutboxEntry.publish_attempts + 1,
            )
            .returning(OutboxEntry.id, OutboxEntry.routing_key, OutboxEntry.payload)
            .execution_options(synchronize_session=False)
        )
        async with self.transaction() as session:
            rows = (await session.execute(statement)).all()
        return sorted(
            (OutboxWork(r.id, r.routing_key, r.payload) for r in rows), key=lambda w: w.outbox_id
        )

    async def mark_published(self, outbox_ids: Sequence[int], actor: str) -> None:
        """After the broker confirmed: the rows are done, and their deliveries take the
        relay's step (`accepted` → `queued`) unless a consumer already took it for them."""
        if not outbox_ids:
            return
        now = utcnow()
        async with self.transaction() as session:
            delivery_ids = (
                (
                    await session.execute(
                        update(OutboxEntry)
                        .where(ids_in(session, OutboxEntry.id, outbox_ids))
                        .values(
                            published_at=now, claimed_by=None, claimed_until=None, last_error=None
                        )
                        .returning(OutboxEntry.delivery_id)
                        .execution_options(synchronize_session=False)
                    )
                )
                .scalars()
                .all()
            )
            await move_all(
                session,
                delivery_ids,
                {PUBLISHED.source},
                PUBLISHED.target,
                actor,
                PUBLISHED_REASON,
                now,
            )

    async def release_outbox(self, outbox_ids: Sequence[int], error: str) -> None:
        if not outbox_ids:
            return
        async with self.transaction() as session:
            await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id.in_(outbox_ids))
                .values(claimed_by=None, claimed_until=None, last_error=error[:2000])
                .execution_options(synchronize_session=False)
            )

    async def republish_stale(self, published_before: datetime) -> int:
        """Publish again what the broker confirmed but no consumer turned into an inbox item
        (an embedded broker that restarted, a message lost on a broken node). Consumers are
        idempotent, so a second copy is harmless; a lost one would not be."""
        waiting = select(Delivery.id).where(
            or_(
                Delivery.state.in_(state_values(IN_TRANSPORT)),
                # a push retry whose delayed message was lost (process or broker gone)
                and_(
                    Delivery.state == S.RETRYING.value, Delivery.next_attempt_at < published_before
                ),
            )
        )
        async with self.transaction() as session:
            result = await session.execute(
                update(OutboxEntry)
                .where(
                    OutboxEntry.delivery_id.in_(waiting.scalar_subquery()),
                    OutboxEntry.published_at.is_not(None),
                    OutboxEntry.published_at < published_before,
                )
                .values(published_at=None, claimed_by=None, claimed_until=None)
                .returning(OutboxEntry.id)
                .execution_options(synchronize_session=False)
            )
            return len(result.all())

    async def unpublished_count(self) -> int:
        async with self.transaction(read_only=True) as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(OutboxEntry)
                    .where(OutboxEntry.published_at.is_(None))
                )
                or 0
            )
