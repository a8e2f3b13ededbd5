"""A push endpoint for tests: a real HTTP server on 127.0.0.1 that fails on demand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.processes import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    failures_left: int = 0
    """Answer 503 this many times before accepting."""
    always_fail: bool = False
    delay: float = 0.0
    attempts: int = 0
    accepted: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/inbox"

    async def handle(self, request: Request) -> PlainTextResponse:
        self.attempts += 1
        body = await request.body()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.always_fail or self.failures_left > 0:
            self.failures_left = max(0, self.failures_left - 1)
            return PlainTextResponse("storage is down", status_code=503)
        self.accepted.append(Received(dict(request.headers), body))
        return PlainTextResponse("stored")


@contextlib.asynccontextmanager
async def running(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = Starlette(routes=[Route("/inbox", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
