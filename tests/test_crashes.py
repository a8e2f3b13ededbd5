"""Crashes mid-flight (SPEC §5): a gateway process killed with SIGKILL after accepting and
before publishing, or after publishing and before the consumer's commit; PostgreSQL restarted
while packages are being sent. Whatever happens, every accepted package ends in exactly one
inbox item per recipient, nothing is half-written, and the evidence chain is complete."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from adapters.db.models import Delivery, DeliveryEvent, EvidenceEntry, Message, OutboxEntry
from adapters.db.store import SqlStore
from adapters.vxp_client import VxpClient
from gateway.faults import AFTER_ACCEPT, BEFORE_CONSUME_COMMIT, marker_path
from gateway.runtime import build_store
from gateway.services.audit import verify_log
from gateway.services.directory import add_system
from tests.support.nodes import Backing, NodeFactory
from tests.support.processes import GatewayProcess
from tests.support.samples import document, document_id_of

SENDER = "000.00.01.H53"
RECIPIENTS = {"sys.r1": "000.00.21.H53", "sys.r2": "000.00.22.H53"}


# -- what the database says --------------------------------------------------------------------


@dataclass
class Ledger:
    """Every row that tells what happened to the packages, read straight from the database."""

    messages: dict[str, str] = field(default_factory=dict)  # message id → DocumentId
    deliveries: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """delivery id → (message id, recipient code, state)"""
    outbox: Counter[str] = field(default_factory=Counter)  # delivery id → rows
    unpublished: int = 0
    timeline: Counter[tuple[str, str]] = field(default_factory=Counter)  # (delivery, to_state)
    evidence: Counter[tuple[str, str | None, str | None]] = field(default_factory=Counter)
    """(event, message id, delivery id) → entries"""


async def read_ledger(store: SqlStore) -> Ledger:
    ledger = Ledger()
    async with store.transaction(read_only=True) as session:
        for public_id, document_id in (
            await session.execute(select(Message.public_id, Message.document_id))
        ).all():
            ledger.messages[public_id] = document_id
        for public_id, message_id, recipient, state in (
            await session.execute(
                select(
                    Delivery.public_id, Message.public_id, Delivery.recipient_code, Delivery.state
                ).join(Message, Message.id == Delivery.message_id)
            )
        ).all():
            ledger.deliveries[public_id] = (message_id, recipient, state)
        for public_id, published_at in (
            await session.execute(
                select(Delivery.public_id, OutboxEntry.published_at).join(
                    Delivery, Delivery.id == OutboxEntry.delivery_id
                )
            )
        ).all():
            ledger.outbox[public_id] += 1
            ledger.unpublished += published_at is None
        for public_id, to_state, count in (
            await session.execute(
                select(Delivery.public_id, DeliveryEvent.to_state, func.count())
                .join(Delivery, Delivery.id == DeliveryEvent.delivery_id)
                .group_by(Delivery.public_id, DeliveryEvent.to_state)
            )
        ).all():
            ledger.timeline[(public_id, to_state)] = count
        for event, message_id, delivery_id, count in (
            await session.execute(
                select(
                    EvidenceEntry.event,
                    EvidenceEntry.message_id,
                    EvidenceEntry.delivery_id,
                    func.count(),
                ).group_by(EvidenceEntry.event, EvidenceEntry.message_id, EvidenceEntry.delivery_id)
            )
        ).all():
            ledger.evidence[(event, message_id, delivery_id)] = count
    return ledger


async def settled_ledger(store: SqlStore, timeout: float = 60.0) -> Ledger:
    """The ledger once every outbox row is published and every delivery is in an inbox, plus
    a moment for a late second copy (a claim that expired, a redelivery) to show up."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ledger = await read_ledger(store)
        if not ledger.unpublished and all(
            state == "available" for _, _, state in ledger.deliveries.values()
        ):
            break
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not settled after {timeout}s: {ledger}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.5)
    return await read_ledger(store)


