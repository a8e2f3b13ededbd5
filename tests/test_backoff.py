"""Every wait before trying again comes from one function (`gateway.backoff`)."""

from __future__ import annotations

import pytest

from gateway.backoff import backoff, push_retry_delay, relay_backoff

TIERS = (10.0, 60.0, 300.0)


def test_the_relay_doubles_its_pause_up_to_five_seconds_without_jitter() -> None:
    assert [relay_backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_long_outage_does_not_overflow_the_wait() -> None:
    # An hour and a half of failed relay passes counts past 2**1024.
    assert relay_backoff(5000) == 5.0
    assert backoff(5000, first=60, cap=3600, jitter=0.2) <= 1.2 * 3600


@pytest.mark.parametrize(("attempt", "tier"), [(1, 10.0), (2, 60.0), (3, 300.0), (9, 300.0)])
def test_push_attempt_n_waits_tier_n_with_jitter(attempt: int, tier: float) -> None:
    delays = [push_retry_delay(attempt, TIERS) for _ in range(200)]
    assert all(0.8 * tier <= d <= 1.2 * tier for d in delays)
    assert max(delays) - min(delays) > 0
