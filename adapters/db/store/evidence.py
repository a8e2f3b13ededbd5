"""The evidence log in the store: one hash-chained entry per event, appended in the
transaction of the event it records (`gateway.evidence` holds the chain's rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import EvidenceEntry, EvidenceHead, utcnow
from adapters.db.store.base import SqlBase
from gateway.evidence import EvidenceEvent, entry_hash
from gateway.evidence import timestamp as evidence_time


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
    """Append to the chain in the caller's transaction: the event and its evidence commit
    together or not at all. Call it last, because it locks the head row until commit
    (which is what orders appends across gateway processes)."""
    head = await session.scalar(select(EvidenceHead).where(EvidenceHead.id == 1).with_for_update())
    if head is None:
        raise RuntimeError("evidence_head is missing: run `lienthong migrate`")
    fields: dict[str, Any] = {
        "seq": head.seq + 1,
        "at": evidence_time(at),
        "event": event.value,
        "message_id": message_id,
        "delivery_id": delivery_id,
        "actor": actor,
        "payload_sha256": payload_sha256,
        "details": details or {},
        "prev_hash": head.entry_hash,
    }
    digest = entry_hash(fields)
    session.add(
        EvidenceEntry(
            seq=fields["seq"],
            at=at,
            event=event.value,
            message_id=message_id,
            delivery_id=delivery_id,
            actor=actor,
            payload_sha256=payload_sha256,
            details=fields["details"],
            prev_hash=head.entry_hash,
            entry_hash=digest,
        )
    )
    head.seq, head.entry_hash = fields["seq"], digest


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

    async def evidence_head(self) -> tuple[int, str]:
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
    ) -> list[dict[str, Any]]:
        """Entries after `after_seq` in chain order, as the dicts `gateway.evidence` hashes."""
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
