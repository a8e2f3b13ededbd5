"""Connected systems in the operator API (`/api/v1/operator/systems`, SPEC §4.3): list them,
add one, disable and enable it, rotate its secret, remove it — what `lienthong systems …`
does, through the same use cases (`gateway.services.systems`).

Reading is for every role; changes are for `admin` (`SystemsAdmin`). Each change is recorded
in the operator audit trail (`GET /api/v1/operator/actions`: `system.add`, `system.disable`,
`system.enable`, `system.rotate-secret`, `system.remove`). A secret appears in an answer once,
when it is made (add, rotate-secret), and never in the audit trail.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import Reader, RuntimeDep, SystemsAdmin
from gateway.api.json_body import json_body_doc, read_json
from gateway.records import SystemRecord
from gateway.services import systems as lifecycle
from gateway.services.directory import add_system

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])

REASON = Field(default=None, max_length=lifecycle.MAX_REASON, description="Recorded with it")


class SystemOut(BaseModel):
    system_id: str
    serves: list[str]
    delivery_mode: str = Field(description="poll or push")
    enabled: bool
    previous_secret_valid_until: datetime | None = Field(
        description="After a rotation with a grace period: until when the old secret works"
    )


class SystemAddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    system_id: str = Field(min_length=1, max_length=64)
    serves: list[str] = Field(min_length=1, max_length=100, description="Codes or patterns")
    push_url: str | None = Field(default=None, max_length=1000)
    reason: str | None = REASON


class SystemActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = REASON


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: float = Field(
        default=0,
        ge=0,
        le=lifecycle.MAX_GRACE_SECONDS,
        description="How long the old secret keeps working (0: it stops at once)",
    )
    reason: str | None = REASON


class RemoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    force: bool = Field(
        default=False,
        description="Also when deliveries to it are unfinished: they are cancelled",
    )
    reason: str | None = REASON


class SystemSecretOut(BaseModel):
    system_id: str
    secret: str = Field(description="Shown once; stored encrypted")
    previous_secret_valid_until: datetime | None = None


class SystemChangedOut(BaseModel):
    system: SystemOut
    changed: bool = Field(description="False when it already was so (recorded all the same)")


class SystemRemovedOut(BaseModel):
    system_id: str
    cancelled: list[str] = Field(description="Unfinished deliveries cancelled (with force)")


def system_out(system: SystemRecord) -> SystemOut:
    return SystemOut(
        system_id=system.system_id,
        serves=[p.text for p in system.patterns],
        delivery_mode=system.delivery_mode,
        enabled=system.enabled,
        previous_secret_valid_until=system.previous_secret_until,
    )


async def _current(runtime: RuntimeDep, system_id: str) -> SystemOut:
    system = await runtime.store.get_system(system_id)
    assert system is not None  # just changed in this process: the snapshot has it
    return system_out(system)


@router.get("/systems", response_model=list[SystemOut])
async def list_systems(runtime: RuntimeDep, _operator: Reader) -> list[SystemOut]:
    """Every connected system, what it serves, whether it is enabled (never a secret)."""
    return [system_out(s) for s in await runtime.store.list_systems()]


@router.post(
    "/systems",
    status_code=201,
    response_model=SystemSecretOut,
    openapi_extra=json_body_doc(SystemAddIn),
)
async def add(request: Request, runtime: RuntimeDep, operator: SystemsAdmin) -> JSONResponse:
    """Register a system; the answer holds its generated secret, shown this once."""
    body = await read_json(request, SystemAddIn, runtime.settings.max_json_body_bytes)
    secret = await add_system(
        runtime.store, body.system_id, body.serves, None, body.push_url, operator, body.reason
    )
    answer = SystemSecretOut(system_id=body.system_id, secret=secret)
    return JSONResponse(answer.model_dump(mode="json"), status_code=201)


@router.post(
    "/systems/{system_id}/disable",
    response_model=SystemChangedOut,
    openapi_extra=json_body_doc(SystemActionIn),
)
async def disable(
    system_id: str, request: Request, runtime: RuntimeDep, operator: SystemsAdmin
) -> SystemChangedOut:
    """Refuse the system's calls (`SYSTEM_DISABLED`, 403; `/vxp` 29) and lock its agencies
    as recipients (`RECIPIENT_LOCKED`; 23), on every process from its next request."""
    body = await read_json(request, SystemActionIn, runtime.settings.max_json_body_bytes)
    changed = await lifecycle.disable_system(runtime.store, system_id, operator, body.reason)
    return SystemChangedOut(system=await _current(runtime, system_id), changed=changed)


@router.post(
    "/systems/{system_id}/enable",
    response_model=SystemChangedOut,
    openapi_extra=json_body_doc(SystemActionIn),
)
async def enable(
    system_id: str, request: Request, runtime: RuntimeDep, operator: SystemsAdmin
) -> SystemChangedOut:
    """Accept the system's calls and route to its agencies again."""
    body = await read_json(request, SystemActionIn, runtime.settings.max_json_body_bytes)
    changed = await lifecycle.enable_system(runtime.store, system_id, operator, body.reason)
    return SystemChangedOut(system=await _current(runtime, system_id), changed=changed)


@router.post(
    "/systems/{system_id}/rotate-secret",
    response_model=SystemSecretOut,
    openapi_extra=json_body_doc(RotateIn),
)
async def rotate_secret(
    system_id: str, request: Request, runtime: RuntimeDep, operator: SystemsAdmin
) -> SystemSecretOut:
    """A new generated secret, shown this once; the old one keeps working for
    `grace_seconds` (default 0: it stops at once)."""
    body = await read_json(request, RotateIn, runtime.settings.max_json_body_bytes)
    rotated = await lifecycle.rotate_secret(
        runtime.store, system_id, operator, body.grace_seconds, reason=body.reason
    )
    return SystemSecretOut(
        system_id=system_id,
        secret=rotated.secret,
        previous_secret_valid_until=rotated.previous_valid_until,
    )


@router.post(
    "/systems/{system_id}/remove",
    response_model=SystemRemovedOut,
    openapi_extra=json_body_doc(RemoveIn),
)
async def remove(
    system_id: str, request: Request, runtime: RuntimeDep, operator: SystemsAdmin
) -> SystemRemovedOut:
    """Remove the system (its messages and deliveries stay). Refused (400) while deliveries
    to it are unfinished, unless `force`, which cancels them."""
    body = await read_json(request, RemoveIn, runtime.settings.max_json_body_bytes)
    removed = await lifecycle.remove_system(
        runtime.store, system_id, operator, body.force, body.reason
    )
    return SystemRemovedOut(system_id=removed.system_id, cancelled=list(removed.cancelled))
