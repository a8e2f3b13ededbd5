"""Typed dependencies that routes declare: the runtime and the calling system."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from gateway.errors import AuthenticationFailed
from gateway.records import SystemRecord
from gateway.runtime import Runtime
from gateway.services.directory import is_system_id


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def bearer_system(request: Request, runtime: RuntimeDep) -> SystemRecord:
    """`Authorization: Bearer <systemId>:<secret>`, the same credential `/vxp` signs with."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    system_id, _, secret = token.strip().rpartition(":")
    if scheme.lower() != "bearer" or not system_id or not secret:
        raise AuthenticationFailed("send 'Authorization: Bearer <systemId>:<secret>'")
    credentials = await runtime.store.get_credentials(system_id) \
        if is_system_id(system_id) else None
    if credentials is None or not credentials.system.enabled or not hmac.compare_digest(
            credentials.secret.encode(), secret.encode()):
        raise AuthenticationFailed("unknown system id or wrong secret")
    return credentials.system


CurrentSystem = Annotated[SystemRecord, Depends(bearer_system)]
