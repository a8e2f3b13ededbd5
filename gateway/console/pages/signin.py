"""Sign in and out. A successful sign-in is audited (`console.sign-in`), like every act."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.console.auth import UserDep, check_credentials, posted_form
from gateway.console.csrf import LOGIN_COOKIE, check_same_origin, check_token, new_nonce, token_for
from gateway.console.forms import read_form
from gateway.console.render import Page, render, runtime_of
from gateway.console.session import COOKIE, SESSION_SECONDS, new_session, seal
from gateway.operators.roles import Operator, Permission

log = logging.getLogger(__name__)
router = APIRouter()


def _cookie(response: Response, request: Request, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=request.scope.get("root_path", "") or "/",
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def _safe_next(page: Page, target: str | None) -> str:
    """Back where the operator was sent from: only a path of the console itself."""
    if target and target.startswith(page.root + "/") and not target.startswith("//"):
        return target
    return page.url("/")


def _form(
    request: Request, next_url: str | None, failed: bool = False, expired: bool = False
) -> HTMLResponse:
    page = Page(request)
    key = runtime_of(request).console_key
    nonce = request.cookies.get(LOGIN_COOKIE) or new_nonce()
    response = render(
        page,
        "signin.html",
        status=401 if failed else 200,
        csrf=token_for(key, "login", nonce),
        next_url=next_url or "",
        failed=failed,
        expired=expired,
    )
    _cookie(response, request, LOGIN_COOKIE, nonce, 3600)
    return response


@router.get("/login")
async def sign_in_form(
    request: Request,
    next_url: Annotated[str | None, Query(alias="next")] = None,
    expired: bool = False,
) -> HTMLResponse:
    return _form(request, next_url, expired=expired)


@router.post("/login", response_model=None)
async def sign_in(request: Request) -> Response:
    runtime = runtime_of(request)
    check_same_origin(request)
    form = await read_form(request, runtime.settings.max_json_body_bytes)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    check_token(token_for(runtime.console_key, "login", nonce) if nonce else "", form.get("csrf"))
    found = await check_credentials(runtime, form.get("name"), form.get("token"))
    if found is None:
        log.warning("console: refused sign-in as %r", form.get("name")[:64])
        return _form(request, form.get("next"), failed=True)
    operator = Operator(found.record.name, found.record.role)
    await runtime.operators.record_operator_action(
        operator, "console.sign-in", f"operator {operator.name}", {}
    )
    page = Page(request)
    response = RedirectResponse(_safe_next(page, form.get("next")), status_code=303)
    session = new_session(runtime.console_key, operator.name, found.token_sha256)
    _cookie(response, request, COOKIE, seal(runtime.console_key, session), SESSION_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path=page.root or "/")
    return response


@router.post("/logout")
async def sign_out(request: Request, user: UserDep) -> RedirectResponse:
    await posted_form(request, user, Permission.READ)
    page = Page(request, user)
    response = RedirectResponse(page.url("/login"), status_code=303)
    response.delete_cookie(COOKIE, path=page.root or "/")
    return response
