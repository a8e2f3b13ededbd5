"""Directory sync from peers in the store (SPEC §3.5): a peer's units applied by the rules of
`gateway.directory_sync`, the peer's sync position recorded in the same transaction, and the
lease that lets one gateway process at a time run the scheduled sync of a peer.

A batch (one page of a peer's answer) is one transaction: the rows it changes take versions
here like any directory change (so this node's own peers sync them incrementally in turn),
and `peers.directory_version` moves to the page's last version with them — a sync that dies
half-way goes on from the last page that committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from adapters.db.models import Agency, Peer, utcnow
from adapters.db.store.base import SqlBase
from adapters.db.store.directory import (
    LOOKUP_CHUNK,
    SqlDirectory,
    differs,
    known_agencies,
    write_agencies,
)
from adapters.db.store.evidence import append_evidence
from gateway.agencies import CLOSED, MERGED
from gateway.codes import code_level
from gateway.directory_sync import PeerUnit, SyncCounts
from gateway.errors import NotFound
from gateway.evidence import EvidenceEvent

LEASE_SLACK_SECONDS = 1.0
"""A process whose timer fires a little early still claims a sync that is due (at most a
tenth of the interval)."""


class SqlDirectorySync(SqlBase):
    async def apply_peer_units(
        self,
        peer: str,
        units: Sequence[PeerUnit],
        *,
        other_peers: frozenset[str] = frozenset(),
        adopt: bool = False,
        version: int | None = None,
    ) -> SyncCounts:
        """Apply units the caller found routed to `peer` (rules 1 and 3 are the caller's):
        rows without a peer are this node's own and kept (unless `adopt`), rows of another
        configured peer are kept, the others are created or updated and marked `peer`.
        Records `version` (when given) and the time as the peer's sync position."""
        counts = SyncCounts()
        now = utcnow()
        wanted = {unit.code: unit for unit in units}
        async with self.transaction() as session:
            versions = await SqlDirectory._versions(session)
            known = await known_agencies(session, list(wanted))
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            remarked: list[int] = []
            changed: list[str] = []
            for code, unit in wanted.items():
                row = known.get(code)
                if row is not None and row.peer is None and not adopt:
                    counts.kept_own += 1
                    continue
                if row is not None and row.peer not in (None, peer) and row.peer in other_peers:
                    counts.kept_other_peer += 1
                    continue
                fields = _fields(unit, row, peer)
                if row is None:
                    inserts.append({"code": code, **fields})
                elif differs(row, fields):
                    updates.append({"id": row.id, **fields})
                else:
                    if row.peer != peer:  # adopted, or its peer was removed: no new version
                        remarked.append(row.id)
                    counts.unchanged += 1
                    continue
                changed.append(code)
                if fields["status"] in CLOSED and (row is None or row.status not in CLOSED):
                    counts.closed += 1
            counts.added, counts.updated = len(inserts), len(updates)
            await write_agencies(session, versions, inserts, updates, now)
            for start in range(0, len(remarked), LOOKUP_CHUNK):
                await session.execute(
                    update(Agency)
                    .where(Agency.id.in_(remarked[start : start + LOOKUP_CHUNK]))
                    .values(peer=peer)
                    .execution_options(synchronize_session=False)
                )
            if inserts or updates:
                await append_evidence(
                    session,
                    EvidenceEvent.AGENCY_SYNCED,
                    f"peer:{peer}",
                    now,
                    details={
                        "peer": peer,
                        "added": counts.added,
                        "updated": counts.updated,
                        "closed": counts.closed,
                        "peer_version": version,
                        "codes": changed[:20],
                    },
                )
            position: dict[str, Any] = {"directory_synced_at": now}
            if version is not None:
                position["directory_version"] = version
            await session.execute(
                update(Peer)
                .where(Peer.name == peer)
                .values(last_contact_at=now, **position)
                .execution_options(synchronize_session=False)
            )
        return counts

    async def peer_directory_version(self, peer: str) -> int | None:
        """How far this node synced the peer's directory (None: never)."""
        async with self.transaction(read_only=True) as session:
            row = (
                await session.execute(
                    select(Peer.id, Peer.directory_version).where(Peer.name == peer)
                )
            ).first()
        if row is None:
            raise NotFound(f"no peer {peer}")
        version: int | None = row.directory_version
        return version

    async def claim_directory_sync(self, peer: str, interval_seconds: float) -> bool:
        """The scheduled sync's lease: true for the one process that may sync `peer` now,
        when its last sync (or attempt) began at least `interval_seconds` ago. The claim
        moves `directory_synced_at` to now; each page applied moves it again, so a long sync
        keeps its claim, and one that dies is taken over an interval later."""
        now = utcnow()
        slack = min(LEASE_SLACK_SECONDS, interval_seconds / 10)
        due = now - timedelta(seconds=interval_seconds - slack)
        async with self.transaction() as session:
            result = await session.execute(
                update(Peer)
                .where(
                    Peer.name == peer,
                    Peer.enabled.is_(True),
                    or_(Peer.directory_synced_at.is_(None), Peer.directory_synced_at <= due),
                )
                .values(directory_synced_at=now)
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))


def _fields(unit: PeerUnit, row: Any, peer: str) -> dict[str, Any]:
    """The columns of the unit as this node stores it, `row` being what it has (or None),
    marked as learned from `peer`."""
    parent = unit.parent_code if unit.parent_known or row is None else row.parent_code
    status, successor = unit.status, unit.successor_code
    if not unit.status_known and row is not None and row.status not in CLOSED:
        # Listed (getAgenciesList): live. A merge learned here before stays.
        status = row.status
        successor = row.successor_code if status == MERGED else None
    return {
        "name": unit.name,
        "parent_code": parent,
        "mail": unit.mail,
        "status": status,
        "successor_code": successor,
        "old_code": unit.old_code,
        "level": code_level(unit.code),
        "peer": peer,
    }