def assert_exactly_once(
    ledger: Ledger, accepted: Iterable[str], handed_out: Counter[tuple[str, str]]
) -> None:
    """Each accepted message, and no other, exists with one delivery per recipient, each with
    its outbox row and its timeline, made available once, handed out once as new; and the
    evidence has one `accepted` per message and one `delivered` per delivery."""
    accepted = set(accepted)
    assert set(ledger.messages) == accepted, "messages in the database ≠ packages accepted"
    per_message: dict[str, list[str]] = {}
    for message_id, recipient, _ in ledger.deliveries.values():
        per_message.setdefault(message_id, []).append(recipient)
    assert {m: sorted(r) for m, r in per_message.items()} == {
        m: sorted(RECIPIENTS.values()) for m in accepted
    }, "not one delivery per recipient"
    for delivery_id, (message_id, _, state) in ledger.deliveries.items():
        assert state == "available", (delivery_id, state)
        assert ledger.outbox[delivery_id] == 1, (
            delivery_id,
            "outbox rows",
            ledger.outbox[delivery_id],
        )
        assert ledger.timeline[(delivery_id, "accepted")] == 1, delivery_id
        assert ledger.timeline[(delivery_id, "available")] == 1, (
            delivery_id,
            "made available",
            ledger.timeline[(delivery_id, "available")],
        )
        assert ledger.evidence[("delivered", message_id, delivery_id)] == 1, delivery_id
    assert ledger.unpublished == 0
    assert set(handed_out) == {(d, "new") for d in ledger.deliveries}, "not all handed out"
    assert set(handed_out.values()) == {1}, [k for k, v in handed_out.items() if v > 1]
    assert {(m, n) for (event, m, _), n in ledger.evidence.items() if event == "accepted"} == {
        (m, 1) for m in accepted
    }, "not one `accepted` evidence entry per message"
    assert sum(n for (event, _, _), n in ledger.evidence.items() if event == "delivered") == len(
        ledger.deliveries
    )


async def poll_all(
    receivers: dict[str, VxpClient], expected: int, timeout: float = 60.0
) -> Counter[tuple[str, str]]:
    """Poll every receiving system until `expected` items in all were handed out, then a few
    more times: nothing may come out again (the lease hides nothing here: it outlasts this)."""
    handed_out: Counter[tuple[str, str]] = Counter()
    deadline = asyncio.get_running_loop().time() + timeout
    while sum(handed_out.values()) < expected:
        for receiver in receivers.values():
            answer = await receiver.get_received()
            assert answer["status"] == "OK", answer
            handed_out.update((item["docId"], item["status"]) for item in answer["data"])
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"only {sum(handed_out.values())} of {expected} items were handed out: {handed_out}"
            )
        await asyncio.sleep(0.1)
    for _ in range(5):
        for receiver in receivers.values():
            answer = await receiver.get_received()
            handed_out.update((item["docId"], item["status"]) for item in answer["data"])
        await asyncio.sleep(0.1)
    return handed_out


def is_duplicate_of(answer: dict[str, Any], message_id: str) -> bool:
    return (
        answer["status"] == "FAIL"
        and answer["ErrorCode"] == "24"
        and answer.get("DocId") == message_id
    )


# -- a gateway killed with SIGKILL at a fault point ---------------------------------------------


@pytest.fixture
async def secrets(backing: Backing) -> dict[str, str]:
    store = build_store(backing.settings())
    try:
        found = {"sys.sender": await add_system(store, "sys.sender", [SENDER])}
        for system_id, code in RECIPIENTS.items():
            found[system_id] = await add_system(store, system_id, [code])
        return found
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def gateway(
    backing: Backing, name: str, **overrides: Any
) -> AsyncIterator[tuple[GatewayProcess, httpx.AsyncClient]]:
    env = backing.environment(**overrides)
    if "fault_points" in overrides:  # the JSON list form, as an operator would write it
        env["LIENTHONG_FAULT_POINTS"] = json.dumps(sorted(overrides["fault_points"]))
    process = GatewayProcess(env, backing.data_dir / f"{name}.log")
    try:
        await process.wait_ready()
        async with httpx.AsyncClient(base_url=process.url, timeout=60) as http:
            yield process, http
    finally:
        process.stop()


