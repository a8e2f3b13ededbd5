"""What the operator API answers and accepts (`/api/v1/operator`), as pydantic models, and
the conversions from the operator views (`gateway.operators`) to them.

Kept apart from the routes so that the OpenAPI document's shapes can be read in one place,
and the console (issue #13) can render the same rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gateway.operators.actions import ActionOutcome
from gateway.operators.selection import MAX_SELECTION
from gateway.operators.views import DeliveryRow
from gateway.records import TimelineEntry

# -- shapes ------------------------------------------------------------------------------


class TimelineOut(BaseModel):
    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    attempt: int


class DeliveryRowOut(BaseModel):
    message_id: str
    delivery_id: str
    kind: str
    from_code: str
    to_code: str
    requested_code: str = Field(description="The code the sender addressed (before a merge)")
    route: str
    system_id: str | None
    state: str
    state_changed_at: datetime
    state_age_seconds: float
    attempts: int
    fail_count: int
    subject: str | None
    document_id: str
    code_number: str | None
    code_notation: str | None
    received_at: datetime
    available_at: datetime | None


class DeliveryDetailOut(DeliveryRowOut):
    timeline: list[TimelineOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryRowOut]
    next_cursor: str | None


class MessageOut(BaseModel):
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
    deliveries: list[DeliveryDetailOut]


class FilterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: list[str] | str | None = None
    sender: str | None = Field(default=None, description="From code")
    recipient: str | None = None
    document_id: str | None = None
    code: str | None = Field(default=None, description="Code number or notation (substring)")
    since: str | None = Field(default=None, description="Received at or after (ISO or day)")
    until: str | None = Field(
        default=None, description="Received before (ISO or day, which is included)"
    )
    older_than_seconds: float | None = Field(default=None, ge=0)
    route: str | None = None
    stuck: bool = Field(
        default=False, description="Only what GET …/stuck lists (LIENTHONG_STUCK_*_SECONDS)"
    )


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_ids: list[str] | None = Field(default=None, max_length=MAX_SELECTION)
    message_id: str | None = None
    filter: FilterIn | None = None
    reason: str = Field(min_length=1, max_length=2000)
    dry_run: bool = Field(
        default=True, description="List what would be re-sent; change nothing (the default)"
    )


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_ids: list[str] | None = Field(default=None, max_length=MAX_SELECTION)
    message_id: str | None = None
    reason: str = Field(min_length=1, max_length=2000)
    dry_run: bool = False


class ActedOnOut(BaseModel):
    delivery_id: str
    message_id: str
    to: str
    state: str


class SkippedOut(BaseModel):
    delivery_id: str
    why: str


class ReplayOut(BaseModel):
    action_id: int
    dry_run: bool
    would_replay: list[ActedOnOut] | None = None
    replayed: list[ActedOnOut] | None = None
    skipped: list[SkippedOut]


class CancelOut(BaseModel):
    action_id: int
    dry_run: bool
    would_cancel: list[ActedOnOut] | None = None
    cancelled: list[ActedOnOut] | None = None
    skipped: list[SkippedOut]


class ActionOut(BaseModel):
    id: int
    at: datetime
    operator: str
    role: str
    action: str
    target: str
    reason: str | None
    dry_run: bool
    details: dict[str, Any]


class ActionPage(BaseModel):
    items: list[ActionOut]
    next_cursor: str | None


class WhoAmI(BaseModel):
    name: str
    role: str
    permissions: list[str]


class StuckOut(BaseModel):
    state: str = Field(description="The state it has been in longer than its threshold")
    message_id: str
    delivery_id: str
    from_code: str
    to_code: str
    subject: str | None
    state_changed_at: datetime
    age_seconds: float
    fail_count: int


# -- conversions -------------------------------------------------------------------------


def timeline(entries: tuple[TimelineEntry, ...]) -> list[TimelineOut]:
    return [
        TimelineOut(
            at=t.at,
            from_state=t.from_state,
            to_state=t.to_state,
            actor=t.actor,
            reason=t.reason,
            attempt=t.attempt,
        )
        for t in entries
    ]


def row_fields(row: DeliveryRow, now: datetime) -> dict[str, Any]:
    return dict(
        message_id=row.message_id,
        delivery_id=row.delivery_id,
        kind=row.kind,
        from_code=row.from_code,
        to_code=row.to_code,
        requested_code=row.requested_code,
        route=row.route,
        system_id=row.system_id,
        state=row.state,
        state_changed_at=row.state_changed_at,
        state_age_seconds=round(max(0.0, (now - row.state_changed_at).total_seconds()), 3),
        attempts=row.attempts,
        fail_count=row.fail_count,
        subject=row.subject,
        document_id=row.document_id,
        code_number=row.code_number,
        code_notation=row.code_notation,
        received_at=row.received_at,
        available_at=row.available_at,
    )


def acted_and_skipped(outcome: ActionOutcome) -> tuple[list[ActedOnOut], list[SkippedOut]]:
    return (
        [
            ActedOnOut(
                delivery_id=a.delivery_id, message_id=a.message_id, to=a.to_code, state=a.state
            )
            for a in outcome.done
        ],
        [SkippedOut(delivery_id=s.delivery_id, why=s.why) for s in outcome.skipped],
    )
