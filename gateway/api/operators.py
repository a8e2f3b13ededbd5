"""The operator API (`/api/v1/operator`, SPEC §4.3): find stuck messages, read their
timelines, replay them (dry run first) and cancel them.

Operators authenticate with `Authorization: Bearer <operator>:<token>`, credentials separate
from those of systems. `auditor` reads, `operator` also replays and cancels, `admin` may do
everything; operators themselves are managed with `lienthong operators …`. Replays and cancels,
dry runs included, are recorded in the operator audit trail (`GET …/actions`); executed ones
also in the evidence log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import RuntimeDep
from gateway.api.pagination import next_cursor, parse_cursor
from gateway.errors import AuthenticationFailed
from gateway.operators import (
    MAX_PAGE,
    MAX_SELECTION,
    OPERATOR_NAME,
    ROLE_PERMISSIONS,
    ActionOutcome,
    DeliveryRow,
    MessageFilter,
    Operator,
    OperatorStore,
    Permission,
    Selection,
    check_reason,
    parse_time,
    states_of,
    token_hash,
    token_matches,
)
from gateway.records import TimelineEntry
from gateway.runtime import Runtime

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])

_NO_SUCH_TOKEN = token_hash("no operator has this token")
"""Compared against when the name is unknown, so both refusals take the same time."""


def _store(runtime: Runtime) -> OperatorStore:
    store: OperatorStore = runtime.store
    return store


async def bearer_operator(request: Request, runtime: RuntimeDep) -> Operator:
    """`Authorization: Bearer <operator>:<token>` (the token `lienthong operators add`
    printed)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    name, _, token = credential.strip().partition(":")
    if scheme.lower() != "bearer" or not name or not token:
        raise AuthenticationFailed("send 'Authorization: Bearer <operator>:<token>'")
    found = await _store(runtime).get_operator(name) if OPERATOR_NAME.fullmatch(name) \
        else None  # not an operator name: unknown, without asking the database
    matches = token_matches(token, found.token_sha256 if found else _NO_SUCH_TOKEN)
    if found is None or not found.record.enabled or not matches:
        raise AuthenticationFailed("unknown operator or wrong token")
    return Operator(found.record.name, found.record.role)


CurrentOperator = Annotated[Operator, Depends(bearer_operator)]


def _allowed(permission: Permission) -> Any:
    def check(operator: CurrentOperator) -> Operator:
        operator.require(permission)
        return operator
    return Depends(check)


Reader = Annotated[Operator, _allowed(Permission.READ)]
Replayer = Annotated[Operator, _allowed(Permission.REPLAY)]
Canceller = Annotated[Operator, _allowed(Permission.CANCEL)]


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
    until: str | None = Field(default=None, description="Received before (ISO or day, "
                                                        "which is included)")
    older_than_seconds: float | None = Field(default=None, ge=0)
    route: str | None = None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_ids: list[str] | None = Field(default=None, max_length=MAX_SELECTION)
    message_id: str | None = None
    filter: FilterIn | None = None
    reason: str = Field(min_length=1, max_length=2000)
    dry_run: bool = Field(default=True, description="List what would be re-sent; change "
                                                    "nothing (the default)")


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


# -- conversions -------------------------------------------------------------------------


def _timeline(entries: tuple[TimelineEntry, ...]) -> list[TimelineOut]:
    return [TimelineOut(at=t.at, from_state=t.from_state, to_state=t.to_state, actor=t.actor,
                        reason=t.reason, attempt=t.attempt) for t in entries]


def _row_fields(row: DeliveryRow, now: datetime) -> dict[str, Any]:
    return dict(
        message_id=row.message_id, delivery_id=row.delivery_id, kind=row.kind,
        from_code=row.from_code, to_code=row.to_code, requested_code=row.requested_code,
        route=row.route, system_id=row.system_id, state=row.state,
        state_changed_at=row.state_changed_at,
        state_age_seconds=round(max(0.0, (now - row.state_changed_at).total_seconds()), 3),
        attempts=row.attempts, fail_count=row.fail_count, subject=row.subject,
        document_id=row.document_id, code_number=row.code_number,
        code_notation=row.code_notation, received_at=row.received_at,
        available_at=row.available_at)