async def kill_at(
    backing: Backing, process: GatewayProcess, point: str, timeout: float = 60.0
) -> None:
    """Wait until the process stands at `point`, then SIGKILL it."""
    marker = marker_path(backing.data_dir, point, process.process.pid)
    deadline = asyncio.get_running_loop().time() + timeout
    while not marker.exists():
        if process.process.poll() is not None or asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"the gateway never reached {point}: {process.log_path.read_text()[-3000:]}"
            )
        await asyncio.sleep(0.05)
    os.kill(process.process.pid, signal.SIGKILL)
    await asyncio.to_thread(process.process.wait)
    assert process.process.returncode == -signal.SIGKILL


POINT_SETTINGS: dict[str, dict[str, Any]] = {
    # The relay is woken only by `on_accepted`, which the point stops: it cannot publish the
    # package on a tick of its own before the kill.
    AFTER_ACCEPT: {"relay_interval_seconds": 60.0},
    # The relay may have claimed the outbox rows and not yet recorded the confirm: the claim
    # of a dead relay expires after this, and the next process publishes them again.
    BEFORE_CONSUME_COMMIT: {"relay_claim_seconds": 2.0},
}


@pytest.mark.parametrize("point", [AFTER_ACCEPT, BEFORE_CONSUME_COMMIT])
async def test_gateway_killed_mid_flight_loses_and_doubles_nothing(
    backing: Backing, secrets: dict[str, str], point: str
) -> None:
    package = document(SENDER, list(RECIPIENTS.values()))
    first: dict[str, Any] | BaseException
    async with gateway(
        backing, "killed", fault_points=frozenset({point}), **POINT_SETTINGS[point]
    ) as (process, http):
        sender = VxpClient(http, "sys.sender", secrets["sys.sender"])
        sending = asyncio.create_task(sender.send_edoc(package, SENDER))
        await kill_at(backing, process, point)
        try:
            first = await asyncio.wait_for(sending, 30)
        except httpx.TransportError as error:  # the answer died with the process
            first = error
    if point == AFTER_ACCEPT:
        assert isinstance(first, httpx.TransportError), (
            f"answered although killed before answering: {first}"
        )
    elif not isinstance(first, BaseException):
        assert first["status"] == "OK", first

    store = build_store(backing.settings())
    try:
        # Both points come after the accepting commit: the package is in the database once,
        # and the process died where it should have.
        killed = await read_ledger(store)
        messages = [m for m, d in killed.messages.items() if d == document_id_of(package)]
        assert len(messages) == 1, messages
        states = {state for _, _, state in killed.deliveries.values()}
        if point == AFTER_ACCEPT:
            assert killed.unpublished == len(RECIPIENTS) and states == {"accepted"}, killed
        else:
            assert states <= {"accepted", "queued"}, killed  # in no inbox yet
        [message_id] = messages
        if not isinstance(first, BaseException):
            assert first["DocId"] == message_id

        async with gateway(backing, "restarted") as (_, http):
            # The sender never had an answer (or is unsure): it sends the same package again.
            again = await VxpClient(http, "sys.sender", secrets["sys.sender"]).send_edoc(
                package, SENDER
            )
            assert is_duplicate_of(again, message_id), again
            receivers = {s: VxpClient(http, s, secrets[s]) for s in RECIPIENTS}
            handed_out = await poll_all(receivers, len(RECIPIENTS))
            ledger = await settled_ledger(store)
        report = await verify_log(store)
    finally:
        await store.close()
    assert_exactly_once(ledger, [message_id], handed_out)
    assert report.ok, report
    assert report.checked == 1 + len(RECIPIENTS)  # accepted; delivered per recipient


# -- PostgreSQL restarted during sends ---------------------------------------------------------

PG_CLUSTER = [
    sorted(os.listdir("/etc/postgresql"))[-1] if os.path.isdir("/etc/postgresql") else "15",
    "main",
]


