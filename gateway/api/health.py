"""Liveness and readiness for orchestrators and load balancers.

`/healthz`: the process is alive and its event loop answers — also while it migrates its
database (an orchestrator must not kill it then). `/readyz`: it can do its work now — started
(not migrating), the database answers at the schema this code needs, the broker is
connected, and the payload store takes a file; 503 with what is wrong otherwise. A node
whose broker is away still accepts packages into its outbox; a load balancer that should
keep sending to it then can probe `/readyz?broker=optional` (the broker is still reported).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from gateway.api.startup import Phase, Startup
from gateway.errors import ServiceUnavailable
from gateway.runtime import Runtime, schema_state

router = APIRouter(tags=["health"])

CHECK_SECONDS = 5.0
"""Longest wait for one check: a hung shared mount or database is `unreachable`."""


def _startup(request: Request) -> Startup | None:
    return getattr(request.app.state, "startup", None)


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, str]:
    """Alive: answers as soon as the process listens (during a migration too)."""
    startup = _startup(request)
    return {"status": "ok", "phase": startup.phase.value if startup else Phase.READY.value}


@router.get("/readyz")
async def readyz(
    request: Request,
    broker: Annotated[str, Query(pattern="^(required|optional)$")] = "required",
) -> JSONResponse:
    """Ready when started, the database answers at this code's schema, the broker is
    connected (unless `broker=optional`) and the payload store is writable."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    startup = _startup(request)
    if runtime is None:
        phase = startup.phase.value if startup else Phase.STARTING.value
        return JSONResponse({"status": phase}, status_code=503)
    database, schema = await _database(runtime)
    broker_state = "ok" if await runtime.broker.healthy() else "unreachable"
    payloads = await _payload_store(runtime)
    ready = (
        database == "ok"
        and schema != "behind"
        and payloads == "ok"
        and (broker_state == "ok" or broker == "optional")
    )
    body = {
        "status": "ok" if ready else "unavailable",
        "database": database,
        "schema": schema,
        "broker": broker_state,
        "payload_store": payloads,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def _database(runtime: Runtime) -> tuple[str, str]:
    try:
        revision = await asyncio.wait_for(runtime.store.schema_revision(), CHECK_SECONDS)
    except (ServiceUnavailable, TimeoutError):
        return "unreachable", "unknown"
    return "ok", schema_state(revision)


async def _payload_store(runtime: Runtime) -> str:
    try:
        await asyncio.wait_for(asyncio.to_thread(runtime.payloads.check_writable), CHECK_SECONDS)
    except (OSError, TimeoutError):
        return "unwritable"
    return "ok"
