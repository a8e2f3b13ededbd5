"""Observability (issue #13 item 4), in-process on both backends: what `/metrics` counts after
known traffic, what `/readyz` checks, and log lines that carry a package's correlation id
from its acceptance through the relay to the consumer that delivers it (inbox, push, peer).

Real processes — a Prometheus server scraping `lienthong serve`, the JSON lines a process
writes, `/healthz` during a migration — are in `tests/test_observability_processes.py`.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.vxp_client import VxpClient
from gateway.logs import CorrelationFilter, JsonFormatter
from gateway.services.directory import add_system
from tests.support.federation import Federation
from tests.support.nodes import Node, NodeFactory
from tests.support.polling import poll_until, until
from tests.support.receiver import Receiver, running
from tests.support.samples import document

SENDER, RECEIVER, PUSHED, NOT_SERVED = (
    "000.00.01.H53",
    "000.00.21.H53",
    "000.00.31.H53",
    "000.00.99.H53",
)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(node: Node) -> Samples:
    answer = await node.http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class Lines:
    """The JSON log lines written meanwhile, as the node's handler writes them."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def about(self, message_id: str) -> list[dict[str, Any]]:
        return [line for line in self.all() if line.get("correlation_id") == message_id]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(CorrelationFilter())
    gateway = logging.getLogger("gateway")
    level = gateway.level
    gateway.setLevel(logging.INFO)
    gateway.addHandler(handler)
    try:
        yield Lines(stream)
    finally:
        gateway.removeHandler(handler)
        gateway.setLevel(level)


async def test_metrics_count_packages_refusals_deliveries_and_latencies(
    make_node: NodeFactory,
) -> None:
    node = await make_node()
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    sent = [await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER) for _ in range(3)]
    assert all(answer["status"] == "OK" for answer in sent), sent
    refused = await sender.send_edoc(document(NOT_SERVED, [RECEIVER]), NOT_SERVED)
    assert refused["status"] == "FAIL"
    rest = await node.http.post(
        "/api/v1/packages",
        content=b"<not-edxml/>",
        headers={**node.rest_headers(sender), "Content-Type": "application/xml"},
    )
    assert rest.status_code == 422
    items = await poll_until(receiver, 3)
    for item in items:
        assert (await receiver.get_edoc(item["docId"]))["status"] == "OK"

    samples = await scrape(node)
    assert value(samples, "lienthong_packages_accepted_total", kind="edoc", source="system") == 3
    assert (
        value(
            samples,
            "lienthong_packages_refused_total",
            code="PERMISSION_DENIED",
            reason="SENDER_NOT_SERVED",
        )
        == 1
    )
    refusals = {
        dict(labels)["code"]: n
        for (name, labels), n in samples.items()
        if name == "lienthong_packages_refused_total"
    }
    assert refusals == {"PERMISSION_DENIED": 1, "PACKAGE_INVALID": 1}, refusals
    assert value(samples, "lienthong_broker_published_total", route="inbox") == 3
    assert value(samples, "lienthong_broker_consumed_total", route="inbox", outcome="handled") == 3
    assert value(samples, "lienthong_submit_to_available_seconds_count", route="inbox") == 3
    assert value(samples, "lienthong_available_to_downloaded_seconds_count") == 3
    assert value(samples, "lienthong_available_to_downloaded_seconds_bucket", le="+Inf") == 3
    # the requests, by route template and outcome (a /vxp FAIL is HTTP 200, and refused)
    send = {"route": "/vxp/sendEdoc", "method": "POST", "status": "200"}
    assert value(samples, "lienthong_http_requests_total", **send, outcome="ok") == 3
    assert value(samples, "lienthong_http_requests_total", **send, outcome="refused") == 1
    rest_refused = {"route": "/api/v1/packages", "method": "POST", "status": "422"}
    assert value(samples, "lienthong_http_requests_total", **rest_refused, outcome="refused") == 1
    assert (
        value(samples, "lienthong_http_request_duration_seconds_count", route="/vxp/getEdoc") == 3
    )
    # the database's figures, grouped at scrape time
    assert value(samples, "lienthong_deliveries", state="downloaded", route="inbox") == 3
    assert value(samples, "lienthong_outbox_unpublished") == 0
    assert value(samples, "lienthong_outbox_oldest_unpublished_age_seconds") == 0
    assert value(samples, "lienthong_messages", kind="edoc", signature="absent") == 3
    # an unknown path is one series, whatever the path
    for path in ("/no/such/a", "/no/such/b"):
        assert (await node.http.get(path)).status_code == 404
    samples = await scrape(node)
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert value(samples, "lienthong_http_requests_total", **unmatched, outcome="refused") == 2


async def test_a_package_s_log_lines_carry_its_id_through_relay_inbox_and_push(
    make_node: NodeFactory, log_lines: Lines
) -> None:
    node = await make_node()
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    async with running(Receiver()) as endpoint:
        await add_system(node.runtime.store, "sys.push", [PUSHED], push_url=endpoint.url)
        answer = await sender.send_edoc(document(SENDER, [RECEIVER, PUSHED]), SENDER)
        message_id = answer["DocId"]
        [item] = await poll_until(receiver, 1)
        assert (await receiver.get_edoc(item["docId"]))["status"] == "OK"

        async def pushed() -> bool:
            return any(line["message"] == "pushed" for line in log_lines.about(message_id))

        await until(pushed)
    about = log_lines.about(message_id)
    events = {(line["logger"], line["message"]) for line in about}
    assert {
        ("gateway.services.submission", "package accepted"),
        ("gateway.services.relay", "published to the broker"),
        ("gateway.services.inbox", "available in the inbox"),
        ("gateway.services.inbox", "downloaded"),
        ("gateway.services.push", "pushed"),
    } <= events, events
    published = [line for line in about if line["message"] == "published to the broker"]
    assert {line["routing_key"].partition(".")[0] for line in published} == {"inbox", "push"}
    assert all(isinstance(line["pid"], int) and line["time"] for line in about)
    samples = await scrape(node)
    assert value(samples, "lienthong_push_attempts_total", outcome="ok") == 1
    assert value(samples, "lienthong_submit_to_available_seconds_count", route="push") == 1
    assert value(samples, "lienthong_deliveries", state="done", route="push") == 1


