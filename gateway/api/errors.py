"""Refusals on the wire: problem+json for `/api/v1`, the SDK's JSON envelope for `/vxp`."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api.observe import mark_refusal
from gateway.api.vxp_answers import fail_fields, operation_of
from gateway.errors import (
    GatewayError,
    InternalError,
    InvalidRequest,
    RequestUnknown,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:lienthong:problem:"


def problem_response(error: GatewayError) -> JSONResponse:
    body: dict[str, object] = {
        "type": PROBLEM_TYPE + error.code,
        "title": error.title,
        "status": error.http_status,
        "detail": error.detail,
        "code": error.code,
    }
    if error.problems:
        body["errors"] = [p.as_dict() for p in error.problems]
    body.update(error.extra)
    return JSONResponse(
        body,
        status_code=error.http_status,
        headers=error.response_headers,
        media_type="application/problem+json",
    )


RAW_DOWNLOADS = frozenset({"downloadEdoc"})
"""Operations whose answer body is the document itself: the SDK saves any non-empty body as
the package, so a refusal there is an HTTP error status with an empty body."""


def vxp_response(error: GatewayError, operation: str) -> Response:
    """HTTP 200 with status FAIL, as the national axis answers, except when the node itself
    cannot work (503), so load balancers and clients back off. The body carries every field
    the operation's SDK method reads (`vxp_answers`), or the SDK hides the refusal."""
    if operation in RAW_DOWNLOADS:
        return Response(
            status_code=error.http_status,
            headers={
                **error.response_headers,
                "X-Lienthong-Error-Code": error.vxp_code,
                "X-Lienthong-Error": header_safe(error.error_desc),
            },
        )
    body: dict[str, object] = {
        "status": "FAIL",
        "ErrorCode": error.vxp_code,
        "ErrorDesc": error.error_desc,
        **fail_fields(operation),
    }
    if error.problems:
        body["errors"] = [p.as_dict() for p in error.problems]
    if "messageId" in error.extra and "DocId" in body:
        body["DocId"] = error.extra["messageId"]
    status = 503 if isinstance(error, ServiceUnavailable) else 200
    return JSONResponse(body, status_code=status, headers=error.response_headers)


def header_safe(text: str, limit: int = 1000) -> str:
    """ASCII without control characters, for a response header."""
    return "".join(c if " " <= c <= "~" else " " for c in text)[:limit]


def is_vxp(request: Request) -> bool:
    return request.url.path.startswith("/vxp")


async def handle_gateway_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, GatewayError)
    mark_refusal(request.scope, error.code)
    log.info("refused %s %s: %s %s", request.method, request.url.path, error.code, error.detail)
    if is_vxp(request):
        return vxp_response(error, operation_of(request.url.path))
    return problem_response(error)


async def handle_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    details = "; ".join(f"{'/'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
    return await handle_gateway_error(request, InvalidRequest(details))


HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def http_problem(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """What routing refuses before any route runs (unknown path, method not allowed) as
    problem+json, with the status and headers (a 405's `Allow`) Starlette chose."""
    code = HTTP_CODES.get(error.status_code, f"HTTP_{error.status_code}")
    body = {
        "type": PROBLEM_TYPE + code,
        "title": str(error.detail),
        "status": error.status_code,
        "code": code,
        "detail": f"{request.method} {request.url.path}: {error.detail}",
    }
    return JSONResponse(
        body,
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/problem+json",
    )


async def handle_http_error(request: Request, error: Exception) -> Response:
    """Unknown paths and wrong methods: on `/vxp` in the SDK's envelope (27); elsewhere as
    problem+json like every other error."""
    assert isinstance(error, StarletteHTTPException)
    if not is_vxp(request):
        if error.status_code < 400:
            return await http_exception_handler(request, error)
        return http_problem(request, error)
    refusal = RequestUnknown(f"{request.method} {request.url.path}: {error.detail}")
    response = vxp_response(refusal, operation_of(request.url.path))
    response.status_code = error.status_code
    return response


async def handle_unexpected_error(request: Request, error: Exception) -> Response:
    """A defect: logged with its traceback; the client still gets a well-formed answer."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    refusal = InternalError("internal error; the request was not completed")
    if is_vxp(request):
        response = vxp_response(refusal, operation_of(request.url.path))
    else:
        response = problem_response(refusal)
    response.status_code = 500
    return response
