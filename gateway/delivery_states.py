"""The delivery state machine (SPEC §3.2): the one place that decides legal transitions."""

from __future__ import annotations

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


def can_transition(current: DeliveryState, target: DeliveryState) -> bool:
    return target in TRANSITIONS[current]


def require_transition(current: str, target: DeliveryState) -> None:
    """Raise the client-facing error for a transition the machine does not allow."""
    if not can_transition(DeliveryState(current), target):
        raise InvalidRequest(
            f"a delivery in state '{current}' cannot become '{target.value}'",
            desc_vi="Trang thai khong hop le",
        )
