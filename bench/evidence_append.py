"""Evidence appends with and without the global head-row lock, on PostgreSQL.

N accept-shaped transactions from C concurrent connections (raw asyncpg): each inserts an
event row and appends two evidence entries, as acceptance does. Two modes, same run, same
fresh database (migrated to head):

- `head-lock`: the old append — lock the head row (`SELECT … FOR UPDATE`), insert each entry
  chained, move the head; the lock is held until commit, so every transaction waits for it.
- `sequencer`: the entries are inserted unchained (no lock) and the node's own sequencer
  (`gateway.services.evidence_sequencer` over `SqlStore.chain_evidence`, in this process,
  woken after each commit) chains them in batches meanwhile.

Both chains are checked by `gateway.services.audit.verify_log` afterwards. Printed: the machine,
the command, transactions/s and entries/s per mode and their ratio, and for the sequencer its
lag — the most entries seen unchained and the oldest unchained age (sampled every 20 ms), and
how long after the last commit the chain was complete.

    .venv/bin/python bench/evidence_append.py                      # 5000 transactions, 32 clients
    .venv/bin/python bench/evidence_append.py --transactions 20000 --clients 8,32,64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from common import PG_ADMIN, PG_HOST, command_line, hardware
from cryptography.fernet import Fernet

from adapters.db.engine import create_engine
from adapters.db.migrate import migrate
from adapters.db.store import SqlStore
from adapters.secretbox import SecretBox
from gateway.evidence import entry_hash
from gateway.evidence import timestamp as evidence_time
from gateway.services.audit import verify_log
from gateway.services.evidence_sequencer import EvidenceSequencer
from gateway.settings import Settings

INSERT_EVENT = "INSERT INTO bench_events (public_id, body) VALUES ($1, $2)"
INSERT_CHAINED = (
    "INSERT INTO evidence (seq, at, event, message_id, delivery_id, actor, payload_sha256, "
    "details, prev_hash, entry_hash) VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $9)"
)
INSERT_UNCHAINED = (
    "INSERT INTO evidence (at, event, message_id, delivery_id, actor, payload_sha256, details) "
    "VALUES ($1, $2, $3, NULL, $4, $5, $6)"
)
ACTOR = "system:bench.sender"
EVENTS = ("accepted", "delivered")


async def head_lock_tx(connection: asyncpg.Connection, index: int) -> None:
    message_id, sha, now = str(uuid.uuid4()), secrets.token_hex(32), datetime.now(UTC)
    async with connection.transaction():
        await connection.execute(INSERT_EVENT, message_id, f"package {index}")
        head = await connection.fetchrow(
            "SELECT seq, entry_hash FROM evidence_head WHERE id = 1 FOR UPDATE"
        )
        seq, previous = head["seq"], head["entry_hash"]
        for event in EVENTS:
            seq += 1
            details = {"index": index}
            digest = entry_hash(
                {
                    "seq": seq,
                    "at": evidence_time(now),
                    "event": event,
                    "message_id": message_id,
                    "delivery_id": None,
                    "actor": ACTOR,
                    "payload_sha256": sha,
                    "details": details,
                    "prev_hash": previous,
                }
            )
            await connection.execute(
                INSERT_CHAINED,
                seq,
                now,
                event,
                message_id,
                ACTOR,
                sha,
                json.dumps(details),
                previous,
                digest,
            )
            previous = digest
        await connection.execute(
            "UPDATE evidence_head SET seq = $1, entry_hash = $2 WHERE id = 1", seq, previous
        )


async def unchained_tx(connection: asyncpg.Connection, index: int) -> None:
    message_id, sha, now = str(uuid.uuid4()), secrets.token_hex(32), datetime.now(UTC)
    async with connection.transaction():
        await connection.execute(INSERT_EVENT, message_id, f"package {index}")
        for event in EVENTS:
            await connection.execute(
                INSERT_UNCHAINED, now, event, message_id, ACTOR, sha, json.dumps({"index": index})
            )


async def drive(
    pool: asyncpg.Pool,
    transactions: int,
    clients: int,
    work: Callable[[asyncpg.Connection, int], Awaitable[None]],
    after_commit: Callable[[], None],
) -> float:
    counter = iter(range(transactions))

    async def client() -> None:
        async with pool.acquire() as connection:
            for index in counter:
                await work(connection, index)
                after_commit()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - start


class Lag:
    """The sequencer's lag while the clients run: the most entries seen unchained, and the
    oldest unchained entry's age (`SqlStore.evidence_backlog`, every 20 ms)."""

    def __init__(self, store: SqlStore) -> None:
        self.store, self.count, self.age = store, 0, 0.0

    async def sample(self) -> None:
        while True:
            count, oldest = await self.store.evidence_backlog()
            self.count = max(self.count, count)
            if oldest is not None:
                self.age = max(self.age, (datetime.now(UTC) - oldest).total_seconds())
            await asyncio.sleep(0.02)


