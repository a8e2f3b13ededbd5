"""The console as an application of its own, mounted under `/console` by the node's app
(`gateway.api.app`): its own error pages (HTML, not problem+json), its security headers,
its static files (package data), and the pages of `gateway.console.pages`.

Every answer carries a Content-Security-Policy that allows nothing but this origin's
stylesheet and images (no script at all: every page works as plain HTML forms), forbids
framing, and is not cached (a page may show a secret once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.console.auth import current_user
from gateway.console.errors import CsrfRefused, FormInvalid, SignInRequired
from gateway.console.pages import (
    actions,
    audit,
    directory,
    messages,
    overview,
    peers,
    reports,
    signin,
    stuck,
    systems,
)
from gateway.console.render import Page, User, render
from gateway.errors import GatewayError, PermissionDenied, ServiceUnavailable
from gateway.runtime import Runtime

log = logging.getLogger(__name__)
PAGES = (signin, overview, messages, actions, stuck, directory, systems, peers, reports, audit)

CSP = b"content-security-policy"
SECURITY_HEADERS = [
    (
        CSP,
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # A response with a policy of its own (the printable report) keeps it.
                own_policy = any(name == b"content-security-policy" for name, _ in headers)
                headers += [
                    h
                    for h in SECURITY_HEADERS
                    if not (own_policy and h[0] == b"content-security-policy")
                ]
                headers.append((b"cache-control", b"max-age=3600" if static else b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def _error(request: Request, status: int, key: str, detail: str = "") -> HTMLResponse:
    """The error page, with the navigation when the request came from a signed-in operator."""
    try:
        user: User | None = await current_user(request)
    except (SignInRequired, GatewayError):
        user = None
    page = Page(request, user)
    return render(page, "error.html", status=status, message_key=key, detail=detail)


async def _sign_in_first(request: Request, _: Exception) -> Response:
    page = Page(request)
    query = {"next": request.url.path + (f"?{request.url.query}" if request.url.query else "")}
    if request.method != "GET":
        query = {}
    query["expired"] = "1"
    if page.lang != "vi":
        query["lang"] = page.lang
    return RedirectResponse(f"{page.root}/login?{urlencode(query)}", status_code=303)


async def _csrf(request: Request, error: Exception) -> Response:
    assert isinstance(error, CsrfRefused)
    log.warning("console: %s (%s %s)", error.detail, request.method, request.url.path)
    return await _error(request, 403, "error.csrf")


async def _form(request: Request, error: Exception) -> Response:
    assert isinstance(error, FormInvalid)
    return await _error(request, error.status, "error.invalid", error.detail)


async def _gateway(request: Request, error: Exception) -> Response:
    assert isinstance(error, GatewayError)
    if isinstance(error, PermissionDenied):
        return await _error(request, error.http_status, "error.forbidden", error.detail)
    if isinstance(error, ServiceUnavailable):
        return await _error(request, error.http_status, "error.unavailable", error.detail)
    key = "error.not_found" if error.http_status == 404 else "error.invalid"
    return await _error(request, error.http_status, key, error.detail)


async def _http(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    key = "error.not_found" if error.status_code == 404 else "error.invalid"
    return await _error(request, error.status_code, key, str(error.detail))


async def _validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    detail = "; ".join(f"{'/'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return await _error(request, 400, "error.invalid", detail)


def create_console(runtime_of: Callable[[], Runtime]) -> FastAPI:
    """The console; `runtime_of` reaches the node's runtime (built in the node's lifespan,
    which a mounted application does not run)."""
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.runtime_of = runtime_of
    console.add_exception_handler(SignInRequired, _sign_in_first)
    console.add_exception_handler(CsrfRefused, _csrf)
    console.add_exception_handler(FormInvalid, _form)
    console.add_exception_handler(GatewayError, _gateway)
    console.add_exception_handler(StarletteHTTPException, _http)
    console.add_exception_handler(RequestValidationError, _validation)
    console.mount("/static", StaticFiles(packages=[("gateway.console", "static")]), "static")
    for module in (
        signin,
        overview,
        messages,
        actions,
        stuck,
        directory,
        systems,
        peers,
        reports,
        audit,
    ):
        console.include_router(module.router)
    console.add_middleware(SecurityHeaders)
    return console


def mount_console(app: FastAPI) -> None:
    """`/console` on the node's application."""
    app.mount("/console", create_console(lambda: app.state.runtime))
