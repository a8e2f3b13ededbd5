"""Receiving a package body on either API: spool it, check it, leave evidence of a refusal."""

from __future__ import annotations

from fastapi import Request

from gateway.api.body_headers import check_package_type, declared_length
from gateway.errors import GatewayError
from gateway.records import SystemRecord
from gateway.runtime import Runtime
from gateway.spool import CRLF, SpooledBody, spool_body, too_large


async def receive_body(
    request: Request, runtime: Runtime, system: SystemRecord, declared_hash: str | None = None
) -> SpooledBody:
    """The body on disk, size-limited. With `declared_hash` (the SDK's `hash-file`) the
    bytes it describes are kept (with or without the SDK's CRLF) or the body is refused.

    Called after authentication. The head is checked before a byte is read: the media type,
    and a Content-Length over the limit (refused at once, not after reading the limit); then
    the body takes one of the system's upload slots while it streams."""
    settings = runtime.settings
    slack = len(CRLF) if declared_hash is not None else 0
    try:
        check_package_type(request.headers)
        declared = declared_length(request.headers)
        if declared is not None and declared > settings.max_package_bytes + slack:
            raise too_large(settings.max_package_bytes)
    except GatewayError as error:
        await runtime.submit.record_refusal(system, None, error)
        raise
    with runtime.uploads.hold(system.system_id):
        try:
            body = await spool_body(
                request.stream(), settings.spool_dir, settings.max_package_bytes, slack=slack
            )
        except GatewayError as error:
            await runtime.submit.record_refusal(system, None, error)
            raise
    if declared_hash is not None:
        try:
            body.keep_matching(declared_hash)
        except GatewayError as error:
            body.discard()
            await runtime.submit.record_refusal(system, body.sha256, error)
            raise
    return body