async def reset(pool: asyncpg.Pool) -> None:
    await pool.execute("TRUNCATE evidence, bench_events")
    await pool.execute("UPDATE evidence_head SET seq = 0, entry_hash = $1 WHERE id = 1", "0" * 64)


async def run(url: str, asyncpg_url: str, transactions: int, client_counts: list[int]) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="lt-bench-evidence-")),
        secret_key=key,
        environment="test",
    )
    pool = await asyncpg.create_pool(asyncpg_url, min_size=8, max_size=max(client_counts) + 2)
    store = SqlStore(create_engine(url), SecretBox(key))
    try:
        await pool.execute(
            "CREATE TABLE bench_events (id BIGSERIAL PRIMARY KEY, public_id TEXT, body TEXT)"
        )
        print(
            f"{transactions} transactions a row, each: 1 event row + {len(EVENTS)} evidence "
            "entries; sequencer batch "
            f"{settings.evidence_chain_batch}, interval {settings.evidence_chain_interval_seconds}"
            f" s, gather {settings.evidence_chain_gather_seconds} s"
        )
        print(
            f"{'clients':>7}  {'head-lock tx/s':>14}  {'sequencer tx/s':>14}  {'ratio':>5}  "
            f"{'max unchained':>13}  {'max lag ms':>10}  {'drain ms':>8}  chains"
        )
        for clients in client_counts:
            await reset(pool)
            locked = await drive(pool, transactions, clients, head_lock_tx, lambda: None)
            locked_ok = (await verify_log(store, chain_first=False)).ok

            await reset(pool)
            sequencer = EvidenceSequencer(settings, store)
            task = asyncio.create_task(sequencer.run())
            lag = Lag(store)
            sampler = asyncio.create_task(lag.sample())
            free = await drive(pool, transactions, clients, unchained_tx, sequencer.notify)
            done = time.perf_counter()
            while (await store.evidence_backlog())[0]:
                await asyncio.sleep(0.005)
            drain = time.perf_counter() - done
            sampler.cancel()
            task.cancel()
            report = await verify_log(store, chain_first=False)
            free_ok = report.ok and report.checked == transactions * len(EVENTS)
            print(
                f"{clients:>7}  {transactions / locked:>14.0f}  {transactions / free:>14.0f}  "
                f"{locked / free:>5.2f}  {lag.count:>13}  {lag.age * 1000:>10.0f}  "
                f"{drain * 1000:>8.0f}  {'intact' if locked_ok and free_ok else 'BROKEN'}"
            )
    finally:
        await store.close()
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=5000)
    parser.add_argument("--clients", default="32", help="comma-separated, e.g. 8,32,64")
    args = parser.parse_args()
    print(command_line())
    print(hardware())
    database = f"lt_bench_evidence_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+asyncpg://postgres@{PG_HOST}/{database}"

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{database}"'))
    try:
        migrate(url)
        asyncio.run(
            run(
                url,
                f"postgresql://postgres@{PG_HOST}/{database}",
                args.transactions,
                [int(c) for c in args.clients.split(",")],
            )
        )
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
