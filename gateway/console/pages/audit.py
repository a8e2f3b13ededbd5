"""The operator audit trail (`GET /api/v1/operator/actions`): every replay and cancel, dry
runs included, system changes and console sign-ins; one action with what it acted on."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.api.pagination import next_cursor, parse_cursor
from gateway.console.auth import UserDep
from gateway.console.render import Page, render, runtime_of
from gateway.errors import NotFound

router = APIRouter()
PAGE_SIZE = 100
CURSOR_SCOPE = "console|audit"


@router.get("/audit")
async def audit(
    request: Request, user: UserDep, operator: str | None = None, cursor: str | None = None
) -> HTMLResponse:
    page = Page(request, user)
    runtime = runtime_of(request)
    actions, position = await runtime.operators.operator_actions(
        parse_cursor(runtime, CURSOR_SCOPE, cursor), PAGE_SIZE, operator or None
    )
    return render(
        page,
        "audit.html",
        actions=actions,
        operator=operator or "",
        next_cursor=next_cursor(runtime, CURSOR_SCOPE, position),
    )


@router.get("/audit/{action_id}")
async def action(request: Request, user: UserDep, action_id: int) -> HTMLResponse:
    page = Page(request, user)
    found, _ = await runtime_of(request).operators.operator_actions(max(action_id - 1, 0), 1)
    if not found or found[0].id != action_id:
        raise NotFound(f"no operator action {action_id}")
    return render(page, "action.html", action=found[0])
