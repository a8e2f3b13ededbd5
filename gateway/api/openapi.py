"""The OpenAPI document (`/openapi.json`) as the API really answers, errors included.

FastAPI documents what a route returns on success and a 422 `HTTPValidationError` that this
gateway never sends (a request that does not fit its parameters is a 400 problem+json, see
`gateway.api.errors`). Client generators, `/docs` and `tests/test_fuzz_api.py` read the
document, so it must say what the node does: here every `/api/v1` operation gets

- its security scheme: a system's `Authorization: Bearer <systemId>:<secret>`, an
  operator's `Authorization: Bearer <operator>:<token>`;
- every error status it can answer, each as `application/problem+json` (RFC 9457) whose
  `code` is one of those listed for that status on that operation (`ERRORS`): 401 always;
  403 when the caller is a system (`SYSTEM_DISABLED`) or an operator changes something
  (`PERMISSION_DENIED`: every operator POST needs more than the `read` permission, and every
  GET needs only that; the fuzzer, calling as an auditor too, holds the rule); 400 when it
  takes parameters or a body; 404 when its path names something; 413 and 415 when it reads a
  JSON body; 408 and 431 (the HTTP layer's limits), 500 (a defect) and 503 (the database)
  everywhere;
- the few statuses and content types that only some operations have (`OPERATION_EXTRAS`).

This is one post-processing step over FastAPI's output rather than `responses=` on each
route, so route modules stay about behaviour. The fuzzer fails on any status, content type
or body (a `code` included) the document does not describe, which keeps this table honest.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

PROBLEM = "application/problem+json"
SYSTEM_SCHEME, OPERATOR_SCHEME = "systemBearer", "operatorBearer"

PROBLEM_SCHEMAS: dict[str, Any] = {
    "ProblemItem": {
        "type": "object",
        "required": ["code", "path", "message"],
        "properties": {
            "code": {"type": "string", "description": "Stable rule code, e.g. EDXML_REQUIRED"},
            "path": {
                "type": "string",
                "description": "Element or parameter, e.g. MessageHeader/To[2]/OrganId",
            },
            "message": {"type": "string"},
            "severity": {"type": "string", "enum": ["error", "warning"]},
        },
    },
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "code"],
        "description": "RFC 9457 problem details; `code` is stable (gateway/errors.py).",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemItem"}},
        },
    },
}

ERRORS: dict[int, tuple[str, dict[str, str]]] = {
    400: (
        "A parameter, header, cursor or body is not what the operation takes",
        {"INVALID_REQUEST": "the problem is named in `detail`"},
    ),
    401: (
        "No credentials, or not this API's credentials",
        {"AUTH_FAILED": "missing, malformed or wrong `Authorization: Bearer …`"},
    ),
    403: (
        "Authenticated, but not allowed to do this",
        {
            "SYSTEM_DISABLED": "an operator disabled the calling system (`lienthong systems "
            "disable`); its requests are refused until it is enabled",
            "PERMISSION_DENIED": "the operator's role does not allow it, or the system may "
            "not act for this agency",
        },
    ),
    404: (
        "Nothing with this id is visible to the caller",
        {"NOT_FOUND": "no such thing, or not the caller's to see"},
    ),
    408: (
        "The request head or body did not arrive in time",
        {"REQUEST_TIMEOUT": "LIENTHONG_HEADER_TIMEOUT_SECONDS / LIENTHONG_BODY_TIMEOUT_SECONDS"},
    ),
    409: (
        "The same DocumentId was already accepted from this sender",
        {"DUPLICATE_DOCUMENT": "the original message id is in `messageId`"},
    ),
    413: (
        "The body is too large",
        {
            "PACKAGE_TOO_LARGE": "a package over LIENTHONG_MAX_PACKAGE_BYTES",
            "REQUEST_TOO_LARGE": "a JSON body over LIENTHONG_MAX_JSON_BODY_BYTES",
        },
    ),
    415: (
        "The body's Content-Type is not one the operation takes",
        {"UNSUPPORTED_MEDIA_TYPE": "the accepted types are named in `detail`"},
    ),
    422: (
        "The package was refused: every problem with its element path in `errors`",
        {
            "PACKAGE_INVALID": "not valid edXML (every problem in `errors`)",
            "SIGNATURE_REJECTED": "the signature policy refuses its signature",
            "RECIPIENT_UNKNOWN": "a recipient that no system or peer serves",
            "RECIPIENT_CLOSED": "every refused recipient is closed in the directory",
            "RECIPIENT_LOCKED": "a recipient whose system is disabled on this node",
        },
    ),
    429: (
        "Too many uploads of this system in flight; send again after `Retry-After`",
        {"TOO_MANY_UPLOADS": "LIENTHONG_MAX_UPLOADS_PER_SYSTEM"},
    ),
    431: (
        "Request header fields too large or too many",
        {"HEADERS_TOO_LARGE": "LIENTHONG_MAX_HEADER_BYTES / LIENTHONG_MAX_HEADER_COUNT"},
    ),
    500: (
        "A defect: the request was not completed (and is logged)",
        {"GATEWAY_ERROR": "report it"},
    ),
    503: (
        "The database is unreachable; nothing was done, retry later",
        {"SERVICE_UNAVAILABLE": "retry later"},
    ),
}
"""Status → (what it means, the stable `code`s that status carries with what each means).
Every category of `gateway.errors` is here (`BODY_HASH_MISMATCH` only answers `/vxp`'s
hash-file), which `tests/test_openapi_errors.py` checks."""

DESCRIPTIONS = {status: description for status, (description, _) in ERRORS.items()}

BINARY = {"schema": {"type": "string", "format": "binary"}}
OPERATION_EXTRAS: dict[tuple[str, str], dict[int, dict[str, Any]]] = {
    ("post", "/api/v1/packages"): {
        200: {
            "description": "The answer to an earlier submission with the same "
            "Idempotency-Key (nothing new was created)",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PackageAccepted"}}
            },
        },
        403: {},
        409: {},
        413: {"codes": ("PACKAGE_TOO_LARGE",)},
        415: {},
        422: {},
        429: {
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before sending again",
                    "schema": {"type": "integer"},
                }
            }
        },
    },
    ("get", "/api/v1/packages/{message_id}/original"): {
        200: {"description": "The package as sent", "content": {"application/xml": BINARY}}
    },
    ("get", "/api/v1/packages/{message_id}/attachments/{position}"): {
        200: {
            "description": "The attachment's bytes (or the file inside with unzip=true)",
            "content": {"*/*": BINARY},
        }
    },
    ("get", "/api/v1/inbox/{delivery_id}/content"): {
        200: {"description": "The delivered copy", "content": {"application/xml": BINARY}}
    },
    ("post", "/api/v1/operator/replay"): {403: {}, 404: {}},
    ("post", "/api/v1/operator/cancel"): {403: {}, 404: {}},
    ("get", "/metrics"): {503: {}},
    ("get", "/readyz"): {
        400: {},
        503: {
            "description": "Not ready: starting or migrating, or the database, the broker or "
            "the payload store unreachable (each reported)",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
}
"""(method, path) → status → response, merged over the derived ones: `{}` means the shared
problem+json response for that status, `{"codes": …}` the same narrowed to those codes, and
`{"headers": …}` the same with those headers; anything else is the response itself."""

SHARED_ERRORS = (408, 431, 500, 503)
"""What any `/api/v1` operation can answer whatever it does: the HTTP layer's limits on the
request head (`gateway.api.protocol`) and body (`gateway.api.limits`), a defect, the database."""


def problem_response(status: int, codes: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The problem+json response for `status`, its `code` one of `codes` (all of the
    status's codes by default), each named in the description."""
    description, known = ERRORS[status]
    chosen = codes or tuple(known)
    listed = "; ".join(f"`{code}`: {known[code]}" for code in chosen)
    schema: dict[str, Any] = {
        "allOf": [
            {"$ref": "#/components/schemas/Problem"},
            {"type": "object", "properties": {"code": {"type": "string", "enum": list(chosen)}}},
        ]
    }
    return {"description": f"{description} ({listed})", "content": {PROBLEM: {"schema": schema}}}


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (and so `/openapi.json`) the corrected document, built once."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


