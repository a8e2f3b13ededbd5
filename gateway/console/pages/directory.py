"""The agency directory: search by code or name, bounded (the national directory holds about
111,000 agencies); one agency with its units, and for operators and admins its merge into a
successor, a new name, or its retirement (`gateway.services.reorganisation`, as
`lienthong agencies merge|rename|retire`). Each is in the evidence log with the operator as
actor (in the change's transaction) and then in the operator audit trail."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.console.auth import UserDep, posted_form
from gateway.console.render import Page, render, runtime_of
from gateway.errors import InvalidRequest, NotFound
from gateway.operators.roles import Permission
from gateway.services.reorganisation import merge_agency, rename_agency, retire_agency

router = APIRouter()
LIMIT = 100
MAX_QUERY = 200


@router.get("/directory")
async def directory(request: Request, user: UserDep, q: str = "") -> HTMLResponse:
    page = Page(request, user)
    query = q.strip()[:MAX_QUERY]
    agencies, total = await runtime_of(request).console.search_agencies(query, LIMIT)
    return render(page, "directory.html", q=query, agencies=agencies, total=total, limit=LIMIT)


@router.get("/directory/{code}")
async def agency(request: Request, user: UserDep, code: str, done: str = "") -> HTMLResponse:
    page = Page(request, user)
    found = await runtime_of(request).console.agency_with_units(code, LIMIT)
    if not found:
        raise NotFound(f"no agency {code} in the directory")
    return render(page, "agency.html", agency=found[0], units=found[1:], done=done)


@router.post("/directory/{code}/{act}")
async def change(request: Request, user: UserDep, code: str, act: str) -> RedirectResponse:
    form = await posted_form(request, user, Permission.DIRECTORY)
    runtime = runtime_of(request)
    store, actor = runtime.directory, user.operator.actor
    details: dict[str, Any]
    if act == "merge":
        into = form.get("into").strip()
        outcome = await merge_agency(store, code, into, runtime.settings.broker_shards, actor)
        details = {
            "into": into,
            "successor": outcome.successor,
            "change": outcome.change,
            "redirected": list(outcome.redirected),
            "cancelled": list(outcome.cancelled),
            "left": [list(pair) for pair in outcome.left],
        }
    elif act == "rename":
        name = form.get("name")
        details = {
            "name": name.strip(),
            "change": (await rename_agency(store, code, name, actor)).change,
        }
    elif act == "retire":
        if form.get("confirm").strip() != code:
            raise InvalidRequest(f"type {code} in the confirmation field to retire it")
        details = {"change": (await retire_agency(store, code, actor)).change}
    else:
        raise NotFound(f"no action {act} on agencies")
    await runtime.operators.record_operator_action(
        user.operator, f"agency.{act}", f"agency {code}", details
    )
    return RedirectResponse(Page(request, user).url(f"/directory/{code}", done=act), 303)
