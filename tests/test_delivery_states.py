"""The delivery state machine (SPEC §3.2)."""

from __future__ import annotations

from itertools import pairwise, product

import pytest

from gateway.delivery_states import (
    TRANSITIONS,
    DeliveryState,
    can_transition,
    require_transition,
)
from gateway.errors import InvalidRequest

S = DeliveryState
HAPPY_PATH = [S.ACCEPTED, S.QUEUED, S.AVAILABLE, S.DOWNLOADED, S.DONE]


def test_every_state_has_an_entry() -> None:
    assert set(TRANSITIONS) == set(DeliveryState)
    assert all(targets <= set(DeliveryState) for targets in TRANSITIONS.values())


@pytest.mark.parametrize(("current", "target"), list(product(DeliveryState, DeliveryState)))
def test_each_pair_is_allowed_or_refused(current: DeliveryState, target: DeliveryState) -> None:
    if target in TRANSITIONS[current]:
        assert can_transition(current, target)
        require_transition(current.value, target)
    else:
        assert not can_transition(current, target)
        with pytest.raises(InvalidRequest) as caught:
            require_transition(current.value, target)
        assert current.value in caught.value.detail and target.value in caught.value.detail


@pytest.mark.parametrize("terminal", [S.DONE, S.FORWARDED, S.CANCELLED])
def test_terminal_states_have_no_exit(terminal: DeliveryState) -> None:
    assert TRANSITIONS[terminal] == frozenset()
    for target in DeliveryState:
        with pytest.raises(InvalidRequest):
            require_transition(terminal.value, target)


def test_happy_path_is_legal() -> None:
    for current, target in pairwise(HAPPY_PATH):
        require_transition(current.value, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.AVAILABLE, S.DONE),
        (S.ACCEPTED, S.AVAILABLE),
        (S.ACCEPTED, S.DONE),
        (S.DOWNLOADED, S.QUEUED),
        (S.DONE, S.CANCELLED),
        (S.DONE, S.DONE),
    ],
)
def test_shortcuts_are_illegal(current: DeliveryState, target: DeliveryState) -> None:
    with pytest.raises(InvalidRequest):
        require_transition(current.value, target)
