"""The evidence log in the store: one hash-chained entry per event (`gateway.evidence` holds
the chain's rules).

An entry is written in the transaction of the event it records (the event and its evidence
commit together or not at all) but *unchained*: without `seq`, `prev_hash` and `entry_hash`,
and without taking any lock, so events of different packages never wait on one another. The
sequencer (`chain_evidence`, run by `gateway.services.evidence_sequencer` in every gateway
process) then chains unchained entries in batches: one transaction locks the head row, which
orders sequencers across processes (SQLite has one writer anyway), takes the next unchained
entries in insertion order, gives each its `seq`, `prev_hash` and `entry_hash` exactly as
`gateway.evidence` defines them, and moves the head. An entry left unchained by a crash is
chained by the next pass of any process.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import EvidenceEntry, EvidenceHead, table, utcnow
from adapters.db.store.base import EVIDENCE_APPENDED, SqlBase
from gateway.evidence import EvidenceEvent, entry_hash
from gateway.evidence import timestamp as evidence_time

CHAIN_BATCH = 500
"""Entries one sequencer pass chains at most (one transaction)."""

CHAINED_COLUMNS = ("id", "seq", "prev_hash", "entry_hash")
CHAIN_BATCH_UPDATE = text(
    "UPDATE evidence SET seq = batch.seq, prev_hash = batch.prev_hash, "
    "entry_hash = batch.entry_hash FROM unnest(CAST(:id AS BIGINT[]), CAST(:seq AS BIGINT[]), "
    "CAST(:prev_hash AS VARCHAR[]), CAST(:entry_hash AS VARCHAR[])) "
    "AS batch(id, seq, prev_hash, entry_hash) WHERE evidence.id = batch.id"
)
"""PostgreSQL: a whole pass's rows in one UPDATE."""


