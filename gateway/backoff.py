"""How long to wait before trying again: one function for everything that retries.

Three policies use it: a recipient that answered `fail` is offered the package again
(`fail_backoff`), a push attempt that failed is retried through the broker's delay queues
(`push_retry_delay`), and the outbox relay pauses while the broker or database is away
(`relay_backoff`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

JITTER = 0.2
"""±20 %: a system whose pollers (or endpoint) all failed at once does not get everything back
at the same instant."""
MAX_FAIL_BACKOFF_SECONDS = 3600.0
RELAY_FIRST_BACKOFF_SECONDS = 0.5
RELAY_MAX_BACKOFF_SECONDS = 5.0


def backoff(
    attempt: int,
    *,
    first: float = 0.0,
    tiers: Sequence[float] = (),
    factor: float = 2.0,
    cap: float = math.inf,
    jitter: float = 0.0,
) -> float:
    """The wait after failure number `attempt` (1-based).

    With `tiers`, failure n waits tier n and the last tier repeats (the broker has one delay
    queue per tier); otherwise it waits `first`, then `factor` times longer after each further
    failure. Either way at most `cap`, then spread by ±`jitter` (a fraction)."""
    if tiers:
        grown = tiers[min(attempt, len(tiers)) - 1]
    else:
        try:
            grown = first * factor ** max(0, attempt - 1)
        except OverflowError:  # a long outage counts failures past float range: wait the cap
            grown = math.inf
    delay = min(cap, grown)
    return delay * random.uniform(1 - jitter, 1 + jitter) if jitter else delay


def fail_backoff(base: float, fail_count: int) -> float:
    """A recipient that cannot store a package is offered it again after base, 2×base,
    4×base … capped at an hour, with jitter."""
    return backoff(fail_count, first=base, cap=MAX_FAIL_BACKOFF_SECONDS, jitter=JITTER)


def push_retry_delay(attempt: int, tiers: Sequence[float]) -> float:
    """Failed push attempt n (1-based) waits tier n, the last tier repeating, with jitter."""
    return backoff(attempt, tiers=tiers, jitter=JITTER)


def relay_backoff(failures: int) -> float:
    """The relay's pause after `failures` failed passes in a row: 0.5 s, 1 s, 2 s … at most
    5 s, without jitter."""
    return backoff(failures, first=RELAY_FIRST_BACKOFF_SECONDS, cap=RELAY_MAX_BACKOFF_SECONDS)
