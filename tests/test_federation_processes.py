"""Three nodes as separate `lienthong serve` processes on loopback (issue #12 item 7): the
province H53, the national node and the province H54, each with its own database (and on
the production backend its own RabbitMQ vhost), configured with the CLI as an operator
would. A document from an H53 agency to an H54 agency, a ministry agency served at the
national node and a second H53 agency, sent through /vxp as the SDK sends it: each recipient
gets it once, statuses come back, the sent list shows every recipient. Then the national node
is stopped during a stream of sends, and a province is killed after the national node took a
forward but before the province recorded it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.vxp_client import VxpClient
from gateway.faults import AFTER_FORWARD_ANSWER, marker_path
from tests.support.nodes import AMQP_URL, Backing, rabbitmqctl
from tests.support.processes import GatewayProcess, free_port
from tests.support.samples import document, document_id_of, status

H53_A, H53_B = "000.00.01.H53", "000.00.02.H53"
MINISTRY = "000.00.00.G01"
H54_A = "000.00.01.H54"
CODES = {"p53": "000.00.00.H53", "national": "000.00.00.G22", "p54": "000.00.00.H54"}
SECRETS = {"P53": "secret-of-p53-at-national", "P54": "secret-of-p54-at-national"}
FAST = {
    "peer_poll_seconds": 0.3,
    "peer_downstream_seconds": 0.5,
    "push_retry_tiers_seconds": (0.5, 1.0, 2.0),
    "push_max_attempts": 40,
    "peer_forward_lease_seconds": 3.0,
    "relay_interval_seconds": 0.1,
}


class Member:
    """One node: its backing, its settings as environment, its process and clients."""

    def __init__(self, name: str, backing: Backing, env: dict[str, str], log: Path) -> None:
        self.name, self.backing, self.env, self.log = name, backing, env, log
        self.port = free_port()
        self.process: GatewayProcess | None = None
        self.http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30)

    @property
    def vxp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/vxp"

    async def start(self, **extra_env: str) -> None:
        self.process = GatewayProcess({**self.env, **extra_env}, self.log, port=self.port)
        await self.process.wait_ready(timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    async def cli(self, *args: str) -> str:
        """`lienthong ARGS` as a separate process, as an operator types it."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
        return output.decode()

    def client(self, system_id: str, secret: str) -> VxpClient:
        return VxpClient(self.http, system_id, secret)


class Three:
    def __init__(self, members: dict[str, Member]) -> None:
        self.members = members

    def __getitem__(self, name: str) -> Member:
        return self.members[name]


@pytest.fixture
async def three(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Three]:
    members: dict[str, Member] = {}
    vhosts: list[str] = []
    try:
        for name, code in CODES.items():
            (tmp_path / name).mkdir()
            backing = Backing(backend, tmp_path / name, request)
            await backing.create()
            overrides: dict[str, Any] = {"node_code": code, **FAST}
            if backing.production:
                vhost = f"lt-test-{uuid.uuid4().hex[:8]}"
                await rabbitmqctl("add_vhost", vhost)
                await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
                vhosts.append(vhost)
                overrides["broker_url"] = f"{AMQP_URL.rstrip('/')}/{vhost}"
            members[name] = Member(
                name, backing, backing.environment(**overrides), tmp_path / f"{name}.log"
            )
        group = Three(members)
        await configure(group)
        await asyncio.gather(*(m.start() for m in members.values()))
        yield group
    finally:
        for member in members.values():
            member.stop()
            await member.http.aclose()
            await member.backing.remove()
        for vhost in vhosts:
            await rabbitmqctl("delete_vhost", vhost)


async def configure(three: Three) -> None:
    """What the operators of the three nodes type (README: connecting to the national axis)."""
    national = three["national"]
    for system_id, serves in (("P53", "#.H53"), ("P54", "#.H54")):
        await national.cli(
            "systems", "add", system_id, "--serves", serves, "--secret", SECRETS[system_id]
        )
    await national.cli("systems", "add", "sys.g01", "--serves", MINISTRY, "--secret", "secret-g01")
    await three["p53"].cli(
        "systems", "add", "sys.h53a", "--serves", H53_A, "--secret", "secret-h53a"
    )
    await three["p53"].cli(
        "systems", "add", "sys.h53b", "--serves", H53_B, "--secret", "secret-h53b"
    )
    await three["p54"].cli(
        "systems", "add", "sys.h54a", "--serves", H54_A, "--secret", "secret-h54a"
    )
    for province, system_id in (("p53", "P53"), ("p54", "P54")):
        await three[province].cli(
            "peers",
            "add",
            "national",
            "--url",
            national.vxp_url,
            "--system-id",
            system_id,
            "--secret",
            SECRETS[system_id],
            "--default",
        )


