"""Directory sync from a peer node (SPEC §3.5, issue #12): what a peer's answer says about
each unit, and whose copy of a code wins; and what a merge did. No I/O: the use cases are
`gateway.services.directory_sync` and `gateway.services.reorganisation`, the writes are
`adapters.db.store.directory_sync` and `adapters.db.store.directory`.

Whose copy wins (decided per code, in this order):

1. A code a local (enabled) system serves is this node's: no peer's copy is taken, not even
   for a code this node does not know yet. The node is the authority for what it serves.
2. A code whose row here was created or last changed here — `agencies import|add`,
   `registerAgency` by a local system, `agencies merge|rename|retire` — has no `peer`: it is
   operator-managed, and a sync leaves it as it is (`agencies sync --adopt` hands such rows
   to the peer, for a node that imported the national file before it was connected).
3. Otherwise the copy of the peer that routing sends the code to (`gateway.peers.peer_for`:
   the most specific prefix, else the default peer) is taken, and the row is marked with
   that peer. A peer never teaches codes that are routed to another peer (the national node
   syncing from province H53 takes only `#.H53`; what H53 learned from the national node is
   not taken back), nor codes no route reaches; rows marked with another configured peer are
   that peer's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.agencies import ACTIVE, CLOSED, DELETED, MERGED
from gateway.codes import is_valid_code
from gateway.peers import PeerRecord, peer_for
from gateway.records import SystemRecord
from gateway.routing import serving_system
from gateway.types import AgencyCode

MAX_NAME = 500
MAX_MAIL = 200
"""The directory's column sizes (`adapters.db.models.Agency`): longer values are cut or
dropped, never a failed sync."""

SYNC_OPERATION = "getSynchronizeUnit"
LIST_OPERATION = "getAgenciesList"


@dataclass(frozen=True, slots=True)
class PeerUnit:
    """One unit as a peer's directory describes it."""

    code: AgencyCode
    name: str
    parent_code: str | None
    mail: str | None
    status: str
    successor_code: str | None = None
    old_code: str | None = None
    parent_known: bool = True
    """False when the answer did not say (a `pid` outside the answer): the parent this node
    has is kept."""
    status_known: bool = True
    """False for a `getAgenciesList` entry: listed means live; a merge known here is kept."""
    version: int | None = None


