"""Replay and cancel from the console: a dry run first, whose list is shown with a confirm
form, then the act on exactly the deliveries that list named (not the filter again: what
matched may have changed meanwhile). Both steps go through the operator store, which records
each in the audit trail (dry runs included) and executed ones in the evidence log; the
confirm's answer is a redirect to that audit record."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.console.auth import UserDep, posted_form
from gateway.console.forms import Form
from gateway.console.pages.messages import FILTER_FIELDS, build_filter, search_criteria
from gateway.console.render import Page, User, render, runtime_of
from gateway.errors import InvalidRequest
from gateway.operators.actions import ActionOutcome
from gateway.operators.roles import Permission
from gateway.operators.selection import Selection, check_reason

router = APIRouter()
ACTS = {"replay": Permission.REPLAY, "cancel": Permission.CANCEL}


def _selection(request: Request, form: Form) -> Selection:
    deliveries = tuple(d for d in form.getlist("delivery") if d)
    if deliveries:
        return Selection(delivery_ids=deliveries)
    if form.get("message"):
        return Selection(message_id=form.get("message"))
    criteria = search_criteria(
        {"state": form.getlist("state"), **{f: form.get(f) for f in FILTER_FIELDS}}
    )
    if not criteria:
        raise InvalidRequest("select deliveries, a message or at least one search criterion")
    return Selection(filter=build_filter(request, criteria))


async def _run(request: Request, user: User, act: str, confirm: bool) -> tuple[ActionOutcome, str]:
    form = await posted_form(request, user, ACTS[act])
    runtime = runtime_of(request)
    if confirm:
        selection = Selection(delivery_ids=tuple(form.getlist("delivery")))
    else:
        selection = _selection(request, form)
    reason = check_reason(form.get("reason"))
    run = runtime.operators.replay if act == "replay" else runtime.operators.cancel
    return await run(selection, reason, user.operator, not confirm), reason


async def _preview(request: Request, user: User, act: str) -> HTMLResponse:
    outcome, reason = await _run(request, user, act, confirm=False)
    page = Page(request, user)
    return render(page, "action_preview.html", act=act, outcome=outcome, reason=reason)


async def _confirm(request: Request, user: User, act: str) -> RedirectResponse:
    outcome, _ = await _run(request, user, act, confirm=True)
    return RedirectResponse(Page(request, user).url(f"/audit/{outcome.action_id}"), 303)


@router.post("/replay")
async def replay_preview(request: Request, user: UserDep) -> HTMLResponse:
    return await _preview(request, user, "replay")


@router.post("/replay/confirm")
async def replay_confirm(request: Request, user: UserDep) -> RedirectResponse:
    return await _confirm(request, user, "replay")


@router.post("/cancel")
async def cancel_preview(request: Request, user: UserDep) -> HTMLResponse:
    return await _preview(request, user, "cancel")


@router.post("/cancel/confirm")
async def cancel_confirm(request: Request, user: UserDep) -> RedirectResponse:
    return await _confirm(request, user, "cancel")
