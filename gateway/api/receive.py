"""Receiving a package body on either API: spool it, check it, leave evidence of a refusal."""

from __future__ import annotations

from fastapi import Request

from gateway.errors import GatewayError
from gateway.records import SystemRecord
from gateway.runtime import Runtime
from gateway.spool import CRLF, SpooledBody, spool_body


async def receive_body(request: Request, runtime: Runtime, system: SystemRecord,
                       declared_hash: str | None = None) -> SpooledBody:
    """The body on disk, size-limited. With `declared_hash` (the SDK's `hash-file`) the
    bytes it describes are kept (with or without the SDK's CRLF) or the body is refused."""
    settings = runtime.settings
    try:
        body = await spool_body(request.stream(), settings.spool_dir, settings.max_package_bytes,
                                slack=len(CRLF) if declared_hash is not None else 0)
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
