"""Connected systems: list (what each serves, how it takes deliveries, its push URL), and for
admins add, disable/enable, rotate the secret and remove. A new secret is shown once, on the
answer to the form that made it (never cached, never shown again); each change is audited
in its own transaction (`operator_actions`: system.add, system.disable …)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.console.auth import UserDep, posted_form
from gateway.console.render import Page, render, runtime_of
from gateway.errors import InvalidRequest, NotFound
from gateway.operators.roles import Permission
from gateway.services.directory import add_system, new_secret

router = APIRouter()


async def _listing(request: Request, page: Page, **context: Any) -> HTMLResponse:
    systems = await runtime_of(request).store.list_systems()
    return render(page, "systems.html", systems=systems, **context)


@router.get("/systems")
async def systems(request: Request, user: UserDep, done: str = "", id: str = "") -> HTMLResponse:
    return await _listing(request, Page(request, user), done=done, done_id=id, secret=None)


@router.post("/systems")
async def add(request: Request, user: UserDep) -> HTMLResponse:
    form = await posted_form(request, user, Permission.MANAGE)
    system_id = form.get("system_id").strip()
    serves = [p for p in re.split(r"[\s,]+", form.get("serves")) if p]
    push_url = form.get("push_url").strip() or None
    secret = await add_system(
        runtime_of(request).store, system_id, serves, push_url=push_url, by=user.operator
    )
    page = Page(request, user)
    return await _listing(request, page, done="added", done_id=system_id, secret=secret)


@router.post("/systems/{system_id}/{act}", response_model=None)
async def change(
    request: Request, user: UserDep, system_id: str, act: str
) -> HTMLResponse | RedirectResponse:
    form = await posted_form(request, user, Permission.MANAGE)
    store = runtime_of(request).store
    page = Page(request, user)
    if await store.get_system(system_id) is None:
        raise NotFound(f"no system {system_id}")
    if act in ("enable", "disable"):
        await store.set_system_enabled(system_id, act == "enable", by=user.operator)
        done = "changed"
    elif act == "rotate":
        secret = new_secret()
        await store.set_system_secret(system_id, secret, by=user.operator)
        return await _listing(request, page, done="rotated", done_id=system_id, secret=secret)
    elif act == "remove":
        if form.get("confirm").strip() != system_id:
            raise InvalidRequest(f"type {system_id} in the confirmation field to remove it")
        await store.remove_system(system_id, by=user.operator)
        done = "removed"
    else:
        raise NotFound(f"no action {act} on systems")
    return RedirectResponse(page.url("/systems", done=done, id=system_id), status_code=303)
