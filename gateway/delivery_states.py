"""The delivery state machine (SPEC §3.2): the one place that decides legal transitions."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from gateway.errors import InvalidRequest


class DeliveryState(StrEnum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    AVAILABLE = "available"
    DOWNLOADED = "downloaded"
    DONE = "done"
    FAIL = "fail"
    RETRYING = "retrying"
    DEAD = "dead"
    FORWARDED = "forwarded"
    CANCELLED = "cancelled"


S = DeliveryState

TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    # The consumer may see a delivery before the relay has recorded `queued` (it publishes,
    # then commits): it then records both steps itself, so accepted → available never skips.
    S.ACCEPTED: frozenset({S.QUEUED, S.CANCELLED, S.DEAD}),
    # queued → queued: an operator replays a delivery stuck in `queued` (published, but no
    # consumer made it available); the timeline records the replay and its reason.
    S.QUEUED: frozenset({S.QUEUED, S.AVAILABLE, S.DONE, S.RETRYING, S.FORWARDED, S.CANCELLED,
                         S.DEAD}),
    S.AVAILABLE: frozenset({S.DOWNLOADED, S.CANCELLED}),
    S.DOWNLOADED: frozenset({S.DONE, S.FAIL, S.CANCELLED}),
    S.FAIL: frozenset({S.DOWNLOADED, S.DONE, S.CANCELLED, S.DEAD}),
    # A push is `done` on a 2xx from the endpoint; every failed attempt is a retrying row.
    S.RETRYING: frozenset({S.QUEUED, S.AVAILABLE, S.DONE, S.RETRYING, S.FORWARDED, S.DEAD,
                           S.CANCELLED}),
    S.DEAD: frozenset({S.QUEUED, S.CANCELLED}),
    S.DONE: frozenset(),
    S.FORWARDED: frozenset(),
    S.CANCELLED: frozenset(),
}

PENDING_FOR_RECIPIENT = frozenset({S.AVAILABLE, S.DOWNLOADED, S.FAIL})
"""States in which an item is still in the recipient's inbox (not yet acknowledged `done`)."""
DOWNLOADABLE = PENDING_FOR_RECIPIENT | {S.DONE}
"""States in which the inbox hands out the delivered copy (getEdoc, downloadEdoc, content):
it must have reached the inbox first, and a recipient may fetch what it received again."""


class Part(StrEnum):
    """What of a package a reader asks for."""

    METADATA = "metadata"
    ORIGINAL = "original"
    DELIVERED_COPY = "delivered copy"
    ATTACHMENTS = "attachments"


EVERYTHING = frozenset(Part)
RECIPIENT_READS: dict[DeliveryState, frozenset[Part]] = {
    # Addressed to the recipient and on its way or in its inbox: it is the recipient's to read
    # (a REST client may fetch it before polling; a push endpoint that was down may fetch it).
    S.ACCEPTED: EVERYTHING, S.QUEUED: EVERYTHING, S.RETRYING: EVERYTHING, S.DEAD: EVERYTHING,
    S.AVAILABLE: EVERYTHING, S.DOWNLOADED: EVERYTHING, S.FAIL: EVERYTHING, S.DONE: EVERYTHING,
    # Handed to a peer node: the recipient's system is behind that peer, not here.
    S.FORWARDED: frozenset(),
    # Revoked (thu hồi), removed by an update, or cancelled by an operator before it was
    # downloaded: it never reached the recipient, and must not reach it by another door.
    S.CANCELLED: frozenset(),
}
"""What a recipient's system may read of a package, by the state of its delivery. The
sender's system reads everything of its own packages. Every read path of both APIs asks
`may_read`; nothing else decides it."""


def may_read(part: Part, *, is_sender: bool, recipient_states: Iterable[str]) -> bool:
    """Whether a reader may see `part`: the sender always, a recipient by its deliveries."""
    return is_sender or any(part in RECIPIENT_READS[DeliveryState(state)]
                            for state in recipient_states)


def readable_states(part: Part) -> frozenset[DeliveryState]:
    """The delivery states in which a recipient may read `part` (for queries)."""
    return frozenset(state for state, parts in RECIPIENT_READS.items() if part in parts)


def can_transition(current: DeliveryState, target: DeliveryState) -> bool:
    return target in TRANSITIONS[current]


def require_transition(current: str, target: DeliveryState) -> None:
    """Raise the client-facing error for a transition the machine does not allow."""
    if not can_transition(DeliveryState(current), target):
        raise InvalidRequest(
            f"a delivery in state '{current}' cannot become '{target.value}'",
            desc_vi="Trang thai khong hop le",
        )
