"""The evidence log: every event leaves a hash-chained entry; any tampering is found.

Entries are written unchained with their events and chained by the sequencer: helpers that
read the table directly flush it first (`flush_evidence`), as `audit verify` does."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select, update

from adapters.db.models import EvidenceEntry, EvidenceHead, Message
from adapters.db.store import SqlStore
from gateway.evidence import GENESIS, entry_hash
from gateway.evidence import timestamp as evidence_time
from gateway.runtime import build_store
from gateway.services.audit import export_bundle, verify_bundle, verify_log
from tests.support.nodes import Backing, Node, NodeFactory
from tests.support.polling import poll_until, until
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
    await node.runtime.store.flush_evidence()  # the tests below tamper with chained entries


async def entries(node: Node) -> list[EvidenceEntry]:
    await node.runtime.store.flush_evidence()
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


APPENDS = 60


async def test_concurrent_appends_end_in_one_unbroken_chain(backing: Backing) -> None:
    """Appends from many concurrent transactions through two stores (two processes, in
    effect) while the sequencers of both chain small batches: one chain, no gap, no
    duplicate, every entry in it once."""
    stores = [build_store(backing.settings()), build_store(backing.settings())]
    try:

        async def append(index: int) -> None:
            await stores[index % 2].record_refusal(
                "system:test", f"{index:064x}", "TEST", f"entry {index}"
            )

        async def sequence(store: SqlStore) -> None:
            for _ in range(25):
                await store.chain_evidence(7)
                await asyncio.sleep(0.005)

        await asyncio.gather(*(append(i) for i in range(APPENDS)), *map(sequence, stores))
        await stores[1].flush_evidence()
        async with stores[0].transaction(read_only=True) as session:
            rows = (
                await session.execute(select(EvidenceEntry.seq, EvidenceEntry.payload_sha256))
            ).all()
        seqs = [seq for seq, _ in rows]
        assert None not in seqs and sorted(s for s in seqs if s is not None) == list(
            range(1, APPENDS + 1)
        )
        assert sorted(p for _, p in rows if p) == [f"{i:064x}" for i in range(APPENDS)]
        report = await verify_log(stores[0], chain_first=False)
        assert (report.ok, report.checked, report.last_seq) == (True, APPENDS, APPENDS)
        assert await stores[0].evidence_backlog() == (0, None)
    finally:
        for store in stores:
            await store.close()


async def test_an_append_takes_no_lock_on_the_head(backing: Backing) -> None:
    """The entry is written with its event, unchained; on PostgreSQL it commits while another
    transaction holds the head row (SQLite has one writer whatever the schema)."""
    store = build_store(backing.settings())
    try:
        if backing.production:
            async with store.transaction() as session:
                await session.execute(
                    select(EvidenceHead).where(EvidenceHead.id == 1).with_for_update()
                )
                await asyncio.wait_for(
                    store.record_refusal("system:test", "ab" * 32, "TEST", "under the lock"), 10
                )
        else:
            await store.record_refusal("system:test", "ab" * 32, "TEST", "under the lock")
        count, oldest = await store.evidence_backlog()
        assert count == 1 and oldest is not None
        assert await store.evidence_head(chain_pending=False) == (0, GENESIS)
        assert await store.evidence_page(0, 10, chain_pending=False) == []
        [entry] = await store.evidence_page(0, 10)  # a read chains what is pending first
        assert (entry["seq"], entry["prev_hash"], entry["payload_sha256"]) == (
            1,
            GENESIS,
            "ab" * 32,
        )
    finally:
        await store.close()


async def test_entries_a_crash_left_unchained_are_chained_at_the_next_start(
    backing: Backing, make_node: NodeFactory
) -> None:
    store = build_store(backing.settings())
    try:
        for index in range(3):
            await store.record_refusal("system:test", f"{index:064x}", "TEST", "before the crash")
        assert (await store.evidence_backlog())[0] == 3
    finally:
        await store.close()  # the process is gone before any sequencer ran
    # A minute between looks: only the pass at start can chain them in time.
    node = await make_node(evidence_chain_interval_seconds=60.0)
    store = node.runtime.store

    async def chained() -> bool:
        return (await store.evidence_backlog())[0] == 0

    await until(chained, timeout=10)
    assert (await store.evidence_head(chain_pending=False))[0] == 3
    report = await verify_log(store, chain_first=False)
    assert (report.ok, report.checked) == (True, 3)


async def test_the_node_chains_new_entries_after_their_commit(make_node: NodeFactory) -> None:
    """Woken by the commit: with a minute between looks, the entry is chained at once."""
    node = await make_node(evidence_chain_interval_seconds=60.0)
    sender = await node.add_system("sys.sender", SENDER)
    assert (await sender.send_edoc(document(SENDER, ["000.00.99.H99"]), SENDER))["ErrorCode"]
    store = node.runtime.store

    async def chained() -> bool:
        return (await store.evidence_head(chain_pending=False))[0] == 1

    await until(chained, timeout=10)
    assert await store.evidence_backlog() == (0, None)


async def test_an_entry_added_past_the_head_is_detected(node: Node) -> None:
    await exchange(node)
    seq, previous = await node.runtime.store.evidence_head()
    now = datetime.now(UTC)
    fields = {
        "seq": seq + 1,
        "at": evidence_time(now),
        "event": "accepted",
        "message_id": None,
        "delivery_id": None,
        "actor": "system:forged",
        "payload_sha256": None,
        "details": {},
        "prev_hash": previous,
    }
    async with node.runtime.store.transaction() as session:
        session.add(
            EvidenceEntry(
                seq=seq + 1,
                at=now,
                event="accepted",
                actor="system:forged",
                details={},
                prev_hash=previous,
                entry_hash=entry_hash(fields),
            )
        )
    report = await verify_log(node.runtime.store)
    assert (report.ok, report.broken_at) == (False, seq + 1) and "added" in (report.problem or "")