@dataclass(slots=True)
class SyncCounts:
    """What applying a batch of units changed (each change took a directory version here)."""

    added: int = 0
    updated: int = 0
    closed: int = 0
    """Of added + updated: tombstones (retired or deleted at the peer)."""
    unchanged: int = 0
    kept_own: int = 0
    """This node's rows (operator-managed, rule 2), left as they are."""
    kept_other_peer: int = 0

    def add(self, other: SyncCounts) -> None:
        for name in (
            "added",
            "updated",
            "closed",
            "unchanged",
            "kept_own",
            "kept_other_peer",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(slots=True)
class SyncReport:
    """One `agencies sync --from NAME`."""

    peer: str
    operation: str
    """`getSynchronizeUnit`, or `getAgenciesList` when the peer lacks it (the fallback)."""
    from_version: int | None
    to_version: int | None
    received: int = 0
    pages: int = 0
    counts: SyncCounts = field(default_factory=SyncCounts)
    served_here: int = 0
    """Units a local system serves (rule 1): skipped."""
    other_route: int = 0
    """Units routed to another peer or to no peer (rule 3): skipped."""
    invalid: list[str] = field(default_factory=list)
    """Entries that are not a unit (bad code, no name), with why (the first few)."""
    invalid_count: int = 0
    fallback_reason: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        c = self.counts
        parts = [
            f"{self.peer}: {self.operation}",
            f"{self.received} received in {self.pages} page(s)",
            f"{c.added} added, {c.updated} updated ({c.closed} closed), {c.unchanged} unchanged",
            f"kept: {c.kept_own} own, {self.served_here} served here, "
            f"{c.kept_other_peer + self.other_route} of other routes",
        ]
        if self.invalid_count:
            parts.append(f"{self.invalid_count} invalid ({'; '.join(self.invalid[:3])})")
        if self.operation == SYNC_OPERATION:
            parts.append(f"version {self.from_version or 0} -> {self.to_version or 0}")
        elif self.fallback_reason:
            parts.append(f"fallback: {self.fallback_reason}")
        return "; ".join(parts) + f"; {self.seconds:.1f} s"


# -- reading a peer's answer ------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _version(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    text = _text(value)
    return int(text) if text is not None and text.isascii() and text.isdigit() else None


def _code(value: Any) -> str | None:
    text = _text(value)
    return text if text is not None and is_valid_code(text) else None


class Invalid(ValueError):
    """An entry that is not a unit."""


def _common(row: Mapping[str, Any]) -> tuple[AgencyCode, str, str | None]:
    code = _code(row.get("code"))
    if code is None:
        raise Invalid(f"code {str(row.get('code'))[:40]!r} is not a valid identifier code")
    name = _text(row.get("name"))
    if name is None:
        raise Invalid(f"{code}: no name")
    mail = _text(row.get("mail"))
    return AgencyCode(code), name[:MAX_NAME], mail if mail and len(mail) <= MAX_MAIL else None


def _parent(row: Mapping[str, Any], ids: Mapping[str, str]) -> tuple[str | None, bool]:
    """The parent: `parentCode` (this software's extension), else the `pid` looked up among
    the ids seen so far; unknown (`False`) when the entry names a pid outside them."""
    if "parentCode" in row:
        return _code(row.get("parentCode")), True
    pid = _text(row.get("pid"))
    if pid is None:
        return None, True
    parent = ids.get(pid)
    return (parent, True) if parent is not None else (None, False)


def remember_ids(rows: Iterable[Any], ids: dict[str, str]) -> None:
    """The peer's row ids → codes, for `pid` of later entries (pages of one sync)."""
    for row in rows:
        if isinstance(row, dict):
            row_id, code = _text(row.get("id")), _code(row.get("code"))
            if row_id is not None and code is not None:
                ids[row_id] = code


def sync_unit(row: Any, ids: Mapping[str, str]) -> PeerUnit:
    """A `getSynchronizeUnit` entry. `deleted: true` is a tombstone (`status` says retired
    or deleted when the peer runs this software, else deleted); `status` and
    `successorCode` carry a merge (extension fields the SDK ignores: without them a merge
    at the peer is not visible, and the unit stays as it is here)."""
    if not isinstance(row, dict):
        raise Invalid("an entry that is not an object")
    code, name, mail = _common(row)
    parent, parent_known = _parent(row, ids)
    said = _text(row.get("status"))
    successor = None
    if _flag(row.get("deleted")):
        status = said if said in CLOSED else DELETED
    elif said == MERGED and (successor := _code(row.get("successorCode"))) not in (None, code):
        status = MERGED
    else:
        status, successor = ACTIVE, None
    return PeerUnit(
        code=code,
        name=name,
        parent_code=parent,
        mail=mail,
        status=status,
        successor_code=successor,
        old_code=_code(row.get("oldCode")),
        parent_known=parent_known,
        version=_version(row.get("version")),
    )


def listed_unit(row: Any, ids: Mapping[str, str]) -> PeerUnit:
    """A `getAgenciesList` entry: a live unit; the list carries no status nor version."""
    if not isinstance(row, dict):
        raise Invalid("an entry that is not an object")
    code, name, mail = _common(row)
    parent, parent_known = _parent(row, ids)
    return PeerUnit(
        code=code,
        name=name,
        parent_code=parent,
        mail=mail,
        status=ACTIVE,
        old_code=_code(row.get("oldCode")),
        parent_known=parent_known,
        status_known=False,
    )


# -- whose copy wins --------------------------------------------------------------------


def _last_group(code: str) -> str:
    return code.rsplit(".", 1)[-1]


class Coverage:
    """Who serves a code at this node: a local system, or the peer routing sends it to.
    The same decisions as `gateway.routing.route_one`, with the systems and peers indexed by
    the last group of their patterns (every pattern ends in a literal group), so 111,000
    codes are decided against a node with hundreds of systems in well under a second."""

    def __init__(self, systems: Sequence[SystemRecord], peers: Sequence[PeerRecord]) -> None:
        self._systems: dict[str, list[SystemRecord]] = {}
        for system in systems:  # a disabled system still serves its agencies (locked)
            for group in {_last_group(p.text) for p in system.patterns}:
                self._systems.setdefault(group, []).append(system)
        self._peers: dict[str, list[PeerRecord]] = {}
        for peer in peers:
            if peer.enabled:
                for group in {_last_group(p.text) for p in peer.prefixes}:
                    self._peers.setdefault(group, []).append(peer)
        self._defaults = [p for p in peers if p.enabled and p.is_default]

    def served_here(self, code: str) -> bool:
        candidates = self._systems.get(_last_group(code))
        return candidates is not None and serving_system(code, candidates) is not None

    def peer_of(self, code: str) -> str | None:
        """The peer routing would send `code` to (None: a local system, or no route)."""
        if self.served_here(code):
            return None
        candidates = self._peers.get(_last_group(code), [])
        peer = peer_for(code, [*candidates, *self._defaults])
        return peer.name if peer is not None else None

    def system_of(self, code: str) -> str:
        """The local system serving `code`, `""` for none (`centerCode`)."""
        candidates = self._systems.get(_last_group(code), [])
        system = serving_system(code, candidates) if candidates else None
        return system.system_id if system is not None else ""


# -- reorganisation (2025: provinces merged, the district level removed) -----------------


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    """What `agencies merge OLD --into NEW` did."""

    old: str
    new: str
    successor: str
    """Where packages to OLD now go: NEW, or NEW's own successor when NEW was merged too."""
    change: str
    """`merged`, or `unchanged` (OLD was already merged into NEW)."""
    version: int
    redirected: tuple[str, ...] = ()
    """Pending deliveries to OLD now on their way to the successor (same delivery ids)."""
    cancelled: tuple[str, ...] = ()
    """Pending deliveries to OLD of packages the successor has its own delivery of."""
    left: tuple[tuple[str, str], ...] = ()
    """(delivery id, why) of pending ones that could not follow."""
    route: str = ""
    """How the successor is reached, as the redirected deliveries' timeline says."""