SECURITY_SCHEMES = {
    SYSTEM_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "A connected document system: `Authorization: Bearer "
        "<systemId>:<secret>`, the systemId and secret that `lienthong systems add` (or "
        "`rotate-secret`) printed — the same credential `/vxp` signs its HMAC with. For "
        "`lienthong serve --demo`: `Bearer demo.sender:<secret>`, the secret it prints.",
    },
    OPERATOR_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "An operator of the node: `Authorization: Bearer <operator>:<token>`, "
        "the name and the token `lienthong operators add NAME --role …` printed (roles "
        "admin, operator, auditor). Never a system's credential.",
    },
}


def document(generated: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with every operation's errors, security and content types."""
    doc = copy.deepcopy(generated)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(copy.deepcopy(PROBLEM_SCHEMAS))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            _document_operation(method, path, operation)
    return doc


def _document_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's HTTPValidationError: this API answers 400
    errors: dict[int, tuple[str, ...] | None] = {}
    if path.startswith("/api/v1/"):
        operator = path.startswith("/api/v1/operator")
        operation["security"] = [{OPERATOR_SCHEME if operator else SYSTEM_SCHEME: []}]
        errors.update(dict.fromkeys((401, *SHARED_ERRORS)))
        if not operator:
            errors[403] = ("SYSTEM_DISABLED",)
        elif method != "get":
            errors[403] = ("PERMISSION_DENIED",)  # every operator change needs more than read
        if operation.get("parameters") or operation.get("requestBody"):
            errors[400] = None
        if "{" in path:
            errors[404] = None
        if "application/json" in operation.get("requestBody", {}).get("content", {}):
            errors[413] = ("REQUEST_TOO_LARGE",)
            errors[415] = None
    for status in sorted(errors):
        responses[str(status)] = problem_response(status, errors[status])
    for status, response in OPERATION_EXTRAS.get((method, path), {}).items():
        responses[str(status)] = _extra(status, response, errors.get(status))
    operation["responses"] = dict(sorted(responses.items()))


def _extra(
    status: int, response: dict[str, Any], derived: tuple[str, ...] | None
) -> dict[str, Any]:
    if response and not set(response) <= {"codes", "headers"}:
        return copy.deepcopy(response)
    if status == 403 and derived and "codes" not in response:
        codes: tuple[str, ...] | None = tuple(dict.fromkeys((*derived, "PERMISSION_DENIED")))
    else:
        codes = response.get("codes", derived)
    shaped = problem_response(status, codes)
    if "headers" in response:
        shaped["headers"] = copy.deepcopy(response["headers"])
    return shaped
