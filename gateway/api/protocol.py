"""uvicorn's httptools protocol with the limits it lacks: the size, field count and arrival
time of a request head, and the time a body may take to drain after its answer.

Why at this level: uvicorn hands a request to the application only once its head is parsed,
and httptools buffers a header field however long it grows (eight 32 MiB
`XroadVnpt-sign-header`s took a node from 127 to 752 MiB), while `timeout_keep_alive` only
covers the idle time between requests — a client trickling a head byte by byte, or sending
nothing at all after connecting, was kept for ever. Nothing an ASGI middleware sees can stop
either. The body's own stall timeout lives in `gateway.api.limits`, where it is known whether
the application is waiting for the body.

How: bytes go to the parser in slices no larger than what is left of a `max_head_bytes`
allowance; a slice that completes no head, delivers no body byte and ends no message is
framing (head, chunk sizes, trailers), and `max_head_bytes` of framing in a row is refused
with 431: the parser never holds more than that (plus the slice that follows a head or a body
byte). A refusal is written in the shape of the path's API (problem+json, or the
`/vxp` envelope of its operation), then the connection is half-closed and drained for a moment
so the client can read the answer instead of a reset.
"""

from __future__ import annotations

import asyncio
import http
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.api.errors import problem_response, vxp_response
from gateway.api.vxp_answers import operation_of
from gateway.errors import GatewayError, HeadTimeout, HeadTooLong, TooManyHeaders


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_head_bytes: int = 65_536
    max_header_count: int = 100
    head_timeout: float = 10.0
    drain_timeout: float = 30.0
    """After an answer sent before its request body was received, the rest must arrive
    within this long (it is read and discarded), or the connection is closed."""
    linger_seconds: float = 2.0
    linger_bytes: int = 1 << 20
    """After a refusal: how long and how much is still read (and dropped) before closing, so
    the client's pending bytes do not turn the answer into a connection reset."""


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the refusal is in `_refusal`."""


def refusal_bytes(error: GatewayError, path: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, shaped like the API's own."""
    response = (
        vxp_response(error, operation_of(path))
        if path.startswith("/vxp")
        else problem_response(error)
    )
    status = error.http_status
    phrase = http.HTTPStatus(status).phrase.encode()
    head = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    head += [name + b": " + value + b"\r\n" for name, value in response.raw_headers]
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + bytes(response.body)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """One connection. Subclassed per server by `protocol_class` to carry its limits."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        """Between requests, or inside a head; False from head complete to message end."""
        self._head_started = False
        self._framing = 0
        self._progressed = False
        self._header_count = 0
        self._refusal: GatewayError | None = None
        self._refused = False
        self._discarded = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._discarded += len(data)
            if self._discarded > self.limits.linger_bytes:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_started = True
            self._arm_head_timer()
        view = memoryview(data)
        position = 0
        while position < len(view):
            # Never more than what is left of the framing allowance: a head of the limit plus
            # one byte is refused, however the bytes were cut into reads.
            size = max(self.limits.max_head_bytes - self._framing, 1)
            piece = view[position : position + size]
            position += len(piece)
            if not self._feed(piece):
                return

    def _feed(self, piece: memoryview) -> bool:
        """Parse one slice; False once the connection is refused, upgraded or broken."""
        self._progressed = False
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(self._refusal)
            else:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            return False
        self._framing = 0 if self._progressed else self._framing + len(piece)
        if self._framing >= self.limits.max_head_bytes:
            self._refuse(
                HeadTooLong(
                    f"the request head (request line and header fields, or chunk framing and "
                    f"trailers) exceeds {self.limits.max_head_bytes} bytes "
                    "(LIENTHONG_MAX_HEADER_BYTES)"
                )
            )
            return False
        return not self.transport.is_closing()

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._header_count = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            self._refusal = TooManyHeaders(
                f"the request has more than {self.limits.max_header_count} header fields "
                "(LIENTHONG_MAX_HEADER_COUNT)"
            )
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_started = False
        self._progressed = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._progressed = True
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._progressed = True
        self._awaiting_head = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        super().on_message_complete()
        # The body ended after its answer (drained): uvicorn armed the keep-alive timer at the
        # answer and every drained byte cancelled it, so an idle connection needs it again.
        cycle = self.cycle
        if (
            cycle is not None
            and cycle.response_complete
            and not self.pipeline
            and self.timeout_keep_alive_task is None
            and not self.transport.is_closing()
        ):
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._awaiting_head and not self.transport.is_closing():
            self._drain_timer = self.loop.call_later(self.limits.drain_timeout, self._drain_expired)

    # -- timers and refusals ---------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self._awaiting_head or self._refused or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a pipelined head waits for the answer before it
            return
        if not self._head_started:
            self.transport.close()  # connected and sent nothing (or idle): nothing to answer
            return
        self._refuse(
            HeadTimeout(
                f"the request head did not arrive within {self.limits.head_timeout:g} s "
                "(LIENTHONG_HEADER_TIMEOUT_SECONDS)"
            )
        )

    def _drain_expired(self) -> None:
        self._drain_timer = None
        if not self._awaiting_head:
            self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._drain_timer = None

    def _refuse(self, error: GatewayError) -> None:
        """Answer `error` and close. A request the application already handles (framing
        overflow in its body) is told the client is gone instead."""
        self._refused = True
        self._cancel_timers()
        self.logger.warning("refused connection from %s: %s", self.client, error.detail)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            answered = cycle.response_started
            cycle.disconnected = True
            cycle.message_event.set()
            if answered:
                self.transport.close()
                return
        path = bytes(getattr(self, "url", b"") or b"").split(b"?", 1)[0].decode("latin-1")
        self.transport.write(refusal_bytes(error, path))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.loop.call_later(self.limits.linger_seconds, self.transport.close)


def protocol_class(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol uvicorn instantiates per connection, bound to these limits."""
    return type("LienthongHttpProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
