"""Replay and cancel: which deliveries replay may act on, and what an action did.

Every replay and cancel, dry runs included, is recorded as an `OperatorAction`; executed ones
also go to the evidence log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.delivery_states import REPLAYABLE, DeliveryState

S = DeliveryState


_NOT_REPLAYABLE_WHY = {
    S.AVAILABLE: "already in the recipient's inbox; replay would offer it twice",
    S.DOWNLOADED: "already downloaded by the recipient; awaiting its acknowledgement",
    S.FAIL: "in the recipient's inbox (it reported fail and is offered again by itself)",
    S.DONE: "delivered and acknowledged",
    S.FORWARDED: "accepted by a peer node",
    S.CANCELLED: "cancelled",
}


def replay_refusal(state: str) -> str | None:
    """Why a delivery in `state` is not replayed, or None when it is."""
    current = DeliveryState(state)
    if current in REPLAYABLE:
        return None
    return f"{state}: {_NOT_REPLAYABLE_WHY[current]}"


@dataclass(frozen=True, slots=True)
class ActedOn:
    delivery_id: str
    message_id: str
    to_code: str
    state: str
    """Before the action (a dry run) or after it."""


@dataclass(frozen=True, slots=True)
class Skipped:
    delivery_id: str
    why: str


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    action_id: int
    action: str
    dry_run: bool
    done: tuple[ActedOn, ...]
    skipped: tuple[Skipped, ...]


@dataclass(frozen=True, slots=True)
class OperatorAction:
    id: int
    at: datetime
    operator: str
    role: str
    action: str
    target: str
    reason: str | None
    dry_run: bool
    details: dict[str, Any]
