"""`/metrics` in the Prometheus text format: what operators alert on (SPEC §4.3).

Open by default (as Prometheus expects); `LIENTHONG_METRICS_TOKEN` makes it require
`Authorization: Bearer <token>`, and `LIENTHONG_METRICS_BIND` moves it to a listener of its
own (`gateway.api.listeners`). The figures reveal traffic volumes per state: protect them
where the API listener is reachable from outside.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from gateway.api.deps import RuntimeDep
from gateway.errors import AuthenticationFailed

router = APIRouter(tags=["health"])

HELP = {
    "lienthong_messages": "Accepted packages by kind and signature outcome.",
    "lienthong_deliveries": "Deliveries by transport state.",
    "lienthong_deliveries_oldest_age_seconds": "Age of the oldest delivery in each state.",
    "lienthong_stuck_deliveries": "Deliveries longer in their state than its threshold "
    "(LIENTHONG_STUCK_*_SECONDS).",
    "lienthong_outbox_unpublished": "Outbox rows not yet confirmed by the broker.",
    "lienthong_evidence_entries": "Entries in the hash-chained evidence log (chained ones).",
    "lienthong_evidence_unchained": "Evidence entries written but not yet chained by the "
    "sequencer.",
    "lienthong_evidence_unchained_oldest_age_seconds": "Age of the oldest evidence entry not "
    "yet chained (0 when none): the chain's lag.",
}


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return "{" + ",".join(escaped) + "}"


def check_metrics_token(request: Request, token: str) -> None:
    """Constant-time bearer check; nothing to check when no token is configured."""
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise AuthenticationFailed(
            "/metrics needs 'Authorization: Bearer <token>' (LIENTHONG_METRICS_TOKEN)"
        )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request, runtime: RuntimeDep) -> PlainTextResponse:
    check_metrics_token(request, runtime.settings.metrics_token)
    lines: list[str] = []
    for name, series in (await runtime.store.metrics(runtime.settings.stuck_thresholds)).items():
        lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
        lines += [f"{name}{_labels(labels)} {value:g}" for labels, value in series]
    return PlainTextResponse(
        "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
    )