async def collect(
    client: VxpClient, count: int, messagetype: str = "edoc", timeout: float = 90
) -> list[dict[str, str]]:
    """Poll until `count` items were handed out, then a few more times: nothing more may
    come (each one acknowledged `done` as it is taken)."""
    seen: list[dict[str, str]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(seen) < count:
        answer = await client.get_received(messagetype)
        assert answer["status"] == "OK", answer
        for item in answer["data"]:
            seen.append(item)
            assert (await client.get_edoc(item["docId"]))["status"] == "OK"
            assert (await client.update_status(item["docId"], "done"))["status"] == "OK"
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(seen)} of {count} arrived: {seen}")
        await asyncio.sleep(0.2)
    for _ in range(8):
        await asyncio.sleep(0.3)
        extra = (await client.get_received(messagetype))["data"]
        assert extra == [], f"more than {count} arrived: {extra}"
    return seen


async def test_three_nodes_exchange_a_document_and_its_statuses(three: Three) -> None:
    sender = three["p53"].client("sys.h53a", "secret-h53a")
    h54 = three["p54"].client("sys.h54a", "secret-h54a")
    ministry = three["national"].client("sys.g01", "secret-g01")
    neighbour = three["p53"].client("sys.h53b", "secret-h53b")
    package = document(H53_A, [H54_A, MINISTRY, H53_B])
    answer = await sender.send_edoc(package, H53_A)
    assert answer["status"] == "OK", answer

    for client, code in ((h54, H54_A), (ministry, MINISTRY), (neighbour, H53_B)):
        [item] = await collect(client, 1)
        assert (item["from"], item["to"]) == (H53_A, code)
    for client, code in ((h54, H54_A), (ministry, MINISTRY)):
        for step in ("01", "03"):
            sent = await client.send_edoc(
                status(code, H53_A, document_id_of(package), step), code, messagetype="status"
            )
            assert sent["status"] == "OK", sent
    statuses = await collect(sender, 4, messagetype="status")
    assert sorted(s["from"] for s in statuses) == sorted([H54_A, H54_A, MINISTRY, MINISTRY])

    async def every_recipient_shown() -> dict[str, dict[str, Any]]:
        rows = (await sender.get_sent(answer["DocId"]))["data"]
        return {row["toCode"]: row for row in rows}

    deadline = asyncio.get_running_loop().time() + 60
    while True:
        rows = await every_recipient_shown()
        if rows[H54_A]["receiveStatus"] == "03" and rows[MINISTRY]["receiveStatus"] == "03":
            break
        assert asyncio.get_running_loop().time() < deadline, rows
        await asyncio.sleep(0.3)
    assert rows[H53_B]["sendStatus"] == "done"
    for code in (H54_A, MINISTRY):
        assert rows[code]["sendStatus"] == "forwarded"
        assert "national" in rows[code]["sendStatusDesc"]


async def test_the_national_node_stopped_during_a_stream_of_sends(three: Three) -> None:
    sender = three["p53"].client("sys.h53a", "secret-h53a")
    h54 = three["p54"].client("sys.h54a", "secret-h54a")
    sent = []
    for index in range(12):
        if index == 4:
            three["national"].stop()
        answer = await sender.send_edoc(document(H53_A, [H54_A]), H53_A)
        assert answer["status"] == "OK", answer  # the province accepts while it is away
        sent.append(answer["DocId"])
    await asyncio.sleep(2)
    await three["national"].start()
    got = await collect(h54, 12, timeout=120)
    assert len({item["docId"] for item in got}) == 12


