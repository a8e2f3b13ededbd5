"""Observability of real `lienthong serve` processes (issue #13 item 4): a Prometheus server
from the Debian package scrapes one and answers a query through its HTTP API; the JSON lines
the process writes parse and follow a package by its id; `/healthz` answers while the
process migrates, and a migration that fails stops it.

`prometheus` must be on PATH (`.ci/run` installs Debian's package when it is missing); the
test fails, never skips, without it. On PostgreSQL + RabbitMQ the node runs two workers, so
the scrape also shows that every worker answers with the node's totals (prometheus-client's
multiprocess mode), whichever worker the connection lands on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.vxp_client import VxpClient
from gateway.faults import WHILE_MIGRATING
from gateway.runtime import build_store
from gateway.services.directory import add_system
from tests.support.nodes import Backing
from tests.support.processes import GatewayProcess, free_port
from tests.support.samples import document

SENDER, RECEIVER = "000.00.01.H53", "000.00.21.H53"
PACKAGES = 4


@contextlib.asynccontextmanager
async def prometheus(target: str, directory: Path) -> AsyncIterator[str]:
    """A Prometheus server scraping `target` (host:port) every second; its API's base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("no prometheus on PATH: apt-get install -y prometheus (.ci/run does)")
    directory.mkdir()
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: lienthong\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    log = open(directory / "prometheus.log", "ab")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            for _ in range(300):
                assert process.poll() is None, (directory / "prometheus.log").read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/-/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("prometheus not ready")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def query_until(url: str, promql: str, wanted: float, timeout: float = 60) -> None:
    """Ask Prometheus's HTTP API until the query's single value is `wanted`."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    async with httpx.AsyncClient(timeout=5) as http:
        while asyncio.get_running_loop().time() < deadline:
            answer = (await http.get(f"{url}/api/v1/query", params={"query": promql})).json()
            assert answer["status"] == "success", answer
            last = answer["data"]["result"]
            if len(last) == 1 and float(last[0]["value"][1]) == wanted:
                return
            await asyncio.sleep(0.5)
    raise AssertionError(f"{promql} never gave {wanted}: {last}")


async def systems(backing: Backing) -> tuple[str, str]:
    store = build_store(backing.settings())
    try:
        return (
            await add_system(store, "sys.sender", [SENDER]),
            await add_system(store, "sys.receiver", [RECEIVER]),
        )
    finally:
        await store.close()


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while (await http.get(f"{url}/readyz")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "never ready"
            await asyncio.sleep(0.1)


def accepted_in(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "lienthong_packages_accepted_total"
    )


async def test_prometheus_scrapes_a_serve_process_and_its_logs_follow_a_package(
    backing: Backing, tmp_path: Path
) -> None:
    sender_secret, receiver_secret = await systems(backing)
    workers = ["--workers", "2"] if backing.production else []
    process = GatewayProcess(
        backing.environment(log_format="json"), tmp_path / "gateway.log", *workers
    )
    try:
        await process.wait_ready()
        await wait_ready(process.url)
        # A fresh connection per request: with two workers they share the work.
        fresh = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=process.url, timeout=30, limits=fresh) as http:
            sender = VxpClient(http, "sys.sender", sender_secret)
            receiver = VxpClient(http, "sys.receiver", receiver_secret)
            sent = [
                await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER)
                for _ in range(PACKAGES)
            ]
            assert all(answer["status"] == "OK" for answer in sent), sent
            taken: list[str] = []
            for _ in range(200):
                answer = await receiver.get_received()
                taken += [item["docId"] for item in answer["data"]]
                if len(taken) >= PACKAGES:
                    break
                await asyncio.sleep(0.1)
            assert len(taken) == PACKAGES
            for delivery in taken:
                assert (await receiver.get_edoc(delivery))["status"] == "OK"
            # Every scrape, whichever worker answers it, has the node's total.
            for _ in range(6):
                assert accepted_in((await http.get("/metrics")).text) == PACKAGES

        async with prometheus(f"127.0.0.1:{process.port}", tmp_path / "prometheus") as url:
            await query_until(url, 'up{job="lienthong"}', 1)
            await query_until(
                url,
                'sum(lienthong_packages_accepted_total{job="lienthong",kind="edoc"})',
                PACKAGES,
            )
            await query_until(
                url,
                'lienthong_available_to_downloaded_seconds_count{job="lienthong"}',
                PACKAGES,
            )
            await query_until(
                url, 'lienthong_deliveries{job="lienthong",state="downloaded"}', PACKAGES
            )
    finally:
        process.stop()

    lines = [json.loads(line) for line in (tmp_path / "gateway.log").read_text().splitlines()]
    assert lines and all(
        {"time", "level", "logger", "message", "pid"} <= set(line) for line in lines
    )
    first = sent[0]["DocId"]
    about = [line for line in lines if line.get("correlation_id") == first]
    events = {(line["logger"], line["message"]) for line in about}
    assert {
        ("gateway.services.submission", "package accepted"),
        ("gateway.services.relay", "published to the broker"),
        ("gateway.services.inbox", "available in the inbox"),
        ("gateway.services.inbox", "downloaded"),
    } <= events, events
    [access] = [line for line in about if line["logger"] == "uvicorn.access"]
    assert access["path"] == "/vxp/sendEdoc" and access["status"] == 200
    if backing.production:
        assert len({line["pid"] for line in lines if line["logger"] == "uvicorn.access"}) >= 1


@pytest.mark.backends("embedded")
async def test_serve_answers_healthz_while_it_migrates_and_stops_when_migrating_fails(
    backing: Backing, tmp_path: Path
) -> None:
    hung = GatewayProcess(
        backing.environment(fault_points=frozenset({WHILE_MIGRATING})),
        tmp_path / "migrating.log",
        migrate=True,
    )
    try:
        await hung.wait_ready()  # /healthz
        async with httpx.AsyncClient(base_url=hung.url, timeout=10) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok", "phase": "migrating"}
            ready = await http.get("/readyz")
            assert (ready.status_code, ready.json()) == (503, {"status": "migrating"})
            inbox = await http.get("/api/v1/inbox")
            assert inbox.status_code == 503 and inbox.json()["code"] == "SERVICE_UNAVAILABLE"
    finally:
        # The migration thread hangs for good at the fault point: only SIGKILL ends it.
        os.kill(hung.process.pid, signal.SIGKILL)
        hung.stop()

    again = GatewayProcess(backing.environment(), tmp_path / "migrated.log", migrate=True)
    try:
        await again.wait_ready()
        await wait_ready(again.url)
    finally:
        again.stop()

    unreachable = backing.environment(database_url="postgresql://nobody@127.0.0.1:1/none")
    failing = GatewayProcess(unreachable, tmp_path / "failing.log", migrate=True)
    try:
        assert failing.process.wait(timeout=60) == 1
    finally:
        failing.stop()
    failed = [json.loads(line) for line in (tmp_path / "failing.log").read_text().splitlines()]
    assert any(line["message"] == "startup failed; the process stops" for line in failed)
