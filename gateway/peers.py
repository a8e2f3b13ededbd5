"""Peer nodes (SPEC §3.5): other axis nodes that own other codes, reached as a client of
their `/vxp` (the national axis is one; a provincial node is one of its systems).

Routing asks `peer_for` only for a recipient no local system serves: the peer whose prefix
is the most specific match, else the default (upstream) peer. A name decided here is stored
in the delivery at acceptance; the forwarder never decides again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.codes import ServePattern, best_match

PEER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
"""Peer names are short words (`national`, `h54`): they appear in routes and timelines."""


class PeerUnreachable(Exception):
    """No usable answer from a peer: connection refused or lost, timeout, an HTTP error
    status, or a body that is not the protocol's JSON."""


class PeerOperationMissing(PeerUnreachable):
    """The peer answered HTTP 404, 405 or 501: it has no such operation (a directory sync
    falls back to `getAgenciesList`); to anything else, an unreachable peer."""


@dataclass(frozen=True, slots=True)
class PeerRecord:
    """A peer as routing, forwarding and polling see it (never its secret)."""

    name: str
    url: str
    """Its `/vxp` base, e.g. `https://axis.example/vxp`."""
    system_id: str
    """The systemId this node was given at the peer."""
    prefixes: tuple[ServePattern, ...]
    is_default: bool = False
    enabled: bool = True

    def covers(self, code: str) -> bool:
        return any(p.matches(code) for p in self.prefixes)

    @property
    def actor(self) -> str:
        """Who the timeline and evidence name for what this peer did."""
        return f"peer:{self.name}"


def peer_for(code: str, peers: Sequence[PeerRecord]) -> PeerRecord | None:
    """The enabled peer whose most specific prefix covers `code` (ties: the first name), else
    the enabled default peer, else none."""
    enabled = [p for p in peers if p.enabled]
    covering = best_match(code, enabled, lambda p: p.prefixes, lambda p: p.name)
    if covering is not None:
        return covering
    defaults = sorted((p for p in enabled if p.is_default), key=lambda p: p.name)
    return defaults[0] if defaults else None


def check_peer_name(name: str) -> str:
    if not PEER_NAME.fullmatch(name):
        raise ValueError(
            f"peer name {name!r}: lower-case letters, digits, '-' and '_' (at most 64)"
        )
    return name


@dataclass(frozen=True, slots=True)
class ForwardBatch:
    """The deliveries of one package to one peer, claimed together: one `sendEdoc` with the
    `to` header listing exactly their recipients (SPEC §3.5: one send per peer)."""

    peer: PeerRecord
    message_id: str
    kind: str
    from_code: str
    payload_sha256: str
    deliveries: tuple[tuple[str, str], ...]
    """(delivery id, recipient code) in recipient order."""
    attempts: int
    created_at: datetime
    trace_organs: tuple[str, ...] = ()
    """The organs the package's TraceHeaders name: this node among them is a loop."""

    @property
    def recipients(self) -> list[str]:
        return [code for _, code in self.deliveries]

    @property
    def delivery_ids(self) -> list[str]:
        return [delivery for delivery, _ in self.deliveries]


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """What `peers list` shows of a peer: how to reach it, whether it answers, its work."""

    peer: PeerRecord
    last_contact_at: datetime | None
    last_error_at: datetime | None
    last_poll_at: datetime | None
    last_poll_error: str | None
    backlog: int
    """Deliveries still to be forwarded to it (accepted, queued or retrying)."""
    dead: int
    forwarded: int
    refused_items: int
    """Items it handed out that this node refused (acknowledged `fail`)."""
    directory_version: int | None

    @property
    def reachable(self) -> bool | None:
        """None until the peer was tried; then whether its last contact was an answer."""
        if self.last_contact_at is None and self.last_error_at is None:
            return None
        if self.last_error_at is None:
            return True
        return self.last_contact_at is not None and self.last_contact_at > self.last_error_at


@dataclass(frozen=True, slots=True)
class PeerItemRef:
    """An item a peer handed out, recorded in the transaction that accepts it."""

    peer: str
    kind: str
    item_id: str
    recipient_code: str
