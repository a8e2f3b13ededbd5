"""The directory sync from peers (SPEC §3.5, issue #12): `lienthong agencies sync --from NAME`
and, when `LIENTHONG_DIRECTORY_SYNC_SECONDS` is set, the same for every enabled peer on a
schedule (`DirectorySyncer`, one of the Runtime's background tasks).

The peer is asked as an SDK client asks: `getSynchronizeUnit` with `fromVersion` = the version
this node synced up to (`peers.directory_version`; none the first time: everything), in
pages (`pageSize`; a peer that ignores it answers everything at once, which ends the sync
after that page). Each page is applied in one transaction with the new position, so only
changes since the last sync are transferred and a sync that dies resumes at its last page.
Tombstones (`deleted: true`) close codes here; merges and parents come with the extension
fields a peer running this software adds (`parentCode`, `status`, `successorCode`).

A peer without `getSynchronizeUnit` (HTTP 404/405/501, or a FAIL answer other than an
authentication, permission or transient one) is read with `getAgenciesList` instead: a full
listing, applied as upserts only. A code the listing no longer names is *not* closed here:
a list can be short for many reasons (a paging limit, a partial outage at the peer), and
closing codes makes packages to them refused; only a tombstone closes a code. The listing
has no versions, so the sync position stays as it was.

Whose copy wins is `gateway.directory_sync`'s rule (local systems, then operator-managed
rows, then the peer routing sends the code to).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from gateway.directory_sync import (
    LIST_OPERATION,
    SYNC_OPERATION,
    Coverage,
    Invalid,
    PeerUnit,
    SyncReport,
    listed_unit,
    remember_ids,
    sync_unit,
)
from gateway.errors import GatewayError, NotFound
from gateway.peers import PeerOperationMissing, PeerRecord, PeerUnreachable
from gateway.ports import NodeStore, PeerCaller
from gateway.services.periodic import every
from gateway.settings import Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 10_000
"""Units per `getSynchronizeUnit` page: ~3.5 MB of JSON; the national directory in 12."""
NO_FALLBACK_CODES = frozenset({"15", "19", "20", "28"})
"""FAIL codes that do not mean "no such operation": wrong credentials, not permitted, a
system error, throttled. `getAgenciesList` would fail the same way; the sync fails."""
TICK_SECONDS = 5.0
"""How often the scheduled sync looks for a peer that is due (at most the interval)."""
INVALID_SHOWN = 5


class DirectorySyncFailed(Exception):
    """The peer refused the sync (its answer is in the message)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        """The peer's ErrorCode; None for an OK answer that is no directory."""

    @property
    def operation_missing(self) -> bool:
        """Whether the refusal may mean that the peer has no such operation."""
        return self.code is not None and self.code not in NO_FALLBACK_CODES


class DirectorySync:
    def __init__(self, store: NodeStore, peers: PeerCaller, page_size: int = PAGE_SIZE) -> None:
        self._store = store
        self._peers = peers
        self._page_size = page_size

    async def sync(self, name: str, *, full: bool = False, adopt: bool = False) -> SyncReport:
        """Sync the directory from peer `name` (from the start with `full`; `adopt`: take
        over rows here that have no peer, for codes routed to it). Raises NotFound for an
        unknown peer, `PeerUnreachable` or `DirectorySyncFailed` when it gives no directory."""
        started = time.monotonic()
        peer = await self._store.get_peer(name)
        secret = await self._store.peer_secret(name)
        if peer is None or secret is None:
            raise NotFound(f"no peer {name} (lienthong peers list)")
        peers = await self._store.list_peers()
        job = _Job(
            peer,
            secret,
            Coverage(await self._store.list_systems(), peers),
            frozenset(p.name for p in peers if p.name != name),
            adopt,
        )
        position = None if full else await self._store.peer_directory_version(name)
        report = SyncReport(name, SYNC_OPERATION, position, position)
        try:
            await self._pages(job, report)
        except PeerOperationMissing as error:
            if report.pages:
                raise
            await self._listing(job, report, str(error))
        except DirectorySyncFailed as error:
            if report.pages or not error.operation_missing:
                raise
            await self._listing(job, report, str(error))
        except PeerUnreachable as error:
            await self._store.note_peer_contact(name, str(error))
            raise
        report.seconds = time.monotonic() - started
        return report

    async def _pages(self, job: _Job, report: SyncReport) -> None:
        ids: dict[str, str] = {}
        position = report.from_version or 0
        while True:
            params = {"pageSize": str(self._page_size)}
            if position:
                params["fromVersion"] = str(position)
            rows = _data(
                await self._peers.call(job.peer, job.secret, SYNC_OPERATION, params),
                SYNC_OPERATION,
            )
            report.pages += 1
            report.received += len(rows)
            remember_ids(rows, ids)
            units = _parse(rows, ids, report, listing=False)
            versions = [u.version for u in units if u.version is not None]
            top = max([position, *versions])
            report.counts.add(
                await self._store.apply_peer_units(
                    job.peer.name,
                    job.routed(units, report),
                    other_peers=job.others,
                    adopt=job.adopt,
                    version=top if versions else None,
                )
            )
            if versions:
                report.to_version = top
            # The last page; or a peer that ignores paging (all at once, or no progress).
            if len(rows) != self._page_size or top <= position:
                return
            position = top

    async def _listing(self, job: _Job, report: SyncReport, reason: str) -> None:
        report.operation, report.fallback_reason = LIST_OPERATION, reason[:300]
        rows = _data(await self._peers.call(job.peer, job.secret, LIST_OPERATION), LIST_OPERATION)
        report.pages += 1
        report.received += len(rows)
        ids: dict[str, str] = {}
        remember_ids(rows, ids)
        units = _parse(rows, ids, report, listing=True)
        report.counts.add(
            await self._store.apply_peer_units(
                job.peer.name,
                job.routed(units, report),
                other_peers=job.others,
                adopt=job.adopt,
            )
        )


