"""What operators search for and act on: a filter over deliveries, or a selection of them.

Both are checked when built, so a store receives only a well-formed request: known states, a
sane age, a non-empty filter, at most `MAX_SELECTION` deliveries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.delivery_states import DeliveryState
from gateway.errors import InvalidRequest, ReasonMissing

MAX_PAGE = 500
MAX_SELECTION = 1000
"""At most this many deliveries per replay or cancel: a wider filter is refused, not cut."""
MAX_AGE_SECONDS = 100 * 366 * 86400
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """Deliveries to list or act on; every given criterion must hold."""

    states: tuple[str, ...] = ()
    sender: str | None = None
    """The From code of the message."""
    recipient: str | None = None
    document_id: str | None = None
    code: str | None = None
    """A substring of the code number or notation, or `number/notation`."""
    since: datetime | None = None
    """Received at or after."""
    until: datetime | None = None
    """Received before."""
    older_than_seconds: float | None = None
    """In its current state for longer than this."""
    route: str | None = None
    stuck: tuple[tuple[str, float], ...] = ()
    """Only deliveries stuck as `messages stuck` (`GET …/stuck`) says: (state, seconds) pairs,
    a delivery in one of these states for longer than its seconds (`Settings.stuck_thresholds`,
    given by `stuck_filter`)."""

    def __post_init__(self) -> None:
        for state in self.states:
            try:
                DeliveryState(state)
            except ValueError:
                raise InvalidRequest(
                    f"unknown delivery state {state!r}; use one of "
                    f"{', '.join(s.value for s in DeliveryState)}"
                ) from None
        age = self.older_than_seconds
        if age is not None and not (math.isfinite(age) and 0 <= age <= MAX_AGE_SECONDS):
            raise InvalidRequest(
                f"older_than_seconds must be a number of seconds from 0 to "
                f"{MAX_AGE_SECONDS} (about a century), not {age!r}"
            )
        if self.since and self.until and self.since >= self.until:
            raise InvalidRequest("since must be before until")
        for state, _ in self.stuck:
            DeliveryState(state)

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) in (None, ()) for f in fields(self))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, ()):
                continue
            if f.name == "stuck":
                out[f.name] = True  # the thresholds are the node's settings
                continue
            out[f.name] = (
                value.isoformat()
                if isinstance(value, datetime)
                else (list(value) if isinstance(value, tuple) else value)
            )
        return out


def stuck_filter(thresholds: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """`MessageFilter.stuck` for the node's thresholds (what `messages stuck` lists)."""
    return tuple(sorted(thresholds.items()))


@dataclass(frozen=True, slots=True)
class Selection:
    """Exactly one of: these deliveries, every delivery of one message, or a filter."""

    delivery_ids: tuple[str, ...] = ()
    message_id: str | None = None
    filter: MessageFilter | None = None

    def __post_init__(self) -> None:
        given = sum((bool(self.delivery_ids), self.message_id is not None, self.filter is not None))
        if given != 1:
            raise InvalidRequest("select exactly one of: delivery ids, a message id, a filter")
        if self.filter is not None and self.filter.empty:
            raise InvalidRequest("a filter must have at least one criterion")
        if len(self.delivery_ids) > MAX_SELECTION:
            raise InvalidRequest(f"at most {MAX_SELECTION} delivery ids at once")

    def describe(self) -> str:
        if self.delivery_ids:
            return "deliveries " + ",".join(self.delivery_ids)
        if self.message_id is not None:
            return f"message {self.message_id}"
        assert self.filter is not None
        return "filter " + ",".join(f"{k}={v}" for k, v in self.filter.as_dict().items())


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ReasonMissing("a reason is required")
    if len(reason) > 2000:
        raise InvalidRequest("a reason has at most 2000 characters")
    return reason


# -- criteria as people type them (API query strings and CLI options alike) ------------


def parse_time(value: str, zone: str, *, end: bool = False) -> datetime:
    """An ISO time, or a day `YYYY-MM-DD`; times without an offset are in `zone` (the node's
    time zone). A day as the end of a range includes that whole day."""
    text = value.strip()
    try:
        if len(text) <= 10:
            day = date.fromisoformat(text)
            at = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone))
            at = at + timedelta(days=1) if end else at
        else:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
            at = at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(zone))
        if not EARLIEST_YEAR <= at.astimezone(UTC).year <= LATEST_YEAR:
            raise ValueError
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"{value[:40]!r} is not a day (YYYY-MM-DD) or an ISO time between "
            f"{EARLIEST_YEAR} and {LATEST_YEAR}"
        ) from None
    return at


def states_of(values: Sequence[str]) -> tuple[str, ...]:
    """`--state dead --state retrying` and `state=dead,retrying` alike."""
    return tuple(dict.fromkeys(s.strip() for v in values for s in v.split(",") if s.strip()))
