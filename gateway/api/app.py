"""The ASGI application: routers, error handlers, and the runtime's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api import agencies, health, inbox, metrics, openapi, packages, vxp, vxp_directory
from gateway.api import docs as offline_docs
from gateway.api import operator_systems as systems_api
from gateway.api import operators as operator_api
from gateway.api import reports as report_api
from gateway.api.errors import (
    handle_gateway_error,
    handle_http_error,
    handle_unexpected_error,
    handle_validation_error,
)
from gateway.api.limits import BodyGuard
from gateway.api.listeners import MetricsListener
from gateway.api.observe import RequestMetrics
from gateway.api.startup import Phase, Startup
from gateway.config import request_scope
from gateway.console.app import mount_console
from gateway.errors import GatewayError
from gateway.settings import Settings, load_settings, metrics_address
from gateway.telemetry import Telemetry


class ConfigScope:
    """One configuration check per request (`gateway.config.request_scope`): the systems,
    policies and directory facts a request reads all come from one snapshot."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with request_scope():
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, migrate: bool = False) -> FastAPI:
    """`migrate`: migrate the database in the background once serving (`lienthong serve`;
    `gateway.api.startup`), else start the runtime before the first request."""
    settings = settings or load_settings()
    telemetry = Telemetry()
    startup = Startup(settings, telemetry, migrate=migrate)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        background: asyncio.Task[None] | None = None
        if migrate:
            background = asyncio.create_task(_start(app, startup), name="startup")
        else:
            app.state.runtime = await startup.run()
        try:
            yield
        finally:
            if startup.phase is not Phase.FAILED:  # `serve` exits 1 after a failed start
                startup.phase = Phase.STOPPING
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            if startup.runtime is not None:
                await startup.runtime.stop()

    app = FastAPI(
        title="lienthong-gateway",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served offline by gateway.api.docs
        redoc_url=None,
        description="Interconnection-axis node for the exchange of official "
        "documents (liên thông văn bản điện tử).",
    )
    app.state.startup = startup
    app.add_exception_handler(GatewayError, handle_gateway_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected_error)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(vxp.router)
    app.include_router(vxp_directory.router)
    app.include_router(packages.router)
    app.include_router(inbox.router)
    app.include_router(agencies.router)
    app.include_router(operator_api.router)
    mount_console(app)
    app.include_router(report_api.router)
    app.include_router(systems_api.router)
    app.add_middleware(BodyGuard, timeout=settings.body_timeout_seconds)
    app.add_middleware(ConfigScope)
    if settings.metrics_bind:
        app.add_middleware(MetricsListener, metrics_port=metrics_address(settings.metrics_bind)[1])
    app.add_middleware(RequestMetrics, telemetry=telemetry)  # outermost: sees every answer
    openapi.install(app)
    offline_docs.install(app)
    return app


async def _start(app: FastAPI, startup: Startup) -> None:
    await startup.run_in_background()
    if startup.runtime is not None:
        app.state.runtime = startup.runtime
