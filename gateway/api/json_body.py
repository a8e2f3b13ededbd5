"""JSON request bodies, read only after the caller is authenticated, and capped.

FastAPI reads a declared body parameter before it runs any dependency, authentication
included: a stranger's 400 MiB "acknowledgement" was read whole (1.1 GiB RSS) and answered 400
instead of 401. Routes that take JSON therefore declare no body parameter; they authenticate
through their dependencies, then call `read_json`, which refuses a Content-Length over the
limit at once and stops streaming past it. `json_body_doc` keeps the body in the OpenAPI
document.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from gateway.api.body_headers import check_json_type, declared_length, json_too_large
from gateway.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M], limit: int) -> M:
    """The body as `model`: 415 for another media type, 413 past `limit` bytes, 400 (with
    every field's problem, as FastAPI's own validation reads) for anything else wrong."""
    check_json_type(request.headers)
    declared = declared_length(request.headers)
    if declared is not None and declared > limit:
        raise json_too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise json_too_large(limit)
    try:
        return model.model_validate_json(bytes(body))
    except ValidationError as error:
        raise InvalidRequest(
            "; ".join(
                f"{'/'.join(str(p) for p in ('body', *e['loc']))}: {e['msg']}"
                for e in error.errors()
            )
        ) from None


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the required JSON body (schema inlined)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(model.model_json_schema())}},
        }
    }


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace `#/$defs/…` references by their definitions (OpenAPI has no `$defs` here)."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                target = copy.deepcopy(definitions[reference.rsplit("/", 1)[-1]])
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return resolve({**target, **rest})
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