async def test_a_province_killed_after_the_peer_took_a_forward_sends_no_second_copy(
    three: Three,
) -> None:
    province = three["p53"]
    province.stop()
    await province.start(LIENTHONG_FAULT_POINTS=AFTER_FORWARD_ANSWER)
    sender = province.client("sys.h53a", "secret-h53a")
    h54 = three["p54"].client("sys.h54a", "secret-h54a")
    answer = await sender.send_edoc(document(H53_A, [H54_A]), H53_A)
    assert answer["status"] == "OK"
    assert province.process is not None
    pid = province.process.process.pid
    marker = marker_path(province.backing.data_dir, AFTER_FORWARD_ANSWER, pid)
    deadline = asyncio.get_running_loop().time() + 60
    while not marker.exists():
        assert asyncio.get_running_loop().time() < deadline, "fault point not reached"
        await asyncio.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    province.stop()
    await province.start()  # without the fault point: it sends again after the lease
    [item] = await collect(h54, 1, timeout=90)
    assert item["from"] == H53_A

    async def forwarded() -> bool:
        rows = (await sender.get_sent(answer["DocId"]))["data"]
        return bool(rows) and rows[0]["sendStatus"] == "forwarded"

    deadline = asyncio.get_running_loop().time() + 60
    while not await forwarded():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.3)


async def test_a_merge_at_the_national_node_reaches_the_province_by_directory_sync(
    three: Three,
) -> None:
    """The national node merges a ministry unit into another; the province syncs its
    directory from it and routes the old code to the successor (with a warning to the
    sender); the successor's system gets the package once."""
    national, province = three["national"], three["p53"]
    successor = "000.00.00.G02"
    await national.cli("systems", "add", "sys.g02", "--serves", successor, "--secret", "secret-g02")
    await national.cli("agencies", "add", MINISTRY, "--name", "Bo cu (old ministry unit)")
    await national.cli("agencies", "add", successor, "--name", "Bo moi (successor)")
    await national.cli("agencies", "merge", MINISTRY, "--into", successor)
    await province.cli("agencies", "sync", "--from", "national")
    listed = await province.cli("agencies", "list")
    assert MINISTRY in listed and successor in listed

    sender = province.client("sys.h53a", "secret-h53a")
    answer = await sender.send_edoc(document(H53_A, [MINISTRY]), H53_A)
    assert answer["status"] == "OK" and MINISTRY in answer["ErrorDesc"], answer
    [item] = await collect(national.client("sys.g02", "secret-g02"), 1)
    assert (item["from"], item["to"]) == (H53_A, successor)
    assert (await national.client("sys.g01", "secret-g01").get_received())["data"] == []


async def test_two_misconfigured_provinces_do_not_ping_pong(three: Three) -> None:
    """P53 and P54 each route an unused code to the other: the package goes over once,
    is refused there (P54's node may not send as an H53 agency to P53) and is dead."""
    p53, p54 = three["p53"], three["p54"]
    await p53.cli("systems", "add", "P54", "--serves", "#.H54", "--secret", "secret-of-p54-here")
    await p54.cli("systems", "add", "P53", "--serves", "#.H53", "--secret", "secret-of-p53-here")
    await p53.cli(
        "peers",
        "add",
        "p54",
        "--url",
        p54.vxp_url,
        "--system-id",
        "P53",
        "--secret",
        "secret-of-p53-here",
        "--prefix",
        "#.H99",
    )
    await p54.cli(
        "peers",
        "add",
        "p53",
        "--url",
        p53.vxp_url,
        "--system-id",
        "P54",
        "--secret",
        "secret-of-p54-here",
        "--prefix",
        "#.H99",
    )
    sender = p53.client("sys.h53a", "secret-h53a")
    nowhere = "000.00.01.H99"
    answer = await sender.send_edoc(document(H53_A, [nowhere]), H53_A)
    assert answer["status"] == "OK", answer
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        line = await peer_line(p54, "p53")
        if "dead 1" in line:
            break
        assert asyncio.get_running_loop().time() < deadline, line
        await asyncio.sleep(0.5)
    [row] = (await sender.get_sent(answer["DocId"]))["data"]
    assert row["sendStatus"] == "forwarded"  # P53 → P54 once
    await asyncio.sleep(2)
    line = await peer_line(p53, "p54")
    assert "forwarded 1" in line and "backlog 0" in line  # nothing came back to go out again


async def peer_line(member: Member, peer: str) -> str:
    """The line `lienthong peers list` prints for `peer` on `member`."""
    lines = (await member.cli("peers", "list")).splitlines()
    return next(line for line in lines if line.startswith(peer))
