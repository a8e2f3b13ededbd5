"""The figures the console's overview draws (issue #13), as the store answers them: each one
an aggregate the database computes (SQL `count`/`min`/`sum`), never messages loaded into
Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class DayTraffic:
    """One day of the node's time zone."""

    day: date
    sent: int
    """Packages accepted from the node's systems and peers (one per package)."""
    received: int
    """Deliveries to this node's recipients (one per recipient: inbox and push routes)."""


@dataclass(frozen=True, slots=True)
class StateFigure:
    state: str
    count: int
    oldest_changed_at: datetime | None
    """The earliest `state_changed_at` among the deliveries in this state."""
    stuck: int = 0
    """How many of them are longer in it than the state's stuck threshold."""
    oldest_stuck_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FeedbackCoverage:
    """Status feedback (SPEC §2.2) of the agencies that received documents in a window: how
    many distinct status codes each sent back, in the quarterly report's buckets."""

    since: datetime
    agencies: int
    five_or_more: int
    three_to_four: int
    one_to_two: int
    none: int
