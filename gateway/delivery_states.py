"""The delivery lifecycle (SPEC §3.2): the one place that decides it.

- the state machine: one table of legal transitions (`TRANSITIONS`);
- the catch-up rule: a consumer may run before the relay recorded `queued` (`caught_up`);
- what each state means to the parts of the node, as named sets: what consumers deliver
  (`DELIVERABLE`), what is in transport, in the inbox or offered to pollers, what operators
  may replay, what a revocation cancels, when a delivery is stuck (`stuck_thresholds`), and
  what a recipient may read (`RECIPIENT_READS`).

Adapters (the SQL store) and use cases ask these; none of them lists states of its own.
The waits between tries are in `gateway.backoff`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import NamedTuple

from gateway.errors import StateTransitionInvalid


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
    # A consumer that sees a delivery before the relay has recorded `queued` records that step
    # itself first (`caught_up`): accepted → available never skips.
    S.ACCEPTED: frozenset({S.QUEUED, S.CANCELLED, S.DEAD}),
    # queued → queued: an operator replays a delivery stuck in `queued` (published, but no
    # consumer made it available); the timeline records the replay and its reason.
    S.QUEUED: frozenset(
        {S.QUEUED, S.AVAILABLE, S.DONE, S.RETRYING, S.FORWARDED, S.CANCELLED, S.DEAD}
    ),
    # available → queued: its agency was merged before the recipient downloaded it; it goes
    # through the pipeline again to the successor's route (`lienthong agencies merge`).
    S.AVAILABLE: frozenset({S.DOWNLOADED, S.QUEUED, S.CANCELLED}),
    S.DOWNLOADED: frozenset({S.DONE, S.FAIL, S.CANCELLED}),
    S.FAIL: frozenset({S.DOWNLOADED, S.DONE, S.CANCELLED, S.DEAD}),
    # A push is `done` on a 2xx from the endpoint; every failed attempt is a retrying row.
    S.RETRYING: frozenset(
        {S.QUEUED, S.AVAILABLE, S.DONE, S.RETRYING, S.FORWARDED, S.DEAD, S.CANCELLED}
    ),
    S.DEAD: frozenset({S.QUEUED, S.CANCELLED}),
    S.DONE: frozenset(),
    S.FORWARDED: frozenset(),
    S.CANCELLED: frozenset(),
}


class Step(NamedTuple):
    source: DeliveryState
    target: DeliveryState


PUBLISHED = Step(S.ACCEPTED, S.QUEUED)
"""The relay's step, recorded once the broker confirmed the publish."""
PUBLISHED_REASON = "published to the broker (confirmed)"
"""The timeline reason of the relay's step (`PUBLISHED`)."""
CAUGHT_UP = "published to the broker (taken by a consumer at once)"
"""The timeline reason of the relay's step when a consumer records it (`caught_up`): the
normal path on a quick node, so it reads as one."""
DOWNLOADED_REASON = "delivered copy downloaded"
ACKNOWLEDGED_DONE_REASON = "acknowledged done: stored by the recipient"
"""Timeline reasons of a download, and of an acknowledgement without a description (one the
recipient gives is kept as it gave it)."""


def caught_up(state: DeliveryState) -> DeliveryState:
    """The state a consumer acts from: the catch-up rule.

    The relay publishes and only then commits `queued`, so a consumer may get the message
    while the delivery is still `accepted`. It then records the relay's step itself (reason
    `CAUGHT_UP`) before its own, so the timeline never skips `queued`; and the relay, which
    moves only deliveries still in `PUBLISHED.source`, leaves one that moved on as it is."""
    return PUBLISHED.target if state is PUBLISHED.source else state


IN_TRANSPORT = frozenset({S.ACCEPTED, S.QUEUED})
"""On the way and not delivered: not yet confirmed by the broker, or no consumer delivered it
yet. Published again when it stays so too long; stuck in transport after a while."""
DELIVERABLE = frozenset({S.ACCEPTED, S.QUEUED, S.RETRYING})
"""What a consumer (inbox or push) still delivers: queued, between push attempts, or still
`accepted` (`caught_up`). A redelivered broker message for anything else finds nothing to do."""
REPLAYABLE = frozenset({S.DEAD, S.ACCEPTED, S.QUEUED, S.RETRYING})
"""Dead, or stuck before the recipient's inbox: replay queues them again (same ids)."""

