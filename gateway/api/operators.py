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
from typing import Annotated

from fastapi import APIRouter, Query, Request

from gateway.api.deps import Canceller, CurrentOperator, Reader, Replayer, RuntimeDep
from gateway.api.json_body import json_body_doc, read_json
from gateway.api.operator_shapes import (
    ActionOut,
    ActionPage,
    CancelIn,
    CancelOut,
    DeliveryDetailOut,
    DeliveryPage,
    DeliveryRowOut,
    MessageOut,
    ReplayIn,
    ReplayOut,
    StuckOut,
    WhoAmI,
    acted_and_skipped,
    row_fields,
    timeline,
)
from gateway.api.pagination import next_cursor, parse_cursor
from gateway.operators.roles import ROLE_PERMISSIONS
from gateway.operators.selection import (
    MAX_PAGE,
    MessageFilter,
    Selection,
    check_reason,
    parse_time,
    states_of,
    stuck_filter,
)
from gateway.runtime import Runtime

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])


def message_filter(
    runtime: Runtime,
    *,
    state: list[str] | str | None = None,
    sender: str | None = None,
    recipient: str | None = None,
    document_id: str | None = None,
    code: str | None = None,
    since: str | None = None,
    until: str | None = None,
    older_than_seconds: float | None = None,
    route: str | None = None,
    stuck: bool = False,
) -> MessageFilter:
    zone = runtime.settings.timezone
    states = [state] if isinstance(state, str) else (state or [])
    return MessageFilter(
        states=states_of(states),
        sender=sender or None,
        recipient=recipient or None,
        document_id=document_id or None,
        code=code or None,
        since=parse_time(since, zone) if since else None,
        until=parse_time(until, zone, end=True) if until else None,
        older_than_seconds=older_than_seconds,
        route=route or None,
        stuck=stuck_filter(runtime.settings.stuck_thresholds) if stuck else (),
    )


# -- routes ------------------------------------------------------------------------------


@router.get("/whoami", response_model=WhoAmI)
async def whoami(operator: CurrentOperator) -> WhoAmI:
    """The authenticated operator, its role and what the role allows."""
    return WhoAmI(
        name=operator.name,
        role=operator.role.value,
        permissions=sorted(p.value for p in ROLE_PERMISSIONS[operator.role]),
    )