def message_filter(runtime: Runtime, *, state: list[str] | str | None = None,
                   sender: str | None = None, recipient: str | None = None,
                   document_id: str | None = None, code: str | None = None,
                   since: str | None = None, until: str | None = None,
                   older_than_seconds: float | None = None,
                   route: str | None = None) -> MessageFilter:
    zone = runtime.settings.timezone
    states = [state] if isinstance(state, str) else (state or [])
    return MessageFilter(
        states=states_of(states), sender=sender or None, recipient=recipient or None,
        document_id=document_id or None, code=code or None,
        since=parse_time(since, zone) if since else None,
        until=parse_time(until, zone, end=True) if until else None,
        older_than_seconds=older_than_seconds, route=route or None)


def _acted(outcome: ActionOutcome) -> tuple[list[ActedOnOut], list[SkippedOut]]:
    return ([ActedOnOut(delivery_id=a.delivery_id, message_id=a.message_id, to=a.to_code,
                        state=a.state) for a in outcome.done],
            [SkippedOut(delivery_id=s.delivery_id, why=s.why) for s in outcome.skipped])


# -- routes ------------------------------------------------------------------------------


@router.get("/whoami", response_model=WhoAmI)
async def whoami(operator: CurrentOperator) -> WhoAmI:
    """The authenticated operator, its role and what the role allows."""
    return WhoAmI(name=operator.name, role=operator.role.value,
                  permissions=sorted(p.value for p in ROLE_PERMISSIONS[operator.role]))


