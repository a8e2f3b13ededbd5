"""What a gateway process counts as it works: the series of `/metrics` it owns (SPEC §4.3).

Every process holds one `Telemetry` (the runtime builds it); the services count into it on
their own paths — a counter is a lock and an addition, no I/O, no SQL. The figures that are
the node's truth rather than one process's (deliveries by state and route, the outbox
backlog, the stuck ones) are read from the database at scrape time instead
(`adapters/db/store/metrics.py`).

`lienthong serve --workers N` answers a scrape from whichever worker the connection lands on,
so the workers count in prometheus-client's multiprocess mode: each process writes its
values into files of a directory named by `PROMETHEUS_MULTIPROC_DIR` (set by `serve` for its
workers, `multiprocess_dir`), and a scrape adds them up across the live and the dead
workers, so a counter never goes back when a worker is replaced. A single process keeps its
values in memory.

The names are a contract (README, Observability): change one and dashboards break.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
"""`_created` series would double the output for nothing."""

REQUEST_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SUBMIT_TO_AVAILABLE_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
    3600.0,
)
"""From 10 ms (a quiet node) to an hour (a broker outage, a push endpoint retried)."""
AVAILABLE_TO_DOWNLOADED_BUCKETS = (
    1.0,
    5.0,
    15.0,
    60.0,
    300.0,
    900.0,
    1800.0,
    3600.0,
    7200.0,
    21600.0,
    43200.0,
    86400.0,
    259200.0,
    604800.0,
)
"""Pollers come every few minutes; a unit that has not collected for days is the daily alert."""


def multiprocess_dir() -> str | None:
    """The directory of the workers' values when this process is one of several."""
    return os.environ.get(MULTIPROC_ENV) or None


class Telemetry:
    """The counters and histograms of one gateway process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "lienthong_http_requests",
            "HTTP requests answered, by route template, method, status and outcome "
            "(ok, refused, unavailable, error; a /vxp FAIL answer is refused).",
            ["route", "method", "status", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "lienthong_http_request_duration_seconds",
            "Time from a request's head to the end of its answer, by route template.",
            ["route"],
            buckets=REQUEST_SECONDS_BUCKETS,
            registry=r,
        )
        self.accepted = Counter(
            "lienthong_packages_accepted",
            "Packages accepted (new ones; a duplicate answered with its original is not), "
            "by kind and source (system: an agency system; peer: polled from a peer node).",
            ["kind", "source"],
            registry=r,
        )
        self.duplicates = Counter(
            "lienthong_packages_duplicate",
            "Submissions answered with the package accepted before (Idempotency-Key, the "
            "same bytes again): nothing new was created.",
            ["kind"],
            registry=r,
        )
        self.refused = Counter(
            "lienthong_packages_refused",
            "Packages refused, by the refusal's code (the problem code of /api/v1: "
            "PACKAGE_INVALID, PERMISSION_DENIED, PACKAGE_TOO_LARGE …) and reason (the code "
            "of its first problem, e.g. SENDER_NOT_SERVED, or the code again).",
            ["code", "reason"],
            registry=r,
        )
        self.published = Counter(
            "lienthong_broker_published",
            "Outbox rows published to the broker and confirmed, by route (inbox, push, peer).",
            ["route"],
            registry=r,
        )
        self.publish_failures = Counter(
            "lienthong_broker_publish_failures",
            "Outbox publishes the broker did not confirm (the row stays in the outbox).",
            ["route"],
            registry=r,
        )
        self.delayed = Counter(
            "lienthong_broker_delayed",
            "Messages put in a delay queue to be tried again later, by route.",
            ["route"],
            registry=r,
        )
        self.consumed = Counter(
            "lienthong_broker_consumed",
            "Broker messages consumed, by route and outcome: handled (the step was done), "
            "skipped (nothing left to do: a redelivery, a finished delivery), deferred "
            "(put back in a delay queue), malformed, error (left to the broker's redelivery).",
            ["route", "outcome"],
            registry=r,
        )
        self.pushes = Counter(
            "lienthong_push_attempts",
            "POSTs to push endpoints, by outcome (ok, failed).",
            ["outcome"],
            registry=r,
        )
        self.forwards = Counter(
            "lienthong_peer_forwards",
            "Forwards of one package to a peer node (one sendEdoc), by peer and outcome "
            "(forwarded, duplicate, retrying, dead).",
            ["peer", "outcome"],
            registry=r,
        )
        self.peer_polls = Counter(
            "lienthong_peer_polls",
            "Poll passes over a peer's lists by this process, by peer and outcome "
            "(ok, unreachable, unconfigured: no secret, error).",
            ["peer", "outcome"],
            registry=r,
        )
        self.peer_items = Counter(
            "lienthong_peer_items",
            "Items taken from peers' lists, by peer, kind and outcome (accepted, "
            "duplicate, refused, again: handed out again and acknowledged again).",
            ["peer", "kind", "outcome"],
            registry=r,
        )
        self.submit_to_available = Histogram(
            "lienthong_submit_to_available_seconds",
            "From a package's acceptance to its delivery being available in the inbox "
            "(route inbox), pushed (push) or accepted by the peer (peer), the first time.",
            ["route"],
            buckets=SUBMIT_TO_AVAILABLE_BUCKETS,
            registry=r,
        )
        self.available_to_downloaded = Histogram(
            "lienthong_available_to_downloaded_seconds",
            "From a delivery becoming available in the inbox to its first download.",
            buckets=AVAILABLE_TO_DOWNLOADED_BUCKETS,
            registry=r,
        )

    def since(self, histogram: Histogram, start: datetime, **labels: str) -> None:
        """Observe the seconds from `start` to now (never negative: clocks of two
        processes)."""
        seconds = max(0.0, (datetime.now(UTC) - start).total_seconds())
        (histogram.labels(**labels) if labels else histogram).observe(seconds)

    def exposition(self) -> bytes:
        """This process's series in the text format, or every worker's in multiprocess
        mode."""
        directory = multiprocess_dir()
        if directory is None:
            return prometheus_client.generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        return prometheus_client.generate_latest(registry)


def prepare_multiprocess_dir(directory: str) -> None:
    """Empty the values of an earlier run (prometheus-client's rule: wipe between runs)."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))
