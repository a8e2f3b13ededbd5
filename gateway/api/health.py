"""Liveness and readiness for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.api.deps import RuntimeDep
from gateway.errors import ServiceUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answers once the process has started (lifespan done): it is alive."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Ready when the database answers; the broker is reported but not required, because
    packages are still accepted into the outbox while it is away."""
    database = "ok"
    try:
        await runtime.store.ping()
    except ServiceUnavailable:
        database = "unreachable"
    broker = "ok" if await runtime.broker.healthy() else "unreachable"
    body = {
        "status": "ok" if database == "ok" else "unavailable",
        "database": database,
        "broker": broker,
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)
