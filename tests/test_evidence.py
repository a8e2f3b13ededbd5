"""The evidence log: every event leaves a hash-chained entry; any tampering is found."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update

from adapters.db.models import EvidenceEntry, Message
from gateway.services.audit import export_bundle, verify_bundle, verify_log
from tests.support.nodes import Node
from tests.support.polling import poll_until
from tests.support.samples import document

SENDER, RECEIVER = "000.00.01.H53", "000.00.02.H53"


async def exchange(node: Node, count: int = 1) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    for _ in range(count):
        assert (await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER))["status"] == "OK"
    for item in await poll_until(receiver, count):
        assert (await receiver.get_edoc(item["docId"]))["status"] == "OK"
        assert (await receiver.update_status(item["docId"], "done"))["status"] == "OK"


async def entries(node: Node) -> list[EvidenceEntry]:
    async with node.runtime.store.transaction(read_only=True) as session:
        return list(
            (await session.scalars(select(EvidenceEntry).order_by(EvidenceEntry.seq))).all()
        )


async def test_each_step_of_an_exchange_leaves_chained_evidence(node: Node) -> None:
    await exchange(node)
    log = await entries(node)
    assert [e.event for e in log] == ["accepted", "delivered", "downloaded", "acknowledged"]
    assert [e.seq for e in log] == [1, 2, 3, 4]
    assert all(b.prev_hash == a.entry_hash for a, b in zip(log, log[1:], strict=False))
    async with node.runtime.store.transaction(read_only=True) as session:
        payload = await session.scalar(select(Message.payload_sha256))
    assert log[0].payload_sha256 == payload and log[2].payload_sha256 == payload
    report = await verify_log(node.runtime.store)
    assert (report.ok, report.checked, report.last_seq) == (True, 4, 4)


async def test_a_refused_package_leaves_evidence_of_its_hash(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    package = document(SENDER, ["000.00.99.H99"])
    answer = await sender.send_edoc(package, SENDER)
    assert answer["ErrorCode"] == "18"
    [refused] = await entries(node)
    assert (refused.event, refused.payload_sha256) == (
        "refused",
        hashlib.sha256(package).hexdigest(),
    )
    assert refused.details["code"] == "RECIPIENT_UNKNOWN"


async def tamper(node: Node, statement: object) -> None:
    async with node.runtime.store.transaction() as session:
        await session.execute(statement)  # type: ignore[call-overload]


async def test_altering_one_entry_is_detected(node: Node) -> None:
    await exchange(node)
    await tamper(
        node, update(EvidenceEntry).where(EvidenceEntry.seq == 2).values(actor="system:forged")
    )
    report = await verify_log(node.runtime.store)
    assert (report.ok, report.broken_at) == (False, 2) and "altered" in (report.problem or "")


async def test_deleting_one_entry_is_detected(node: Node) -> None:
    await exchange(node)
    await tamper(node, delete(EvidenceEntry).where(EvidenceEntry.seq == 3))
    report = await verify_log(node.runtime.store)
    assert (report.ok, report.broken_at) == (False, 3) and "missing" in (report.problem or "")


async def test_reordering_entries_is_detected(node: Node) -> None:
    await exchange(node)
    await tamper(node, update(EvidenceEntry).where(EvidenceEntry.seq == 2).values(seq=-2))
    await tamper(node, update(EvidenceEntry).where(EvidenceEntry.seq == 3).values(seq=2))
    await tamper(node, update(EvidenceEntry).where(EvidenceEntry.seq == -2).values(seq=3))
    report = await verify_log(node.runtime.store)
    assert (report.ok, report.broken_at) == (False, 2)


async def test_removing_the_newest_entries_is_detected(node: Node) -> None:
    await exchange(node)
    await tamper(node, delete(EvidenceEntry).where(EvidenceEntry.seq >= 3))
    report = await verify_log(node.runtime.store)
    assert (report.ok, report.broken_at) == (False, 3) and "end" in (report.problem or "")


async def test_exported_bundle_verifies_on_its_own(node: Node, tmp_path: Path) -> None:
    await exchange(node, count=2)
    now = datetime.now(UTC)
    data, count = await export_bundle(
        node.runtime.store, now - timedelta(hours=1), now + timedelta(hours=1), "000.00.00.H53"
    )
    assert count == 8
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(data)
    assert verify_bundle(bundle).ok
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(bundle).extractall(unpacked)
    # An inspector's machine: only the bundle and a Python interpreter.
    run = subprocess.run(
        [sys.executable, "-I", "verify.py"],
        cwd=unpacked,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and run.stdout.startswith("intact"), run.stdout + run.stderr
    lines = (unpacked / "entries.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"delivered"', '"downloaded"')
    (unpacked / "entries.jsonl").write_text("\n".join(lines) + "\n")
    run = subprocess.run(
        [sys.executable, "-I", "verify.py"],
        cwd=unpacked,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and "BROKEN at entry 2" in run.stdout
