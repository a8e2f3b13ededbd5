"""Refusals on the wire: problem+json for `/api/v1`, the SDK's JSON envelope for `/vxp`."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from gateway.errors import GatewayError, InvalidRequest, ServiceUnavailable

log = logging.getLogger(__name__)

PROBLEM_TYPE = "urn:lienthong:problem:"


def problem_response(error: GatewayError) -> JSONResponse:
    body: dict[str, object] = {
        "type": PROBLEM_TYPE + error.code, "title": error.title, "status": error.http_status,
        "detail": error.detail, "code": error.code,
    }
    if error.problems:
        body["errors"] = [p.as_dict() for p in error.problems]
    body.update(error.extra)
    return JSONResponse(body, status_code=error.http_status,
                        media_type="application/problem+json")


def vxp_response(error: GatewayError) -> JSONResponse:
    """HTTP 200 with status FAIL, as the national axis answers, except when the node itself
    cannot work (503), so load balancers and clients back off."""
    body: dict[str, object] = {"status": "FAIL", "ErrorCode": error.vxp_code,
                               "ErrorDesc": error.error_desc}
    if error.problems:
        body["errors"] = [p.as_dict() for p in error.problems]
    if "messageId" in error.extra:
        body["DocId"] = error.extra["messageId"]
    status = 503 if isinstance(error, ServiceUnavailable) else 200
    return JSONResponse(body, status_code=status)


def is_vxp(request: Request) -> bool:
    return request.url.path.startswith("/vxp")


async def handle_gateway_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, GatewayError)
    log.info("refused %s %s: %s %s", request.method, request.url.path, error.code, error.detail)
    return vxp_response(error) if is_vxp(request) else problem_response(error)


async def handle_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = "; ".join(f"{'/'.join(str(p) for p in e['loc'])}: {e['msg']}"
                        for e in error.errors())
    return await handle_gateway_error(request, InvalidRequest(details))