OFFERED = frozenset({S.AVAILABLE, S.DOWNLOADED})
"""In the recipient's inbox and offered on every poll until it is acknowledged."""
OFFERED_AFTER_BACKOFF = frozenset({S.FAIL})
"""The recipient answered `fail`: offered again once its re-offer time has come."""
PENDING_FOR_RECIPIENT = OFFERED | OFFERED_AFTER_BACKOFF
"""States in which an item is still in the recipient's inbox (not yet acknowledged `done`)."""
DOWNLOADABLE = PENDING_FOR_RECIPIENT | {S.DONE}
"""States in which the inbox hands out the delivered copy (getEdoc, downloadEdoc, content):
it must have reached the inbox first, and a recipient may fetch what it received again."""
UNFINISHED = frozenset(state for state, targets in TRANSITIONS.items() if targets)
"""Not at an end (`done`, `forwarded`, `cancelled` are): a system with deliveries in these
states is not removed unless forced (they are then cancelled)."""
UNCOLLECTED = frozenset({S.AVAILABLE, S.FAIL})
"""Waiting in the inbox for the recipient to download it (again): stuck after a while."""
ACKNOWLEDGED_AS: dict[str, DeliveryState] = {"done": S.DONE, "fail": S.FAIL}
"""What a recipient's acknowledgement makes of its delivery; another word (`processing`)
changes nothing."""

HAS_THE_DOCUMENT = frozenset({S.DOWNLOADED, S.DONE})
"""The recipient has the document: a revocation is delivered to it."""
NOT_YET_DOWNLOADED = frozenset({S.ACCEPTED, S.QUEUED, S.AVAILABLE, S.FAIL, S.RETRYING, S.DEAD})
"""The recipient does not have the document (yet): a revocation, or its removal from the
recipients by an update, cancels the delivery."""
FOLLOW_A_MERGE = frozenset({S.ACCEPTED, S.QUEUED, S.RETRYING, S.AVAILABLE, S.FAIL})
"""Pending to an agency that is merged into another: when not downloaded yet, the delivery
is re-pointed to the successor (`lienthong agencies merge`). `dead` stays for an operator
(replay), `downloaded` and `done` with the recipient that has the document; `fail` follows a
download, so one is only re-pointed if it never was downloaded."""


def stuck_thresholds(
    *, in_transport: float, uncollected: float, retrying: float, dead: float
) -> dict[str, float]:
    """Seconds a delivery may stay in a state before it shows as stuck, per state (in the
    order of the lifecycle): in transport, not collected from the inbox, retrying, dead."""
    limits = (
        (IN_TRANSPORT, in_transport),
        (UNCOLLECTED, uncollected),
        (frozenset({S.RETRYING}), retrying),
        (frozenset({S.DEAD}), dead),
    )
    return {
        state.value: seconds
        for state in DeliveryState
        for states, seconds in limits
        if state in states
    }


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
    S.ACCEPTED: EVERYTHING,
    S.QUEUED: EVERYTHING,
    S.RETRYING: EVERYTHING,
    S.DEAD: EVERYTHING,
    S.AVAILABLE: EVERYTHING,
    S.DOWNLOADED: EVERYTHING,
    S.FAIL: EVERYTHING,
    S.DONE: EVERYTHING,
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
    return is_sender or any(
        part in RECIPIENT_READS[DeliveryState(state)] for state in recipient_states
    )


def readable_states(part: Part) -> frozenset[DeliveryState]:
    """The delivery states in which a recipient may read `part` (for queries)."""
    return frozenset(state for state, parts in RECIPIENT_READS.items() if part in parts)


def can_transition(current: DeliveryState, target: DeliveryState) -> bool:
    return target in TRANSITIONS[current]


def require_transition(current: str, target: DeliveryState) -> None:
    """Raise the client-facing error for a transition the machine does not allow."""
    if not can_transition(DeliveryState(current), target):
        raise StateTransitionInvalid(
            f"a delivery in state '{current}' cannot become '{target.value}'",
        )
