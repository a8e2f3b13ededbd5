"""What a request's head says about its body, checked before a byte of the body is read.

A package body is the raw .edxml file. A multipart form or a JSON document sent in its place
used to reach the XML parser and come back as an XML syntax error with no hint, so the media
type is checked first and a refusal names the types accepted. A missing Content-Type is
accepted (some clients send none); the VNPT SDK sends `application/octet-stream`. A
Content-Length over the limit is refused from the header instead of after reading the limit.
"""

from __future__ import annotations

from starlette.datastructures import Headers

from gateway.errors import RequestTooLarge, UnsupportedMediaType

PACKAGE_MEDIA_TYPES = ("application/octet-stream", "application/xml", "text/xml")
"""Accepted for a package body, and any `…/…+xml` type; parameters (charset) are ignored."""
JSON_MEDIA_TYPE = "application/json"


def media_type(headers: Headers) -> str | None:
    """`Application/XML; charset=utf-8` → `application/xml`; None when absent or empty."""
    value = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return value or None


def declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def check_package_type(headers: Headers) -> None:
    kind = media_type(headers)
    if kind is None or kind in PACKAGE_MEDIA_TYPES or kind.endswith("+xml"):
        return
    hint = (
        " (a multipart form upload is not accepted: send the file itself as the body)"
        if kind.startswith("multipart/")
        else ""
    )
    raise UnsupportedMediaType(
        f"Content-Type {kind} is not accepted for a package{hint}; send the raw .edxml bytes "
        f"as the body with Content-Type {', '.join(PACKAGE_MEDIA_TYPES)} (or none)",
        kind=kind,
        accepted=", ".join(PACKAGE_MEDIA_TYPES),
    )


def check_json_type(headers: Headers) -> None:
    kind = media_type(headers)
    if (
        kind is None
        or kind == JSON_MEDIA_TYPE
        or (kind.startswith("application/") and kind.endswith("+json"))
    ):
        return
    raise UnsupportedMediaType(
        f"Content-Type {kind} is not accepted; send a JSON object with Content-Type "
        f"{JSON_MEDIA_TYPE}",
        kind=kind,
        accepted=JSON_MEDIA_TYPE,
    )


def json_too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"the JSON body exceeds the limit of {limit} bytes (LIENTHONG_MAX_JSON_BODY_BYTES)",
        limit=limit,
        extra={"limit": limit},
    )