async def test_forwards_and_peer_polls_are_counted_and_logged(
    federation: Federation, log_lines: Lines
) -> None:
    province = await federation.node("p53", "000.00.00.H53")
    national = await federation.node("national", "000.00.00.G22")
    await federation.connect("p53", "national", "P53", serves=("#.H53",))
    sender = await add_system(province.runtime.store, "sys.p53", [SENDER])
    ministry_secret = await add_system(national.runtime.store, "sys.g01", ["000.00.00.G01"])
    province_sender = VxpClient(province.http, "sys.p53", sender)
    ministry = VxpClient(national.http, "sys.g01", ministry_secret)
    local = await province.add_system("sys.p53.local", RECEIVER)
    # up: forwarded to the national node
    up = await province_sender.send_edoc(document(SENDER, ["000.00.00.G01"]), SENDER)
    assert up["status"] == "OK", up
    assert len(await poll_until(ministry, 1)) == 1
    # down: the province takes it from the national node's list
    down = await ministry.send_edoc(document("000.00.00.G01", [RECEIVER]), "000.00.00.G01")
    assert down["status"] == "OK", down
    assert len(await poll_until(local, 1)) == 1

    samples = await scrape(province)
    assert (
        value(samples, "lienthong_peer_forwards_total", peer="national", outcome="forwarded") == 1
    )
    assert value(samples, "lienthong_submit_to_available_seconds_count", route="peer") == 1
    assert value(samples, "lienthong_broker_consumed_total", route="peer", outcome="handled") == 1
    items = {"peer": "national", "kind": "edoc"}
    assert value(samples, "lienthong_peer_items_total", **items, outcome="accepted") == 1
    assert value(samples, "lienthong_packages_accepted_total", kind="edoc", source="peer") == 1
    assert value(samples, "lienthong_peer_polls_total", peer="national", outcome="ok") >= 1
    assert value(samples, "lienthong_deliveries", state="forwarded", route="peer") == 1
    forwarded = {(line["logger"], line["message"]) for line in log_lines.about(up["DocId"])}
    assert ("gateway.services.forwarding", "forward forwarded") in forwarded, forwarded
    assert ("gateway.services.relay", "published to the broker") in forwarded, forwarded


async def test_readyz_needs_the_database_schema_broker_and_payload_store(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = await node.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ok",
        "database": "ok",
        "schema": "ok",
        "broker": "ok",
        "payload_store": "ok",
    }
    assert (await node.http.get("/healthz")).json() == {"status": "ok", "phase": "ready"}
    runtime = node.runtime

    async def broker_away() -> bool:
        return False

    with monkeypatch.context() as patch:
        patch.setattr(runtime.broker, "healthy", broker_away)
        away = await node.http.get("/readyz")
        assert away.status_code == 503 and away.json()["broker"] == "unreachable"
        assert away.json()["status"] == "unavailable"
        # a balancer that keeps sending while the broker is away (the outbox holds the work)
        optional = await node.http.get("/readyz", params={"broker": "optional"})
        assert optional.status_code == 200 and optional.json()["broker"] == "unreachable"

    for revision, state, status in (("0001", "behind", 503), ("9999_newer", "ahead", 200)):

        async def at(revision: str = revision) -> str:
            return revision

        with monkeypatch.context() as patch:
            patch.setattr(runtime.store, "schema_revision", at)
            answer = await node.http.get("/readyz")
            assert (answer.status_code, answer.json()["schema"]) == (status, state)

    payloads = runtime.settings.payload_dir
    moved = payloads.with_name("payloads.moved")
    payloads.rename(moved)
    payloads.write_text("not a directory")  # a mount gone, a disk turned read-only
    try:
        broken = await node.http.get("/readyz")
        assert broken.status_code == 503 and broken.json()["payload_store"] == "unwritable"
    finally:
        payloads.unlink()
        moved.rename(payloads)
    assert (await node.http.get("/readyz")).status_code == 200
    assert not list(payloads.glob(".probe-*"))


@pytest.mark.backends("embedded")
async def test_a_route_answers_503_until_the_runtime_has_started(node: Node) -> None:
    """What a request meets while `serve` still migrates (`gateway.api.startup`)."""
    runtime = node.app.state.runtime
    startup = node.app.state.startup
    del node.app.state.runtime
    phase = startup.phase
    startup.phase = type(phase)("migrating")
    try:
        assert (await node.http.get("/healthz")).json() == {"status": "ok", "phase": "migrating"}
        assert (await node.http.get("/readyz")).json() == {"status": "migrating"}
        rest = await node.http.get("/api/v1/inbox")
        assert rest.status_code == 503 and rest.json()["code"] == "SERVICE_UNAVAILABLE"
        vxp = await node.http.post("/vxp/getReceivedEdocList")
        assert vxp.status_code == 503 and vxp.json()["ErrorCode"] == "20"
        assert (await node.http.get("/metrics")).status_code == 503
    finally:
        node.app.state.runtime = runtime
        startup.phase = phase
