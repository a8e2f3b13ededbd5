"""`/metrics` in the Prometheus text format: what operators alert on (SPEC §4.3).

Two kinds of series: what this process counted (requests, packages accepted and refused,
broker publishes and consumptions, pushes, forwards, peer polls, latency histograms —
`gateway.telemetry`, through prometheus-client; summed over every worker of `serve
--workers N`), and the node's state read from the database at scrape time with grouped SQL
(deliveries by state and route, the outbox backlog, stuck deliveries, the evidence chain),
which every process reports alike.

Open by default (as Prometheus expects); `LIENTHONG_METRICS_TOKEN` makes it require
`Authorization: Bearer <token>`, and `LIENTHONG_METRICS_BIND` moves it to a listener of its
own (`gateway.api.listeners`). The figures reveal traffic volumes per state: protect them
where the API listener is reachable from outside.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from gateway.api.deps import RuntimeDep
from gateway.errors import AuthenticationFailed

router = APIRouter(tags=["health"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

HELP = {
    "lienthong_messages": "Accepted packages by kind and signature outcome.",
    "lienthong_deliveries": "Deliveries by transport state and route (inbox, push, peer).",
    "lienthong_deliveries_oldest_age_seconds": "Age of the oldest delivery in each state.",
    "lienthong_stuck_deliveries": "Deliveries longer in their state than its threshold "
    "(LIENTHONG_STUCK_*_SECONDS).",
    "lienthong_outbox_unpublished": "Outbox rows not yet confirmed by the broker.",
    "lienthong_outbox_oldest_unpublished_age_seconds": "Age of the oldest outbox row not yet "
    "confirmed by the broker (0 when none): the relay's lag.",
    "lienthong_evidence_entries": "Entries in the hash-chained evidence log (chained ones).",
    "lienthong_evidence_unchained": "Evidence entries written but not yet chained by the "
    "sequencer.",
    "lienthong_evidence_unchained_oldest_age_seconds": "Age of the oldest evidence entry not "
    "yet chained (0 when none): the chain's lag.",
}


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


class _Snapshot:
    """The database's gauges of one scrape, as a collector."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def database_families(
    figures: dict[str, list[tuple[dict[str, str], float]]],
) -> list[Metric]:
    families: list[Metric] = []
    for name, series in figures.items():
        labels = sorted({key for labelled, _ in series for key in labelled})
        family = GaugeMetricFamily(name, HELP[name], labels=labels)
        for labelled, value in series:
            family.add_metric([labelled[key] for key in labels], value)
        families.append(family)
    return families


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    check_metrics_token(request, runtime.settings.metrics_token)
    figures = await runtime.store.metrics(runtime.settings.stuck_thresholds)
    snapshot = CollectorRegistry()
    snapshot.register(_Snapshot(database_families(figures)))
    body = runtime.telemetry.exposition() + generate_latest(snapshot)
    return Response(body, media_type=CONTENT_TYPE)