@router.get("/messages", response_model=DeliveryPage)
async def list_messages(
        runtime: RuntimeDep, _operator: Reader,
        state: Annotated[list[str] | None, Query(description="Repeat, or comma-separate")
                         ] = None,
        sender: Annotated[str | None, Query(description="From code")] = None,
        recipient: str | None = None, document_id: str | None = None,
        code: Annotated[str | None, Query(description="Code number or notation")] = None,
        since: Annotated[str | None, Query(description="Received at or after")] = None,
        until: Annotated[str | None, Query(description="Received before")] = None,
        older_than_seconds: Annotated[float | None, Query(ge=0, description=(
            "In its current state for longer than this"))] = None,
        route: str | None = None, cursor: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> DeliveryPage:
    """Deliveries (one row per message and recipient) matching every given criterion,
    oldest first; `next_cursor` fetches the following page."""
    where = message_filter(runtime, state=state, sender=sender, recipient=recipient,
                           document_id=document_id, code=code, since=since, until=until,
                           older_than_seconds=older_than_seconds, route=route)
    rows, position = await _store(runtime).find_deliveries(
        where, parse_cursor(runtime, "operator|messages", cursor), limit)
    now = datetime.now(UTC)
    return DeliveryPage(items=[DeliveryRowOut(**_row_fields(r, now)) for r in rows],
                        next_cursor=next_cursor(runtime, "operator|messages", position))


@router.get("/messages/{message_id}", response_model=MessageOut)
async def show_message(message_id: str, runtime: RuntimeDep, _operator: Reader) -> MessageOut:
    """A message's metadata and every recipient's delivery with its full timeline."""
    detail = await _store(runtime).message_detail(message_id)
    now = datetime.now(UTC)
    return MessageOut(
        message_id=detail.message_id, kind=detail.kind,
        sender_system_id=detail.sender_system_id, from_code=detail.from_code,
        document_id=detail.document_id, code_number=detail.code_number,
        code_notation=detail.code_notation, subject=detail.subject,
        business_type=detail.business_type, status_code=detail.status_code,
        received_at=detail.received_at, payload_sha256=detail.payload_sha256,
        payload_size=detail.payload_size, signature_outcome=detail.signature_outcome,
        deliveries=[DeliveryDetailOut(**_row_fields(d, now), timeline=_timeline(d.timeline))
                    for d in detail.deliveries])


@router.post("/replay", response_model=ReplayOut, response_model_exclude_none=True)
async def replay(body: ReplayIn, runtime: RuntimeDep, operator: Replayer) -> ReplayOut:
    """Queue dead or stuck deliveries again, under their original message and delivery ids.
    A dry run (the default) lists exactly what would be re-sent and changes nothing.
    Deliveries already in the recipient's inbox, or finished, are skipped with the reason."""
    selection = Selection(
        delivery_ids=tuple(body.delivery_ids or ()), message_id=body.message_id,
        filter=message_filter(runtime, **body.filter.model_dump()) if body.filter else None)
    outcome = await _store(runtime).replay(selection, check_reason(body.reason), operator,
                                           body.dry_run)
    acted, skipped = _acted(outcome)
    if outcome.dry_run:
        return ReplayOut(action_id=outcome.action_id, dry_run=True, would_replay=acted,
                         skipped=skipped)
    return ReplayOut(action_id=outcome.action_id, dry_run=False, replayed=acted,
                     skipped=skipped)


@router.post("/cancel", response_model=CancelOut, response_model_exclude_none=True)
async def cancel(body: CancelIn, runtime: RuntimeDep, operator: Canceller) -> CancelOut:
    """Cancel deliveries that are not finished (`done`, `forwarded` and `cancelled` ones are
    skipped), with the reason in their timeline."""
    selection = Selection(delivery_ids=tuple(body.delivery_ids or ()),
                          message_id=body.message_id)
    outcome = await _store(runtime).cancel(selection, check_reason(body.reason), operator,
                                           body.dry_run)
    acted, skipped = _acted(outcome)
    if outcome.dry_run:
        return CancelOut(action_id=outcome.action_id, dry_run=True, would_cancel=acted,
                         skipped=skipped)
    return CancelOut(action_id=outcome.action_id, dry_run=False, cancelled=acted,
                     skipped=skipped)


@router.get("/actions", response_model=ActionPage)
async def list_actions(runtime: RuntimeDep, _operator: Reader,
                       operator: str | None = None, cursor: str | None = None,
                       limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100) -> ActionPage:
    """The operator audit trail, oldest first: every replay and cancel, dry runs included."""
    rows, position = await _store(runtime).operator_actions(
        parse_cursor(runtime, "operator|actions", cursor), limit, operator)
    return ActionPage(items=[ActionOut(id=a.id, at=a.at, operator=a.operator, role=a.role,
                                       action=a.action, target=a.target, reason=a.reason,
                                       dry_run=a.dry_run, details=a.details) for a in rows],
                      next_cursor=next_cursor(runtime, "operator|actions", position))


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


@router.get("/stuck", response_model=list[StuckOut])
async def stuck(runtime: RuntimeDep, _operator: Reader,
                limit: Annotated[int, Query(ge=1, le=5000)] = 500) -> list[StuckOut]:
    """Deliveries longer in their state than LIENTHONG_STUCK_*_SECONDS allows, oldest first:
    not yet in the inbox, in the inbox but not collected (the daily "units that have not
    collected their documents" list), failing, retrying, dead."""
    now = datetime.now(UTC)
    return [StuckOut(state=state, message_id=view.message_id, delivery_id=view.delivery_id,
                     from_code=view.from_code, to_code=view.to_code, subject=view.subject,
                     state_changed_at=view.state_changed_at,
                     age_seconds=(now - view.state_changed_at).total_seconds(),
                     fail_count=view.fail_count)
            for state, view in await runtime.store.stuck(runtime.settings.stuck_thresholds,
                                                         limit)]
