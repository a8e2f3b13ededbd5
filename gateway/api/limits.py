"""Request bodies the node waits for: a stall timeout, and closing what is left unread.

uvicorn has no body read timeout: 50 slow bodies were all kept open, each holding its
handler (and an upload slot) for ever. Here every `receive()` the application makes while the
body is incomplete and no answer has started is bounded by `timeout`; a stall raises
`RequestTimeout`, which the route's handlers answer (408 / `/vxp` FAIL) like any refusal.
Once the answer has started, `receive()` only waits for the client to go away (Starlette's
streaming answers do that for a whole download) and is never timed.

An answer that starts before its request body was received (401 for a stranger, 413 from a
Content-Length, a refusal, or a route that never reads its `{}`) closes the connection when
what is left is large, of unknown length (chunked), stalled, or held back by
`Expect: 100-continue`: otherwise the server would read and discard it, or parse the next
request out of it. A small rest (a few KiB, e.g. `{}`) is drained so the connection stays
reusable; `gateway.api.protocol` bounds how long that may take.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import BodyTimeout

DRAIN_LIMIT = 256 * 1024
"""Unread body bytes the server may still read and discard to keep a connection alive (the
figure Go's net/http uses)."""


@dataclass
class _Body:
    declared: int | None
    chunked: bool
    expects_continue: bool
    received: int = 0
    complete: bool = False
    answered: bool = False
    timed_out: bool = False

    def rest_is_unwelcome(self) -> bool:
        if self.timed_out or self.chunked or self.declared is None:
            return True
        if self.expects_continue and self.received == 0:
            return True
        return self.declared - self.received > DRAIN_LIMIT


def _body_of(scope: Scope) -> _Body | None:
    """What the head says about the body; None when there is none."""
    declared: int | None = None
    chunked = expects = False
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.strip().isdigit():
            declared = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"expect" and value.strip().lower() == b"100-continue":
            expects = True
    if not chunked and not declared:
        return None
    return _Body(declared=None if chunked else declared, chunked=chunked, expects_continue=expects)


class BodyGuard:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = _body_of(scope) if scope["type"] == "http" else None
        if body is None:
            await self.app(scope, receive, send)
            return
        timeout = self.timeout

        async def guarded_receive() -> Message:
            if body.complete or body.answered:
                return await receive()
            message = await _receive_within(receive, timeout, body)
            if message["type"] == "http.request":
                body.received += len(message.get("body", b""))
                body.complete = not message.get("more_body", False)
            else:
                body.complete = True  # the client went away
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not body.answered:
                body.answered = True
                if not body.complete and body.rest_is_unwelcome():
                    message = {
                        **message,
                        "headers": [*message.get("headers", ()), (b"connection", b"close")],
                    }
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)


async def _receive_within(receive: Receive, timeout: float, body: _Body) -> Message:
    """`receive()`, refused after `timeout` s unless the answer started meanwhile (a receive
    in flight then becomes the untimed wait for the client to leave)."""
    pending = asyncio.ensure_future(receive())
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=timeout)
            if done:
                return pending.result()
            if not body.answered:
                body.timed_out = True
                raise BodyTimeout(
                    f"no byte of the request body arrived for {timeout:g} s "
                    "(LIENTHONG_BODY_TIMEOUT_SECONDS); the upload was dropped"
                )
    finally:
        pending.cancel()
