"""Typed dependencies that routes declare: the runtime, the calling system, and the
operator with the permission a route needs."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from gateway.errors import AuthenticationFailed, ServiceUnavailable, SystemDisabled
from gateway.operators.roles import (
    OPERATOR_NAME,
    Operator,
    Permission,
    token_hash,
    token_matches,
)
from gateway.records import SystemRecord
from gateway.runtime import Runtime
from gateway.services.directory import is_system_id


def get_runtime(request: Request) -> Runtime:
    """The process's runtime; 503 while it is still starting (migrating its database)."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        startup = getattr(request.app.state, "startup", None)
        phase = startup.phase if startup is not None else "starting"
        raise ServiceUnavailable(f"the node is not ready ({phase}); try again shortly")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def bearer_system(request: Request, runtime: RuntimeDep) -> SystemRecord:
    """`Authorization: Bearer <systemId>:<secret>`, the same credential `/vxp` signs with."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    system_id, _, secret = token.strip().rpartition(":")
    if scheme.lower() != "bearer" or not system_id or not secret:
        raise AuthenticationFailed("send 'Authorization: Bearer <systemId>:<secret>'")
    credentials = (
        await runtime.store.get_credentials(system_id) if is_system_id(system_id) else None
    )
    # The previous secret too while a rotation's grace lasts; every candidate is compared.
    candidates = credentials.secrets_at(datetime.now(UTC)) if credentials else ()
    matched = [hmac.compare_digest(c.encode(), secret.encode()) for c in candidates]
    if credentials is None or not any(matched):
        raise AuthenticationFailed("unknown system id or wrong secret")
    if not credentials.system.enabled:
        raise SystemDisabled(f"system {system_id} is disabled on this node")
    return credentials.system


CurrentSystem = Annotated[SystemRecord, Depends(bearer_system)]


_NO_SUCH_TOKEN = token_hash("no operator has this token")
"""Compared against when the name is unknown, so both refusals take the same time."""


async def bearer_operator(request: Request, runtime: RuntimeDep) -> Operator:
    """`Authorization: Bearer <operator>:<token>` (the token `lienthong operators add`
    printed)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    name, _, token = credential.strip().partition(":")
    if scheme.lower() != "bearer" or not name or not token:
        raise AuthenticationFailed("send 'Authorization: Bearer <operator>:<token>'")
    # Not an operator name: unknown, without asking the database.
    found = await runtime.operators.get_operator(name) if OPERATOR_NAME.fullmatch(name) else None
    matches = token_matches(token, found.token_sha256 if found else _NO_SUCH_TOKEN)
    if found is None or not found.record.enabled or not matches:
        raise AuthenticationFailed("unknown operator or wrong token")
    return Operator(found.record.name, found.record.role)


CurrentOperator = Annotated[Operator, Depends(bearer_operator)]


def _allowed(permission: Permission) -> Any:
    def check(operator: CurrentOperator) -> Operator:
        operator.require(permission)
        return operator

    return Depends(check)


Reader = Annotated[Operator, _allowed(Permission.READ)]
Replayer = Annotated[Operator, _allowed(Permission.REPLAY)]
Canceller = Annotated[Operator, _allowed(Permission.CANCEL)]
SystemsAdmin = Annotated[Operator, _allowed(Permission.MANAGE)]
"""Systems and their credentials (add, disable, enable, rotate, remove): `admin` only (SPEC
§4.3: `operator` replays, cancels and keeps the directory)."""
