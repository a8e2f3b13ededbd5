"""Scale-out: several `lienthong serve` processes on one PostgreSQL + RabbitMQ (one process on
the embedded backend), with concurrent pollers: no item is ever handed out twice as new."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.vxp_client import VxpClient
from gateway.runtime import build_store
from gateway.services.audit import verify_log
from gateway.services.directory import add_system
from tests.support.nodes import Backing
from tests.support.processes import GatewayProcess
from tests.support.samples import document

SENDER = "000.00.01.H53"
RECIPIENTS = ["000.00.21.H53", "000.00.22.H53", "000.00.23.H53"]
PACKAGES = 40
POLLERS = 6


@pytest.fixture
async def cluster(backing: Backing) -> AsyncIterator[list[GatewayProcess]]:
    env = backing.environment()
    processes = [
        GatewayProcess(env, backing.data_dir / f"gateway-{i}.log")
        for i in range(2 if backing.production else 1)
    ]
    try:
        await asyncio.gather(*(p.wait_ready() for p in processes))
        yield processes
    finally:
        for process in processes:
            process.stop()


async def test_concurrent_pollers_on_several_processes_get_each_item_once(
    backing: Backing, cluster: list[GatewayProcess]
) -> None:
    store = build_store(backing.settings())
    try:
        sender_secret = await add_system(store, "sys.sender", [SENDER])
        receiver_secret = await add_system(store, "sys.receiver", RECIPIENTS)
    finally:
        await store.close()
    clients = [httpx.AsyncClient(base_url=p.url, timeout=30) for p in cluster]
    try:
        senders = [VxpClient(c, "sys.sender", sender_secret) for c in clients]
        pollers = [
            VxpClient(clients[i % len(clients)], "sys.receiver", receiver_secret)
            for i in range(POLLERS)
        ]
        handed_out: Counter[tuple[str, str]] = Counter()
        done: set[str] = set()
        expected = PACKAGES * len(RECIPIENTS)

        async def send(worker: int) -> None:
            for n in range(worker, PACKAGES, 4):
                answer = await senders[n % len(senders)].send_edoc(
                    document(SENDER, RECIPIENTS), SENDER
                )
                assert answer["status"] == "OK", answer

        async def poll(client: VxpClient) -> None:
            for _ in itertools.count():
                if len(done) >= expected:
                    return
                answer = await client.get_received()
                assert answer["status"] == "OK", answer
                for item in answer["data"]:
                    handed_out[(item["docId"], item["status"])] += 1
                    assert (await client.get_edoc(item["docId"]))["status"] == "OK"
                    assert (await client.update_status(item["docId"], "done"))["status"] == "OK"
                    done.add(item["docId"])
                if not answer["data"]:
                    await asyncio.sleep(0.05)

        await asyncio.wait_for(
            asyncio.gather(*(send(w) for w in range(4)), *(poll(p) for p in pollers)), timeout=180
        )
        assert len(done) == expected
        assert {status for _, status in handed_out} == {"new"}
        assert set(handed_out.values()) == {1}, [k for k, v in handed_out.items() if v > 1]
    finally:
        for client in clients:
            await client.aclose()
    # Every process appended evidence concurrently: the chain is still one unbroken line.
    store = build_store(backing.settings())
    try:
        report = await verify_log(store)
    finally:
        await store.close()
    assert report.ok, report
    assert report.checked == PACKAGES + 3 * expected  # accepted; delivered, downloaded, acked