@router.get("/messages", response_model=DeliveryPage)
async def list_messages(
    runtime: RuntimeDep,
    _operator: Reader,
    state: Annotated[list[str] | None, Query(description="Repeat, or comma-separate")] = None,
    sender: Annotated[str | None, Query(description="From code")] = None,
    recipient: str | None = None,
    document_id: str | None = None,
    code: Annotated[str | None, Query(description="Code number or notation")] = None,
    since: Annotated[str | None, Query(description="Received at or after")] = None,
    until: Annotated[str | None, Query(description="Received before")] = None,
    older_than_seconds: Annotated[
        float | None, Query(ge=0, description=("In its current state for longer than this"))
    ] = None,
    route: str | None = None,
    stuck: Annotated[
        bool, Query(description="Only what GET …/stuck lists (LIENTHONG_STUCK_*_SECONDS)")
    ] = False,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> DeliveryPage:
    """Deliveries (one row per message and recipient) matching every given criterion,
    oldest first; `next_cursor` fetches the following page."""
    where = message_filter(
        runtime,
        state=state,
        sender=sender,
        recipient=recipient,
        document_id=document_id,
        code=code,
        since=since,
        until=until,
        older_than_seconds=older_than_seconds,
        route=route,
        stuck=stuck,
    )
    rows, position = await runtime.operators.find_deliveries(
        where, parse_cursor(runtime, "operator|messages", cursor), limit
    )
    now = datetime.now(UTC)
    return DeliveryPage(
        items=[DeliveryRowOut(**row_fields(r, now)) for r in rows],
        next_cursor=next_cursor(runtime, "operator|messages", position),
    )


@router.get("/messages/{message_id}", response_model=MessageOut)
async def show_message(message_id: str, runtime: RuntimeDep, _operator: Reader) -> MessageOut:
    """A message's metadata and every recipient's delivery with its full timeline."""
    detail = await runtime.operators.message_detail(message_id)
    now = datetime.now(UTC)
    return MessageOut(
        message_id=detail.message_id,
        kind=detail.kind,
        sender_system_id=detail.sender_system_id,
        from_code=detail.from_code,
        document_id=detail.document_id,
        code_number=detail.code_number,
        code_notation=detail.code_notation,
        subject=detail.subject,
        business_type=detail.business_type,
        status_code=detail.status_code,
        received_at=detail.received_at,
        payload_sha256=detail.payload_sha256,
        payload_size=detail.payload_size,
        signature_outcome=detail.signature_outcome,
        deliveries=[
            DeliveryDetailOut(**row_fields(d, now), timeline=timeline(d.timeline))
            for d in detail.deliveries
        ],
    )


@router.post(
    "/replay",
    response_model=ReplayOut,
    response_model_exclude_none=True,
    openapi_extra=json_body_doc(ReplayIn),
)
async def replay(request: Request, runtime: RuntimeDep, operator: Replayer) -> ReplayOut:
    """Queue dead or stuck deliveries again, under their original message and delivery ids.
    A dry run (the default) lists exactly what would be re-sent and changes nothing.
    Deliveries already in the recipient's inbox, or finished, are skipped with the reason.
    Body: `ReplayIn`, read only once the operator is authenticated and allowed."""
    body = await read_json(request, ReplayIn, runtime.settings.max_json_body_bytes)
    selection = Selection(
        delivery_ids=tuple(body.delivery_ids or ()),
        message_id=body.message_id,
        filter=message_filter(runtime, **body.filter.model_dump()) if body.filter else None,
    )
    outcome = await runtime.operators.replay(
        selection, check_reason(body.reason), operator, body.dry_run
    )
    acted, skipped = acted_and_skipped(outcome)
    if outcome.dry_run:
        return ReplayOut(
            action_id=outcome.action_id, dry_run=True, would_replay=acted, skipped=skipped
        )
    return ReplayOut(action_id=outcome.action_id, dry_run=False, replayed=acted, skipped=skipped)


@router.post(
    "/cancel",
    response_model=CancelOut,
    response_model_exclude_none=True,
    openapi_extra=json_body_doc(CancelIn),
)
async def cancel(request: Request, runtime: RuntimeDep, operator: Canceller) -> CancelOut:
    """Cancel deliveries that are not finished (`done`, `forwarded` and `cancelled` ones are
    skipped), with the reason in their timeline. Body: `CancelIn`, read only once the
    operator is authenticated and allowed."""
    body = await read_json(request, CancelIn, runtime.settings.max_json_body_bytes)
    selection = Selection(delivery_ids=tuple(body.delivery_ids or ()), message_id=body.message_id)
    outcome = await runtime.operators.cancel(
        selection, check_reason(body.reason), operator, body.dry_run
    )
    acted, skipped = acted_and_skipped(outcome)
    if outcome.dry_run:
        return CancelOut(
            action_id=outcome.action_id, dry_run=True, would_cancel=acted, skipped=skipped
        )
    return CancelOut(action_id=outcome.action_id, dry_run=False, cancelled=acted, skipped=skipped)


@router.get("/actions", response_model=ActionPage)
async def list_actions(
    runtime: RuntimeDep,
    _operator: Reader,
    operator: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> ActionPage:
    """The operator audit trail, oldest first: every replay and cancel, dry runs included."""
    rows, position = await runtime.operators.operator_actions(
        parse_cursor(runtime, "operator|actions", cursor), limit, operator
    )
    return ActionPage(
        items=[
            ActionOut(
                id=a.id,
                at=a.at,
                operator=a.operator,
                role=a.role,
                action=a.action,
                target=a.target,
                reason=a.reason,
                dry_run=a.dry_run,
                details=a.details,
            )
            for a in rows
        ],
        next_cursor=next_cursor(runtime, "operator|actions", position),
    )


@router.get("/stuck", response_model=list[StuckOut])
async def stuck(
    runtime: RuntimeDep, _operator: Reader, limit: Annotated[int, Query(ge=1, le=5000)] = 500
) -> list[StuckOut]:
    """Deliveries longer in their state than LIENTHONG_STUCK_*_SECONDS allows, oldest first:
    not yet in the inbox, in the inbox but not collected (the daily "units that have not
    collected their documents" list), failing, retrying, dead."""
    now = datetime.now(UTC)
    return [
        StuckOut(
            state=state,
            message_id=view.message_id,
            delivery_id=view.delivery_id,
            from_code=view.from_code,
            to_code=view.to_code,
            subject=view.subject,
            state_changed_at=view.state_changed_at,
            age_seconds=(now - view.state_changed_at).total_seconds(),
            fail_count=view.fail_count,
        )
        for state, view in await runtime.store.stuck(runtime.settings.stuck_thresholds, limit)
    ]