class _Job:
    """One sync's fixed inputs: the peer, how to reach it, who serves what here."""

    def __init__(
        self,
        peer: PeerRecord,
        secret: str,
        coverage: Coverage,
        others: frozenset[str],
        adopt: bool,
    ) -> None:
        self.peer, self.secret, self.coverage = peer, secret, coverage
        self.others, self.adopt = others, adopt

    def routed(self, units: Sequence[PeerUnit], report: SyncReport) -> list[PeerUnit]:
        """The units whose code routing sends to this peer (rules 1 and 3)."""
        kept: list[PeerUnit] = []
        for unit in units:
            if self.coverage.served_here(unit.code):
                report.served_here += 1
            elif self.coverage.peer_of(unit.code) != self.peer.name:
                report.other_route += 1
            else:
                kept.append(unit)
        return kept


def _data(answer: dict[str, Any], operation: str) -> list[Any]:
    if answer.get("status") != "OK":
        code, desc = str(answer.get("ErrorCode")), answer.get("ErrorDesc")
        raise DirectorySyncFailed(
            f"{operation} answered {answer.get('status')} {code}: {desc}"[:500], code
        )
    data = answer.get("data")
    if not isinstance(data, list):
        raise DirectorySyncFailed(f"{operation} answered OK without a data list")
    return data


def _parse(
    rows: list[Any], ids: dict[str, str], report: SyncReport, listing: bool
) -> list[PeerUnit]:
    units: list[PeerUnit] = []
    read = listed_unit if listing else sync_unit
    for index, row in enumerate(rows):
        try:
            units.append(read(row, ids))
        except Invalid as error:
            report.invalid_count += 1
            if len(report.invalid) < INVALID_SHOWN:
                report.invalid.append(f"entry {index}: {error}")
    return units


class DirectorySyncer:
    """The scheduled sync: every enabled peer, every `directory_sync_seconds`, by whichever
    gateway process claims it first (`claim_directory_sync`: a lease on the peer row)."""

    def __init__(self, settings: Settings, store: NodeStore, peers: PeerCaller) -> None:
        self._interval = settings.directory_sync_seconds
        self._store = store
        self._sync = DirectorySync(store, peers)

    async def run(self) -> None:
        await every(min(self._interval, TICK_SECONDS), self.run_once, "directory sync")

    async def run_once(self) -> list[SyncReport]:
        """Sync each enabled peer that is due and not claimed by another process."""
        reports: list[SyncReport] = []
        try:
            peers = await self._store.list_peers()
        except GatewayError as error:
            log.warning("directory sync paused: %s", error.detail)
            return reports
        for peer in peers:
            if not peer.enabled:
                continue
            try:
                if not await self._store.claim_directory_sync(peer.name, self._interval):
                    continue
                report = await self._sync.sync(peer.name)
            except (PeerUnreachable, DirectorySyncFailed) as error:
                log.warning("directory sync from %s failed: %s", peer.name, error)
                continue
            except GatewayError as error:
                log.warning("directory sync from %s paused: %s", peer.name, error.detail)
                continue
            log.info("directory sync %s", report.summary())
            reports.append(report)
        return reports
