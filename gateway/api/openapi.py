"""The OpenAPI document (`/openapi.json`) as the API really answers, errors included.

FastAPI documents what a route returns on success and a 422 `HTTPValidationError` that this
gateway never sends (a request that does not fit its parameters is a 400 problem+json, see
`gateway.api.errors`). Client generators and `tests/test_fuzz_api.py` read the document, so
it must say what the node does: here every `/api/v1` operation gets

- its security scheme (a system's `Bearer <systemId>:<secret>`, an operator's
  `Bearer <operator>:<token>`) and 401;
- 400 when it takes parameters or a body, 404 when its path names something, 503 when the
  database is unreachable, each as `application/problem+json` (RFC 9457);
- the few statuses and content types that only some operations have (`OPERATION_EXTRAS`).

This is one post-processing step over FastAPI's output rather than `responses=` on each
route, so route modules stay about behaviour. The fuzzer fails on any status, content type
or body the document does not describe, which keeps this table honest.
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

DESCRIPTIONS = {
    400: "A parameter, header, cursor or body is not what the operation takes",
    401: "No credentials, or not this API's credentials",
    403: "Authenticated, but not allowed to do this",
    404: "Nothing with this id is visible to the caller",
    409: "The same DocumentId was already accepted from this sender",
    413: "The body is over its limit: LIENTHONG_MAX_PACKAGE_BYTES for a package, "
    "LIENTHONG_MAX_JSON_BODY_BYTES for a JSON body",
    422: "The package was refused: every problem with its element path",
    503: "The database is unreachable; nothing was done, retry later",
}

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
        413: {},
        422: {},
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
"""(method, path) → status → response, merged over the derived ones; `{}` means the shared
problem+json response for that status."""


def problem_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (and so `/openapi.json`) the corrected document, built once."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(generated: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with every operation's errors, security and content types."""
    doc = copy.deepcopy(generated)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(copy.deepcopy(PROBLEM_SCHEMAS))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        SYSTEM_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "`<systemId>:<secret>`, the credential /vxp signs with",
        },
        OPERATOR_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "`<operator>:<token>` from `lienthong operators add`",
        },
    }
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            _document_operation(method, path, operation)
    return doc


def _document_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's HTTPValidationError: this API answers 400
    statuses: set[int] = set()
    if path.startswith("/api/v1/"):
        scheme = OPERATOR_SCHEME if path.startswith("/api/v1/operator") else SYSTEM_SCHEME
        operation["security"] = [{scheme: []}]
        statuses |= {401, 503}
        if operation.get("parameters") or operation.get("requestBody"):
            statuses.add(400)
        if operation.get("requestBody"):
            statuses.add(413)
        if "{" in path:
            statuses.add(404)
    for status in sorted(statuses):
        responses[str(status)] = problem_response(status)
    for status, response in OPERATION_EXTRAS.get((method, path), {}).items():
        responses[str(status)] = copy.deepcopy(response) or problem_response(status)