async def pg_ctlcluster(action: str, *options: str) -> int:
    process = await asyncio.create_subprocess_exec(
        "pg_ctlcluster",
        "--skip-systemctl-redirect",
        *PG_CLUSTER,
        action,
        *options,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await process.communicate()
    if action != "status":
        assert process.returncode == 0, f"pg_ctlcluster {action}: {stderr.decode()}"
    assert process.returncode is not None
    return process.returncode


@dataclass
class Sent:
    package: bytes
    http_status: int | None = None
    answer: dict[str, Any] | None = None
    error: BaseException | None = None


@pytest.mark.backends("production")  # the embedded database is a file, no server to restart
async def test_postgresql_restarted_during_sends_answers_503_and_half_writes_nothing(
    backing: Backing, make_node: NodeFactory
) -> None:
    node = await make_node()
    sender = await node.add_system("sys.sender", SENDER)
    receivers = {s: await node.add_system(s, code) for s, code in RECIPIENTS.items()}
    sent: list[Sent] = []
    stop = asyncio.Event()

    async def send_until_stopped() -> None:
        while not stop.is_set():
            attempt = Sent(document(SENDER, list(RECIPIENTS.values())))
            sent.append(attempt)
            try:
                answer = await sender.send_edoc(attempt.package, SENDER)
            except Exception as error:  # a 500 raised through the ASGI transport
                attempt.error = error
                continue
            attempt.http_status, attempt.answer = answer.pop("_http_status"), answer
            if attempt.http_status == 503:
                await asyncio.sleep(0.1)  # a client backs off on 503

    def accepted_count() -> int:
        return sum(1 for s in sent if s.answer and s.answer["status"] == "OK")

    async def until(condition: Any, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, "the senders are stuck"
            await asyncio.sleep(0.05)

    senders = [asyncio.create_task(send_until_stopped()) for _ in range(3)]
    try:
        await until(lambda: accepted_count() >= 6, 60)
        before = accepted_count()
        try:
            await pg_ctlcluster("stop", "-m", "fast")  # a restart with the server away a while
            await asyncio.sleep(2.5)
        finally:
            if await pg_ctlcluster("status") != 0:
                await pg_ctlcluster("start")
        down = len(sent)
        # The pool recovers by itself (pre-ping): the senders are accepted again.
        await until(lambda: accepted_count() >= before + 6 and len(sent) > down + 6, 60)
    finally:
        stop.set()
        await asyncio.gather(*senders, return_exceptions=True)
        if await pg_ctlcluster("status") != 0:
            await pg_ctlcluster("start")

    def expected(s: Sent) -> bool:
        return (
            s.error is None
            and s.answer is not None
            and ((s.http_status == 200 and s.answer["status"] == "OK") or s.http_status == 503)
        )

    unexpected = [(s.http_status, s.answer, repr(s.error)) for s in sent if not expected(s)]
    assert not unexpected, f"answers other than OK or 503: {unexpected}"
    refused = [s for s in sent if s.http_status == 503]
    assert refused, "no request met the database down: the test did not test anything"
    for s in refused:
        assert s.answer is not None
        assert s.answer["status"] == "FAIL" and s.answer["ErrorCode"] == "20", s.answer
        assert "database" in s.answer["ErrorDesc"], s.answer

    # Each refused sender tries again: its package is accepted now, or, if the commit went
    # through while the answer was lost with the connection, answered as a duplicate.
    accepted = {
        s.answer["DocId"] for s in sent if s.answer is not None and s.answer["status"] == "OK"
    }
    for s in refused:
        again = await sender.send_edoc(s.package, SENDER)
        assert again["status"] == "OK" or again["ErrorCode"] == "24", again
        assert again["DocId"] not in accepted, again
        accepted.add(again["DocId"])

    handed_out = await poll_all(receivers, len(accepted) * len(RECIPIENTS), timeout=120)
    ledger = await settled_ledger(node.runtime.store)
    assert_exactly_once(ledger, accepted, handed_out)
    report = await verify_log(node.runtime.store)
    assert report.ok, report
    assert report.checked == len(accepted) * (1 + len(RECIPIENTS))
