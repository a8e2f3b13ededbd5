"""Operators (SPEC §4.3): who may look at and act on stuck messages, and what they may do.

Operator credentials are separate from system credentials. A token is shown once, when the
operator is added; only its SHA-256 is stored and tokens are compared in constant time.

Roles: `auditor` reads, `operator` also replays and cancels, `admin` may do everything
(managing operators is done with the CLI). Every replay and cancel, dry runs included, is
recorded in `operator_actions`; executed ones also go to the evidence log.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from gateway.delivery_states import REPLAYABLE, DeliveryState
from gateway.errors import InvalidRequest, PermissionDenied
from gateway.records import TimelineEntry

S = DeliveryState

MAX_PAGE = 500
MAX_SELECTION = 1000
"""At most this many deliveries per replay or cancel: a wider filter is refused, not cut."""

OPERATOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
"""No ':' (it separates name and token), so names never collide with `cli:<user>` actors."""


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    AUDITOR = "auditor"


class Permission(StrEnum):
    READ = "read"
    REPLAY = "replay"
    CANCEL = "cancel"
    MANAGE = "manage"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.AUDITOR: frozenset({Permission.READ}),
    Role.OPERATOR: frozenset({Permission.READ, Permission.REPLAY, Permission.CANCEL}),
    Role.ADMIN: frozenset(Permission),
}

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


# -- identities --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operator:
    """Who acts: an operator authenticated on the API, or the CLI's `cli:<unix user>`."""

    name: str
    role: Role

    @property
    def actor(self) -> str:
        """How timelines and the evidence log name this operator."""
        return f"operator:{self.name}"

    def require(self, permission: Permission) -> None:
        if permission not in ROLE_PERMISSIONS[self.role]:
            raise PermissionDenied(f"role '{self.role.value}' may not {permission.value}",
                                   desc_vi="Khong co quyen")


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    name: str
    role: Role
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorCredentials:
    record: OperatorRecord
    token_sha256: str = field(repr=False)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(token_hash(token).encode(), stored_sha256.encode())


def check_operator_name(name: str) -> str:
    if not OPERATOR_NAME.fullmatch(name):
        raise InvalidRequest(f"operator name {name!r}: 1-64 letters, digits, '.', '_', '@', "
                             "'-' (no ':')")
    return name


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(f"role {value!r}: use admin, operator or auditor") from None


# -- what operators search and select ----------------------------------------------------


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

    def __post_init__(self) -> None:
        for state in self.states:
            try:
                DeliveryState(state)
            except ValueError:
                raise InvalidRequest(f"unknown delivery state {state!r}; use one of "
                                     f"{', '.join(s.value for s in DeliveryState)}") from None
        age = self.older_than_seconds
        if age is not None and not (math.isfinite(age) and 0 <= age <= MAX_AGE_SECONDS):
            raise InvalidRequest(f"older_than_seconds must be a number of seconds from 0 to "
                                 f"{MAX_AGE_SECONDS} (about a century), not {age!r}")
        if self.since and self.until and self.since >= self.until:
            raise InvalidRequest("since must be before until")

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) in (None, ()) for f in fields(self))

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value in (None, ()):
                continue
            out[f.name] = value.isoformat() if isinstance(value, datetime) else (
                list(value) if isinstance(value, tuple) else value)
        return out


@dataclass(frozen=True, slots=True)
class Selection:
    """Exactly one of: these deliveries, every delivery of one message, or a filter."""

    delivery_ids: tuple[str, ...] = ()
    message_id: str | None = None
    filter: MessageFilter | None = None

    def __post_init__(self) -> None:
        given = sum((bool(self.delivery_ids), self.message_id is not None,
                     self.filter is not None))
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
        raise InvalidRequest("a reason is required", desc_vi="Can ghi ly do")
    if len(reason) > 2000:
        raise InvalidRequest("a reason has at most 2000 characters")
    return reason


# -- what the store answers --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as the operator console lists it."""

    row_id: int
    message_id: str
    delivery_id: str
    kind: str
    from_code: str
    to_code: str
    requested_code: str
    route: str
    system_id: str | None
    state: str
    state_changed_at: datetime
    attempts: int
    fail_count: int
    subject: str | None
    document_id: str
    code_number: str | None
    code_notation: str | None
    received_at: datetime
    available_at: datetime | None
    timeline: tuple[TimelineEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageDetail:
    message_id: str
    kind: str
    sender_system_id: str
    from_code: str
    document_id: str
    code_number: str | None
    code_notation: str | None
    subject: str | None
    business_type: int
    status_code: str | None
    received_at: datetime
    payload_sha256: str
    payload_size: int
    signature_outcome: str | None
    deliveries: tuple[DeliveryRow, ...]


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


# -- parsing what people type ------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> float:
    """`90`, `45s`, `30m`, `2h`, `1d`, `1w`, or combinations such as `1h30m`, in seconds."""
    text = value.strip().lower()
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position or not match.group(0):
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise InvalidRequest(f"{value!r} is not a duration (e.g. 90, 45s, 30m, 2h, 1d)")
    return total


MAX_AGE_SECONDS = 100 * 366 * 86400
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


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
        raise InvalidRequest(f"{value[:40]!r} is not a day (YYYY-MM-DD) or an ISO time between "
                             f"{EARLIEST_YEAR} and {LATEST_YEAR}") from None
    return at


def states_of(values: Sequence[str]) -> tuple[str, ...]:
    """`--state dead --state retrying` and `state=dead,retrying` alike."""
    return tuple(dict.fromkeys(s.strip() for v in values for s in v.split(",") if s.strip()))