async def append_evidence(
    session: AsyncSession,
    event: EvidenceEvent,
    actor: str,
    at: datetime,
    *,
    message_id: str | None = None,
    delivery_id: str | None = None,
    payload_sha256: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write the entry in the caller's transaction: the event and its evidence commit
    together or not at all. It is written unchained and takes no lock; the sequencer gives it
    its place in the chain shortly after the commit (and is woken by it)."""
    await session.execute(
        insert(table(EvidenceEntry)).values(
            at=at,
            event=event.value,
            message_id=message_id,
            delivery_id=delivery_id,
            actor=actor,
            payload_sha256=payload_sha256,
            details=details or {},
        )
    )
    session.info[EVIDENCE_APPENDED] = True


def _unchained() -> Any:
    return EvidenceEntry.seq.is_(None)


class SqlEvidence(SqlBase):
    async def record_refusal(
        self, actor: str, payload_sha256: str | None, code: str, detail: str
    ) -> None:
        """A refused package leaves evidence too (its hash; its bytes are not kept)."""
        async with self.transaction() as session:
            await append_evidence(
                session,
                EvidenceEvent.REFUSED,
                actor,
                utcnow(),
                payload_sha256=payload_sha256,
                details={"code": code, "detail": detail[:1000]},
            )

    async def chain_evidence(self, limit: int = CHAIN_BATCH) -> int:
        """One sequencer pass: chain up to `limit` unchained entries, oldest first, in one
        transaction under the head row's lock; returns how many were chained. A pass that
        finds nothing to do takes no lock (one indexed read)."""
        async with self.transaction(read_only=True) as session:
            pending = await session.scalar(select(EvidenceEntry.id).where(_unchained()).limit(1))
        if pending is None:
            return 0
        async with self.transaction() as session:
            head = await session.scalar(
                select(EvidenceHead).where(EvidenceHead.id == 1).with_for_update()
            )
            if head is None:
                raise RuntimeError("evidence_head is missing: run `lienthong migrate`")
            # Read after the lock is held: whatever a sequencer before us chained is seen as
            # chained (PostgreSQL's READ COMMITTED takes a new snapshot per statement).
            rows = (
                await session.execute(
                    select(
                        EvidenceEntry.id,
                        EvidenceEntry.at,
                        EvidenceEntry.event,
                        EvidenceEntry.message_id,
                        EvidenceEntry.delivery_id,
                        EvidenceEntry.actor,
                        EvidenceEntry.payload_sha256,
                        EvidenceEntry.details,
                    )
                    .where(_unchained())
                    .order_by(EvidenceEntry.id)
                    .limit(limit)
                )
            ).all()
            if not rows:
                return 0
            seq, previous = head.seq, head.entry_hash
            chained: list[dict[str, Any]] = []
            for row in rows:
                seq += 1
                fields = {
                    "seq": seq,
                    "at": evidence_time(row.at),
                    "event": row.event,
                    "message_id": row.message_id,
                    "delivery_id": row.delivery_id,
                    "actor": row.actor,
                    "payload_sha256": row.payload_sha256,
                    "details": row.details,
                    "prev_hash": previous,
                }
                digest = entry_hash(fields)
                chained.append(
                    {"id": row.id, "seq": seq, "prev_hash": previous, "entry_hash": digest}
                )
                previous = digest
            if self.engine.dialect.name == "postgresql":
                # One statement for the batch (an executemany costs a round trip a row).
                await session.execute(
                    CHAIN_BATCH_UPDATE,
                    {name: [c[name] for c in chained] for name in CHAINED_COLUMNS},
                )
            else:
                await session.execute(update(EvidenceEntry), chained)
            head.seq, head.entry_hash = seq, previous
        return len(chained)

    async def flush_evidence(self) -> int:
        """Chain every entry committed before this call (batch after batch); how many."""
        total = 0
        while True:
            count = await self.chain_evidence(CHAIN_BATCH)
            total += count
            if count < CHAIN_BATCH:
                return total

    async def evidence_backlog(self) -> tuple[int, datetime | None]:
        """(entries not yet chained, the event time of the oldest of them): the sequencer's
        lag, for /metrics and `audit verify`."""
        async with self.transaction(read_only=True) as session:
            count, oldest = (
                await session.execute(
                    select(func.count(), func.min(EvidenceEntry.at)).where(_unchained())
                )
            ).one()
        return int(count or 0), oldest

    async def evidence_head(self, *, chain_pending: bool = True) -> tuple[int, str]:
        """The newest chained entry (seq, hash). With `chain_pending` (the default) every
        entry committed so far is chained first, so the head covers every event recorded
        before the call; without it, the head as the sequencer left it."""
        if chain_pending:
            await self.flush_evidence()
        async with self.transaction(read_only=True) as session:
            head = await session.scalar(select(EvidenceHead).where(EvidenceHead.id == 1))
        assert head is not None
        return head.seq, head.entry_hash

    async def evidence_page(
        self,
        after_seq: int,
        limit: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        chain_pending: bool = True,
    ) -> list[dict[str, Any]]:
        """Chained entries after `after_seq` in chain order, as the dicts `gateway.evidence`
        hashes. With `chain_pending` (the default) pending entries are chained first, so a
        read right after an event finds it; a walk over many pages chains once, before its
        first page, and passes False."""
        if chain_pending:
            await self.flush_evidence()
        query = select(EvidenceEntry).where(EvidenceEntry.seq > after_seq)
        if since is not None:
            query = query.where(EvidenceEntry.at >= since)
        if until is not None:
            query = query.where(EvidenceEntry.at < until)
        async with self.transaction(read_only=True) as session:
            rows = (await session.scalars(query.order_by(EvidenceEntry.seq).limit(limit))).all()
        return [
            {
                "seq": r.seq,
                "at": evidence_time(r.at),
                "event": r.event,
                "message_id": r.message_id,
                "delivery_id": r.delivery_id,
                "actor": r.actor,
                "payload_sha256": r.payload_sha256,
                "details": r.details,
                "prev_hash": r.prev_hash,
                "entry_hash": r.entry_hash,
            }
            for r in rows
        ]
