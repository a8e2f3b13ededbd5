"""Form bodies: url-encoded only (the console uploads no files), read after the session was
checked, capped like JSON bodies (`LIENTHONG_MAX_JSON_BODY_BYTES`), parsed by the standard
library."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

from gateway.console.errors import FormInvalid

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 2000
"""Replay confirms carry one field per delivery (at most `MAX_SELECTION`)."""


@dataclass(frozen=True, slots=True)
class Form:
    fields: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.fields:
            if key == name:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        return [value for key, value in self.fields if key == name]


async def read_form(request: Request, limit: int) -> Form:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != FORM_TYPE:
        raise FormInvalid(f"send a form ({FORM_TYPE}), not {kind or 'no Content-Type'}", 415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FormInvalid(f"the form exceeds {limit} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormInvalid(f"the form exceeds {limit} bytes", 413)
    try:
        fields = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as error:
        raise FormInvalid(f"the form cannot be read: {error}") from None
    return Form(tuple(fields))
