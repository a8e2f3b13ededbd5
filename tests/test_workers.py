"""`lienthong serve --workers N`: one port, N worker processes, each a whole gateway; a worker
that dies is replaced, and nothing it had accepted is lost or handed out twice. The embedded
backend, which lives in one process, refuses more than one worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

import httpx
import pytest

from adapters.vxp_client import VxpClient
from gateway.runtime import build_store
from gateway.services.directory import add_system
from tests.support.nodes import Backing
from tests.support.processes import GatewayProcess
from tests.support.samples import document

SENDER = "000.00.01.H53"
RECIPIENT = "000.00.21.H53"
PACKAGES = 30


async def _wait_children(
    process: GatewayProcess, count: int, gone: int | None = None, timeout: float = 30
) -> list[int]:
    """The workers once there are `count` of them (and `gone` is not among them)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        children = process.workers()
        if len(children) == count and gone not in children:
            return children
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(children)} workers, expected {count}")
        await asyncio.sleep(0.2)


async def test_workers_share_one_port_and_deliver_each_package_once(backing: Backing) -> None:
    if not backing.production:
        pytest.skip("several workers need PostgreSQL + RabbitMQ (the embedded case is below)")
    store = build_store(backing.settings())
    try:
        sender_secret = await add_system(store, "sys.sender", [SENDER])
        receiver_secret = await add_system(store, "sys.receiver", [RECIPIENT])
    finally:
        await store.close()
    process = GatewayProcess(
        backing.environment(), backing.data_dir / "workers.log", "--workers", "2"
    )
    try:
        await process.wait_ready()
        first = await _wait_children(process, 2)
        async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
            sender = VxpClient(client, "sys.sender", sender_secret)
            receiver = VxpClient(client, "sys.receiver", receiver_secret)
            sent = [
                (await sender.send_edoc(document(SENDER, [RECIPIENT]), SENDER))
                for _ in range(PACKAGES // 2)
            ]
            # A worker killed outright: the supervisor starts another in its place.
            os.kill(first[0], signal.SIGKILL)
            replaced = await _wait_children(process, 2, gone=first[0])
            assert first[1] in replaced
            await process.wait_ready()
            sent += [
                (await sender.send_edoc(document(SENDER, [RECIPIENT]), SENDER))
                for _ in range(PACKAGES - PACKAGES // 2)
            ]
            assert all(answer["status"] == "OK" for answer in sent), sent
            handed_out: Counter[str] = Counter()
            deadline = asyncio.get_running_loop().time() + 120
            while len(handed_out) < PACKAGES:
                assert asyncio.get_running_loop().time() < deadline, len(handed_out)
                answer = await receiver.get_received()
                assert answer["status"] == "OK", answer
                for item in answer["data"]:
                    handed_out[item["docId"]] += 1
                    assert (await receiver.get_edoc(item["docId"]))["status"] == "OK"
                    assert (await receiver.update_status(item["docId"], "done"))["status"] == "OK"
                if not answer["data"]:
                    await asyncio.sleep(0.1)
            assert (await receiver.get_received())["data"] == []
        assert set(handed_out.values()) == {1}
        assert len(handed_out) == len({answer["DocId"] for answer in sent}) == PACKAGES
    finally:
        process.stop()


def test_embedded_backend_refuses_several_workers(backing: Backing) -> None:
    if backing.production:
        pytest.skip("the refusal is the embedded backend's")
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--no-migrate", "--workers", "2"],
        env=backing.environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    assert "--workers > 1 needs RabbitMQ" in result.stderr
