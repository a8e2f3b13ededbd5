"""Message search (every filter of the operator API, cursor pages) and one message's
timeline across its recipients, forwarded hops included; the replay and cancel forms lead
to `gateway.console.pages.actions`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from gateway.api.operators import message_filter
from gateway.api.pagination import next_cursor, parse_cursor
from gateway.console.auth import UserDep
from gateway.console.render import Page, render, runtime_of
from gateway.delivery_states import DeliveryState
from gateway.errors import InvalidRequest
from gateway.operators.selection import MessageFilter, states_of
from gateway.operators.views import DeliveryRow
from gateway.types import RouteKind

router = APIRouter()
PAGE_SIZE = 50
CURSOR_SCOPE = "console|messages"
FILTER_FIELDS = (
    "sender",
    "recipient",
    "document_id",
    "code",
    "since",
    "until",
    "older_than_seconds",
    "route",
    "stuck",
)


def search_criteria(values: dict[str, Any]) -> dict[str, Any]:
    """The criteria as given (to fill the form again and to carry into a replay)."""
    return {k: v for k, v in values.items() if v not in (None, "", [])}


def build_filter(request: Request, criteria: dict[str, Any]) -> MessageFilter:
    older = criteria.get("older_than_seconds")
    try:
        seconds = float(older) if older not in (None, "") else None
    except ValueError:
        raise InvalidRequest(f"older than: {older!r} is not a number of seconds") from None
    return message_filter(
        runtime_of(request),
        state=list(states_of(criteria.get("state", []))),
        sender=criteria.get("sender"),
        recipient=criteria.get("recipient"),
        document_id=criteria.get("document_id"),
        code=criteria.get("code"),
        since=criteria.get("since"),
        until=criteria.get("until"),
        older_than_seconds=seconds,
        route=criteria.get("route"),
        stuck=criteria.get("stuck") == "1",
    )


@router.get("/messages")
async def search(
    request: Request,
    user: UserDep,
    state: Annotated[list[str] | None, Query()] = None,
    sender: str | None = None,
    recipient: str | None = None,
    document_id: str | None = None,
    code: str | None = None,
    since: str | None = None,
    until: str | None = None,
    older_than_seconds: str | None = None,
    route: str | None = None,
    stuck: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    page = Page(request, user)
    runtime = runtime_of(request)
    criteria = search_criteria(
        {
            "state": list(states_of(state or [])),
            "sender": sender,
            "recipient": recipient,
            "document_id": document_id,
            "code": code,
            "since": since,
            "until": until,
            "older_than_seconds": older_than_seconds,
            "route": route,
            "stuck": "1" if stuck == "1" else None,
        }
    )
    rows: list[DeliveryRow] = []
    more: str | None = None
    problem: str | None = None
    try:
        where = build_filter(request, criteria)
        rows, position = await runtime.operators.find_deliveries(
            where, parse_cursor(runtime, CURSOR_SCOPE, cursor), PAGE_SIZE
        )
        more = next_cursor(runtime, CURSOR_SCOPE, position)
    except InvalidRequest as error:
        problem = error.detail
    return render(
        page,
        "messages.html",
        status=400 if problem else 200,
        criteria=criteria,
        rows=rows,
        next_cursor=more,
        paged=bool(cursor),
        problem=problem,
        now=datetime.now(UTC),
        states=[s.value for s in DeliveryState],
        routes=[r.value for r in RouteKind],
    )


@router.get("/messages/{message_id}")
async def show(request: Request, user: UserDep, message_id: str) -> HTMLResponse:
    page = Page(request, user)
    detail = await runtime_of(request).operators.message_detail(message_id)
    return render(page, "message.html", message=detail, now=datetime.now(UTC))
