"""Migration 0008 (the evidence sequencer) keeps an existing chain as it was, and the chain
goes on from it; downgrading keeps the chained entries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import text

from adapters.db.engine import create_engine
from adapters.db.migrate import alembic_config
from gateway.evidence import GENESIS, entry_hash
from gateway.evidence import timestamp as evidence_time
from gateway.runtime import build_store
from gateway.services.audit import verify_log
from tests.support.nodes import Backing

BEFORE = "0006"


async def _old_chain(url: str, count: int) -> None:
    """Entries as the schema before 0008 held them: chained as they were appended."""
    engine = create_engine(url)
    previous, start = GENESIS, datetime.now(UTC) - timedelta(minutes=5)
    try:
        async with engine.begin() as connection:
            for seq in range(1, count + 1):
                at = start + timedelta(seconds=seq)
                fields = {
                    "seq": seq,
                    "at": evidence_time(at),
                    "event": "refused",
                    "message_id": None,
                    "delivery_id": None,
                    "actor": "system:old",
                    "payload_sha256": f"{seq:064x}",
                    "details": {"code": "TEST"},
                    "prev_hash": previous,
                }
                digest = entry_hash(fields)
                await connection.execute(
                    text(
                        "INSERT INTO evidence (seq, at, event, actor, payload_sha256, details, "
                        "prev_hash, entry_hash) VALUES (:seq, :at, 'refused', 'system:old', "
                        ":sha, :details, :prev, :hash)"
                    ),
                    {
                        "seq": seq,
                        "at": at,
                        "sha": f"{seq:064x}",
                        "details": '{"code": "TEST"}',
                        "prev": previous,
                        "hash": digest,
                    },
                )
                previous = digest
            await connection.execute(
                text("UPDATE evidence_head SET seq = :seq, entry_hash = :hash WHERE id = 1"),
                {"seq": count, "hash": previous},
            )
    finally:
        await engine.dispose()


async def test_an_existing_chain_survives_the_migration_and_goes_on(backing: Backing) -> None:
    settings = backing.settings()
    config = alembic_config(settings.resolved_database_url)
    await asyncio.to_thread(command.downgrade, config, BEFORE)
    await _old_chain(settings.resolved_database_url, 3)
    await asyncio.to_thread(command.upgrade, config, "head")
    store = build_store(settings)
    try:
        report = await verify_log(store, chain_first=False)
        assert (report.ok, report.checked, report.last_seq) == (True, 3, 3)
        await store.record_refusal("system:new", "ff" * 32, "TEST", "after the migration")
        await store.record_refusal("system:new", "ee" * 32, "TEST", "left unchained")
        assert await store.chain_evidence(1) == 1
        report = await verify_log(store, chain_first=False)
        assert (report.ok, report.checked) == (True, 4)
        async with store.transaction(read_only=True) as session:
            rows = (await session.execute(text("SELECT id, seq FROM evidence ORDER BY id"))).all()
        assert [tuple(r) for r in rows] == [(1, 1), (2, 2), (3, 3), (4, 4), (5, None)]
    finally:
        await store.close()
    # Down again: the chained entries stay (the unchained one cannot), and the chain holds.
    await asyncio.to_thread(command.downgrade, config, BEFORE)
    await asyncio.to_thread(command.upgrade, config, "head")
    store = build_store(settings)
    try:
        report = await verify_log(store)
        assert (report.ok, report.checked) == (True, 4)
    finally:
        await store.close()
