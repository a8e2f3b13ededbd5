"""The node's configuration as the hot path reads it: systems (and their secrets), signature
policies, certificate bindings, successors of merged agencies, closed agencies — one snapshot,
re-read only when the node-wide configuration version changed.

Every change to any of these bumps one version in the database in the same transaction
(`adapters.db.store.config`), so a process sees another's change at its next check: a check
is one cheap read of that version. Within one HTTP request the check is made once (the
first time the request needs the configuration, `request_scope`); outside a request (relay,
consumers, CLI) each call checks. A change made by this process is seen at once: the writer
drops the snapshot (and the current request's) after it commits.

What is cached is decided here (`NodeConfig` and its lookups); reading it and the version
is the store's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from gateway.peers import PeerRecord
from gateway.records import SystemCredentials, SystemRecord
from gateway.signatures import CertificateBinding

MAX_SUCCESSOR_HOPS = 16


@dataclass(frozen=True, slots=True)
class SystemEntry:
    record: SystemRecord
    secret_ciphertext: str
    signature_policy: str | None
    previous_ciphertext: str | None = None
    """The secret before the last rotation (sealed), good until `previous_until`."""
    previous_until: datetime | None = None


@dataclass(slots=True)
class NodeConfig:
    """One consistent read of what rarely changes, labelled with the version it was read at
    (the version is read first: data newer than its label only costs an extra reload)."""

    version: int
    systems: Mapping[str, SystemEntry]
    agency_policies: Mapping[str, str]
    """Agencies with a signature policy override."""
    bindings: tuple[CertificateBinding, ...]
    successors: Mapping[str, str]
    """Merged agencies with a successor: code → successor code."""
    closed: Mapping[str, str]
    """Retired and deleted agencies: code → status."""
    open_secret: Callable[[str], str]
    peers: Mapping[str, PeerRecord] = field(default_factory=dict)
    """Peer nodes by name (their secrets are read by the forwarder and poller, not here)."""
    _secrets: dict[str, SystemCredentials] = field(default_factory=dict)
    _sorted: tuple[SystemRecord, ...] | None = None

    def system(self, system_id: str) -> SystemRecord | None:
        entry = self.systems.get(system_id)
        return entry.record if entry else None

    def credentials(self, system_id: str) -> SystemCredentials | None:
        """Decrypted once per snapshot and system (a Fernet decryption per request was the
        cost of authentication)."""
        entry = self.systems.get(system_id)
        if entry is None:
            return None
        found = self._secrets.get(system_id)
        if found is None:
            previous = entry.previous_ciphertext
            found = self._secrets[system_id] = SystemCredentials(
                entry.record,
                self.open_secret(entry.secret_ciphertext),
                self.open_secret(previous) if previous else None,
                entry.previous_until if previous else None,
            )
        return found

    def list_systems(self) -> list[SystemRecord]:
        if self._sorted is None:
            self._sorted = tuple(self.systems[k].record for k in sorted(self.systems))
        return list(self._sorted)

    def list_peers(self) -> list[PeerRecord]:
        return [self.peers[name] for name in sorted(self.peers)]

    def signature_policies(self, system_id: str, agency_code: str) -> tuple[str | None, str | None]:
        entry = self.systems.get(system_id)
        return (entry.signature_policy if entry else None), self.agency_policies.get(agency_code)

    def certificate_bindings(
        self, agency_code: str, fingerprint: str | None
    ) -> list[CertificateBinding]:
        """Bindings of the sender, and any binding the signer's certificate could match."""
        wanted = (fingerprint or "").lower()
        return [
            b
            for b in self.bindings
            if b.agency_code == agency_code or b.fingerprint == wanted or b.subject is not None
        ]

    def current_codes(self, codes: Sequence[str]) -> dict[str, str]:
        """Follow merged agencies to their successor (SPEC §3.1 step 3); unknown codes map to
        themselves; cycles and over-long chains stop where they are."""
        current: dict[str, str] = {}
        for code in codes:
            at, seen = code, {code}
            for _ in range(MAX_SUCCESSOR_HOPS):
                following = self.successors.get(at)
                if not following or following in seen:
                    break
                at = following
                seen.add(at)
            current[code] = at
        return current

    def closed_among(self, codes: Sequence[str]) -> dict[str, str]:
        """Those of `codes` the directory retired or deleted, with that status."""
        return {code: self.closed[code] for code in codes if code in self.closed}


class _Scope:
    __slots__ = ("config",)

    def __init__(self) -> None:
        self.config: NodeConfig | None = None


_request: ContextVar[_Scope | None] = ContextVar("lienthong_config_scope", default=None)


@contextmanager
def request_scope() -> Iterator[None]:
    """Within this, the configuration is checked at most once (one HTTP request, one
    submission); a scope opened inside another is the outer one."""
    if _request.get() is not None:
        yield
        return
    token = _request.set(_Scope())
    try:
        yield
    finally:
        _request.reset(token)


class ConfigCache:
    """The latest snapshot, checked against the database's version at most once a request."""

    def __init__(
        self,
        read_version: Callable[[], Awaitable[int]],
        load: Callable[[], Awaitable[NodeConfig]],
    ) -> None:
        self._read_version = read_version
        self._load = load
        self._config: NodeConfig | None = None
        self._loading = asyncio.Lock()
        self.loads = 0
        """Snapshots read so far (tests and benches look at it)."""

    async def current(self) -> NodeConfig:
        scope = _request.get()
        if scope is not None and scope.config is not None:
            return scope.config
        config = await self._fresh()
        if scope is not None:
            scope.config = config
        return config

    async def _fresh(self) -> NodeConfig:
        version = await self._read_version()
        config = self._config
        if config is not None and config.version == version:
            return config
        async with self._loading:  # one reload for a burst of requests, not one each
            config = self._config
            if config is None or config.version != version:
                config = self._config = await self._load()
                self.loads += 1
        return config

    def changed(self) -> None:
        """This process changed the configuration (committed): forget what was read."""
        self._config = None
        scope = _request.get()
        if scope is not None:
            scope.config = None
