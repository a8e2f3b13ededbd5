"""Which listener a request arrived on, when `/metrics` has one of its own.

With `LIENTHONG_METRICS_BIND` set, `lienthong serve` opens a second socket for Prometheus
(typically on a management address only); the same application serves both, so this
middleware tells them apart by the local port of the connection: the metrics listener serves
`/metrics` and nothing else, the API listener everything but `/metrics`.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

METRICS_PATH = "/metrics"


class MetricsListener:
    def __init__(self, app: ASGIApp, metrics_port: int) -> None:
        self.app = app
        self.metrics_port = metrics_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server") or ("", None)
            on_metrics = server[1] == self.metrics_port
            if on_metrics != (scope["path"] == METRICS_PATH):
                await _not_found(
                    send,
                    "served on the metrics listener only"
                    if not on_metrics
                    else "the metrics listener serves /metrics only",
                )
                return
        await self.app(scope, receive, send)


async def _not_found(send: Send, detail: str) -> None:
    body = json.dumps(
        {
            "type": "urn:lienthong:problem:NOT_FOUND",
            "title": "Not found",
            "status": 404,
            "detail": detail,
            "code": "NOT_FOUND",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
