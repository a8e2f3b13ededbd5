"""Requests counted by route and outcome, and timed (`lienthong_http_requests_total`,
`lienthong_http_request_duration_seconds`).

The route is the template FastAPI matched (`/api/v1/packages/{message_id}`), never the raw
path, so a fuzzer cannot mint series; anything unmatched is `unmatched`. The outcome is `ok`,
`refused` (a 4xx, or a `/vxp` answer with status FAIL — those are HTTP 200, as the national
axis answers), `unavailable` (503: database, pool, startup) or `error` (a 500). The error
handlers mark a refusal on the request's scope (`mark_refusal`), which is how a FAIL answered
with 200 is told from a success.

The correlation id a request sets (`gateway.logs.set_correlation`: a submit, once its
package is accepted) lasts until its answer is sent, uvicorn's access line included.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.logs import correlated
from gateway.telemetry import Telemetry

REFUSAL = "lienthong.refusal"
"""Scope key: the code of the refusal this request was answered with."""
UNAVAILABLE = "SERVICE_UNAVAILABLE"


def mark_refusal(scope: Scope, code: str) -> None:
    scope[REFUSAL] = code


def outcome_of(status: int, refusal: str | None) -> str:
    if status == 503 or refusal == UNAVAILABLE:
        return "unavailable"
    if status >= 500:
        return "error"
    if status >= 400 or refusal is not None:
        return "refused"
    return "ok"


class RequestMetrics:
    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with correlated(None):  # what the request sets is its own (and its access line's)
                await self.app(scope, receive, sending)
        except Exception:
            status = 500
            raise
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            outcome = outcome_of(status, scope.get(REFUSAL))
            telemetry = self.telemetry
            telemetry.requests.labels(route, scope["method"], str(status), outcome).inc()
            telemetry.request_seconds.labels(route).observe(time.perf_counter() - started)
