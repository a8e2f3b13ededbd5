"""Small packages end to end (issue #11): accepted/s, submit→available, server CPU per package,
against two baselines measured in the same run.

What is measured. N distinct packages of about `--size-kb` KiB — a typical letter: the SDK
sample's header and one small real PDF (text page + a scanned-stamp image), so 10 KiB by
default — unsigned, and the same letters signed (RSA-SHA256, enveloped, by a test CA's agency
certificate; the node trusts the CA through LIENTHONG_TRUST_DIR, policy `verify-if-present`, so
every signed package is verified: XML-DSig, chain, CRL). Each is sent through `/vxp/sendEdoc`
(signed like the SDK) and through `POST /api/v1/packages` by C concurrent clients (one HTTP
connection each) to a real `lienthong serve` process, on the embedded backend (SQLite +
in-process broker) and on production (PostgreSQL + RabbitMQ). Every run gets a fresh node and
first sends `--warmup` other packages the whole way, unmeasured.

Per row: accepted/s (packages answered OK / wall time of the submit phase); p50/p99
submit→available (the client's clock just before the request to the delivery's `available_at`
in the database: accept, outbox relay, broker, inbox consumer); CPU ms per package of the
process doing the node's work (`lienthong serve`, utime+stime from /proc/<pid>/stat, from the
start of the submit phase until every delivery is available; for the baselines, this
process), of the clients (this process, HTTP rows), and of every `postgres` and `beam.smp`
process of the machine (production: machine-wide, other users' load included).

Baselines, same packages, same C, same run:
  bare   the node without HTTP: an in-process `Runtime` (spool + `runtime.submit`, with its
         relay and consumers). HTTP/bare is the cost of uvicorn, auth, streaming, hash check.
         Also counts the SQL statements and transactions per package (SQLAlchemy events).
  infra  the infrastructure alone: per package the rows acceptance writes (message, delivery,
         its timeline row, outbox, evidence entry chained through the locked head row) in
         one transaction with raw asyncpg / aiosqlite SQL, no parsing or checks; published
         with confirms (aio-pika to quorum queues like the node's; the embedded broker), the
         outbox row marked, and consumed (delivery available + timeline + evidence, one
         transaction). `infra-free` is the same with evidence rows that are not chained (no
         head row lock): what the database allows without the node's one serialising lock.
Ratios: accepted/s of a row over the bare row (same signing, C) and the infra row (same C).

`--size-kb 359` (or `sdk`) is the old run of bench/submit_throughput.py: the SDK sample with
its 359 KiB attachment, unchanged.

    python bench/small_packages.py [--backend embedded,production] [--packages 1000]
        [--clients 8,32,64] [--api vxp,rest] [--signing unsigned,signed] [--size-kb 10]
        [--warmup 20] [--run-timeout 300] [--time-limit 3600] [--no-infra-free]
        [--sql-profile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiosqlite
import asyncpg
import common
from common import (
    AMQP,
    FROM_CODE,
    INFRA_PROCESSES,
    SENDER,
    TO_CODE,
    BenchPki,
    Deadline,
    RunResult,
    named_processes_cpu_seconds,
    own_cpu_seconds,
    percentile,
)

from adapters.broker.embedded import EmbeddedBroker
from adapters.broker.topology import Topology
from gateway.codes import routing_key
from gateway.edxml.parser import parse_package
from gateway.runtime import build_store
from gateway.settings import Settings
from gateway.types import BrokerEnvelope, RouteKind, RoutingKey

SHARDS = 4
PG_POOL = 20  # the node's engine: pool_size 10 + max_overflow 10
PREFETCH = 32  # the node's broker_prefetch
DELIVERED_DETAILS = json.dumps({"recipient": TO_CODE, "system": "bench.receiver"})


# -- packages ----------------------------------------------------------------------------------


def build(count: int, size: str) -> list[bytes]:
    if size in ("sdk", "359"):
        return common.sdk_packages(count)
    return common.letter_packages(count, float(size))


def _sign_all(pki: BenchPki, packages: list[bytes]) -> list[bytes]:
    return [pki.sign(p) for p in packages]


def sign_all(pki: BenchPki, packages: list[bytes]) -> list[bytes]:
    """Signing is mostly `cryptography` checking the private key (~40 ms each): in parallel."""
    workers = max(1, min(len(packages) // 50, (os.cpu_count() or 1)))
    if workers == 1:
        return _sign_all(pki, packages)
    chunks = [packages[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        signed = list(pool.map(_sign_all, [pki] * workers, chunks))
    out: list[bytes] = [b""] * len(packages)
    for i, chunk in enumerate(signed):
        out[i::workers] = chunk
    return out


# -- the infrastructure baseline ---------------------------------------------------------------


@dataclass
class Shape:
    """What acceptance writes for one package, taken from the real package once."""

    header: str
    subject: str
    size: int
    details: str


def shape_of(package: bytes, work: Path) -> Shape:
    parsed = parse_package(package, work_dir=work)
    header = parsed.model.model_dump(
        mode="json", exclude_none=True, exclude={"references", "attachments"}
    )
    details = {
        "kind": "edoc",
        "from": FROM_CODE,
        "document_id": parsed.document_id,
        "recipients": {TO_CODE: str(uuid.uuid4())},
        "attachments": {"cid:1": hashlib.sha256(package).hexdigest()},
        "signature": "absent",
    }
    return Shape(
        json.dumps(header, ensure_ascii=False),
        parsed.model.header.subject or "",
        len(package),
        json.dumps(details, ensure_ascii=False),
    )


class InfraDb:
    """Raw SQL for the rows of one package, on asyncpg or aiosqlite."""

    def __init__(self, chained: bool) -> None:
        self.chained = chained
        self._free_seq = itertools.count(1_000_000_000)

    async def accept(self, index: int, shape: Shape, now: datetime) -> tuple[int, str]:
        raise NotImplementedError

    async def mark_published(self, outbox_id: int, now: datetime) -> None:
        raise NotImplementedError

    async def make_available(self, delivery_id: str, now: datetime) -> bool:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def entry_hash(prev: str, what: str) -> str:
        return hashlib.sha256(f"{prev}|{what}".encode()).hexdigest()


MESSAGE_COLUMNS = (
    "public_id, kind, sender_system_id, from_code, document_id, code_number, "
    "code_notation, subject, business_type, dedup_key, payload_sha256, "
    "payload_size, warnings, received_at, header, signed, signature_outcome, "
    "signature"
)
DELIVERY_COLUMNS = (
    "public_id, message_id, kind, recipient_code, requested_code, route, "
    "system_id, state, state_changed_at, attempts, fail_count, lease_count, "
    "created_at"
)


def message_values(index: int, shape: Shape, now: Any) -> tuple[Any, ...]:
    document_id = f"{FROM_CODE},2026/01/01,infra-{index}-{uuid.uuid4().hex[:6]}/BENCH"
    return (
        str(uuid.uuid4()),
        "edoc",
        SENDER,
        FROM_CODE,
        document_id,
        f"{index}",
        "STTTT",
        shape.subject,
        0,
        f"{FROM_CODE}|{document_id}",
        hashlib.sha256(document_id.encode()).hexdigest(),
        shape.size,
        "[]",
        now,
        shape.header,
        False,
        "absent",
        '{"outcome": "absent", "code": null}',
    )


class PgInfra(InfraDb):
    def __init__(self, pool: asyncpg.Pool, chained: bool) -> None:
        super().__init__(chained)
        self.pool = pool

    async def _evidence(
        self,
        connection: asyncpg.Connection,
        event: str,
        message_id: str,
        delivery_id: str | None,
        details: str,
        now: datetime,
    ) -> None:
        if self.chained:
            head = await connection.fetchrow(
                "SELECT seq, entry_hash FROM evidence_head WHERE id = 1 FOR UPDATE"
            )
            seq, prev = head["seq"] + 1, head["entry_hash"]
        else:
            seq, prev = next(self._free_seq), "0" * 64
        digest = self.entry_hash(prev, f"{seq}|{event}|{message_id}|{details}")
        await connection.execute(
            "INSERT INTO evidence (seq, at, event, message_id, delivery_id, actor, "
            "payload_sha256, details, prev_hash, entry_hash) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            seq,
            now,
            event,
            message_id,
            delivery_id,
            "system:bench.sender",
            digest,
            details,
            prev,
            digest,
        )
        if self.chained:
            await connection.execute(
                "UPDATE evidence_head SET seq = $1, entry_hash = $2 WHERE id = 1", seq, digest
            )

    async def accept(self, index: int, shape: Shape, now: datetime) -> tuple[int, str]:
        values = message_values(index, shape, now)
        delivery_public = str(uuid.uuid4())
        async with self.pool.acquire() as connection, connection.transaction():
            message_id = await connection.fetchval(
                f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES "
                f"({', '.join(f'${i}' for i in range(1, 19))}) RETURNING id",
                *values,
            )
            delivery_id = await connection.fetchval(
                f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES "
                "($1, $2, 'edoc', $3, $3, 'inbox', $4, 'accepted', $5, 0, 0, 0, $5) "
                "RETURNING id",
                delivery_public,
                message_id,
                TO_CODE,
                "bench.receiver",
                now,
            )
            await connection.execute(
                "INSERT INTO delivery_events (delivery_id, at, from_state, to_state, actor, "
                "reason, attempt) VALUES ($1, $2, NULL, 'accepted', $3, $4, 0)",
                delivery_id,
                now,
                "system:bench.sender",
                f"accepted for {TO_CODE}",
            )
            outbox_id = await connection.fetchval(
                "INSERT INTO outbox (delivery_id, routing_key, payload, created_at, "
                "publish_attempts) VALUES ($1, $2, $3, $4, 0) RETURNING id",
                delivery_id,
                routing_key(RouteKind.INBOX, TO_CODE, SHARDS),
                json.dumps({"delivery": delivery_public}),
                now,
            )
            await self._evidence(connection, "accepted", values[0], None, shape.details, now)
        return outbox_id, delivery_public

    async def mark_published(self, outbox_id: int, now: datetime) -> None:
        await self.pool.execute(
            "UPDATE outbox SET published_at = $1, claimed_by = NULL, "
            "claimed_until = NULL WHERE id = $2",
            now,
            outbox_id,
        )

    async def make_available(self, delivery_id: str, now: datetime) -> bool:
        async with self.pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "UPDATE deliveries SET state = 'available', state_changed_at = $2, "
                "available_at = $2 WHERE public_id = $1 AND state IN ('accepted', 'queued') "
                "RETURNING id, message_id",
                delivery_id,
                now,
            )
            if row is None:
                return False
            await connection.execute(
                "INSERT INTO delivery_events (delivery_id, at, from_state, to_state, actor, "
                "reason, attempt) VALUES ($1, $2, 'accepted', 'available', 'consumer', $3, 0)",
                row["id"],
                now,
                "in the inbox of bench.receiver",
            )
            await self._evidence(
                connection, "delivered", str(row["message_id"]), delivery_id, DELIVERED_DETAILS, now
            )
        return True

    async def close(self) -> None:
        await self.pool.close()


def sqlite_time(value: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class SqliteInfra(InfraDb):
    """One connection, writers queued in the process (as the node's store does), WAL."""

    def __init__(self, connection: aiosqlite.Connection, chained: bool) -> None:
        super().__init__(chained)
        self.db = connection
        self.lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path, chained: bool) -> SqliteInfra:
        connection = await aiosqlite.connect(path, isolation_level=None, timeout=30)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            await connection.execute(f"PRAGMA {pragma}")
        return cls(connection, chained)

    @contextlib.asynccontextmanager
    async def _write(self) -> Any:
        async with self.lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("COMMIT")

    async def _evidence(
        self, event: str, message_id: str, delivery_id: str | None, details: str, now: str
    ) -> None:
        if self.chained:
            async with self.db.execute(
                "SELECT seq, entry_hash FROM evidence_head WHERE id = 1"
            ) as cursor:
                head = await cursor.fetchone()
            assert head is not None
            seq, prev = head[0] + 1, head[1]
        else:
            seq, prev = next(self._free_seq), "0" * 64
        digest = self.entry_hash(prev, f"{seq}|{event}|{message_id}|{details}")
        await self.db.execute(
            "INSERT INTO evidence (seq, at, event, message_id, delivery_id, actor, "
            "payload_sha256, details, prev_hash, entry_hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                seq,
                now,
                event,
                message_id,
                delivery_id,
                "system:bench.sender",
                digest,
                details,
                prev,
                digest,
            ),
        )
        if self.chained:
            await self.db.execute(
                "UPDATE evidence_head SET seq = ?, entry_hash = ? WHERE id = 1", (seq, digest)
            )

    async def accept(self, index: int, shape: Shape, now: datetime) -> tuple[int, str]:
        stamp = sqlite_time(now)
        values = message_values(index, shape, stamp)
        delivery_public = str(uuid.uuid4())
        async with self._write() as db:
            cursor = await db.execute(
                f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES ({', '.join('?' * 18)})", values
            )
            message_id = cursor.lastrowid
            cursor = await db.execute(
                f"INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES "
                "(?, ?, 'edoc', ?, ?, 'inbox', ?, 'accepted', ?, 0, 0, 0, ?)",
                (delivery_public, message_id, TO_CODE, TO_CODE, "bench.receiver", stamp, stamp),
            )
            delivery_id = cursor.lastrowid
            await db.execute(
                "INSERT INTO delivery_events (delivery_id, at, from_state, to_state, actor, "
                "reason, attempt) VALUES (?, ?, NULL, 'accepted', ?, ?, 0)",
                (delivery_id, stamp, "system:bench.sender", f"accepted for {TO_CODE}"),
            )
            cursor = await db.execute(
                "INSERT INTO outbox (delivery_id, routing_key, payload, created_at, "
                "publish_attempts) VALUES (?, ?, ?, ?, 0)",
                (
                    delivery_id,
                    routing_key(RouteKind.INBOX, TO_CODE, SHARDS),
                    json.dumps({"delivery": delivery_public}),
                    stamp,
                ),
            )
            outbox_id = cursor.lastrowid
            await self._evidence("accepted", str(values[0]), None, shape.details, stamp)
        assert outbox_id is not None
        return outbox_id, delivery_public

    async def mark_published(self, outbox_id: int, now: datetime) -> None:
        async with self._write() as db:
            await db.execute(
                "UPDATE outbox SET published_at = ?, claimed_by = NULL, "
                "claimed_until = NULL WHERE id = ?",
                (sqlite_time(now), outbox_id),
            )

    async def make_available(self, delivery_id: str, now: datetime) -> bool:
        stamp = sqlite_time(now)
        async with self._write() as db:
            async with db.execute(
                "UPDATE deliveries SET state = 'available', state_changed_at = ?, "
                "available_at = ? WHERE public_id = ? AND state IN ('accepted', 'queued') "
                "RETURNING id, message_id",
                (stamp, stamp, delivery_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return False
            await db.execute(
                "INSERT INTO delivery_events (delivery_id, at, from_state, to_state, actor, "
                "reason, attempt) VALUES (?, ?, 'accepted', 'available', 'consumer', ?, 0)",
                (row[0], stamp, "in the inbox of bench.receiver"),
            )
            await self._evidence("delivered", str(row[1]), delivery_id, DELIVERED_DETAILS, stamp)
        return True

    async def close(self) -> None:
        await self.db.close()


class InfraBroker:
    """Publish with confirms, consume with acks: aio-pika, or the embedded broker."""

    async def publish(self, key: str, body: bytes, message_id: str) -> None:
        raise NotImplementedError

    async def consume(self, handler: Callable[[bytes], Any]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class RabbitInfra(InfraBroker):
    """A topic exchange into SHARDS quorum queues (the node's topology, own names), persistent
    messages, mandatory publishes with confirms, manual acks, prefetch as the node's."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self.exchange: aio_pika.abc.AbstractExchange | None = None
        self.queues = [f"{namespace}.infra.s{k}" for k in range(SHARDS)]

    async def start(self) -> None:
        self.connection = await aio_pika.connect(AMQP, timeout=10)
        publisher = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self.exchange = await publisher.declare_exchange(
            f"{self.namespace}.infra", aio_pika.ExchangeType.TOPIC, durable=True
        )
        for shard, name in enumerate(self.queues):
            queue = await publisher.declare_queue(
                name, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.bind(self.exchange, f"inbox.#.s{shard}")

    async def publish(self, key: str, body: bytes, message_id: str) -> None:
        assert self.exchange is not None
        await self.exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            key,
            mandatory=True,
            timeout=5,
        )

    async def consume(self, handler: Callable[[bytes], Any]) -> None:
        assert self.connection is not None
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await handler(message.body)
            await message.ack()

        for name in self.queues:
            queue = await channel.declare_queue(
                name, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await queue.consume(on_message)

    async def close(self) -> None:
        if self.connection is None:
            return
        with contextlib.suppress(Exception):
            await self.connection.close()
        connection = await aio_pika.connect(AMQP, timeout=10)
        async with connection:
            channel = await connection.channel()
            for name in self.queues:
                await channel.queue_delete(name)
            await channel.exchange_delete(f"{self.namespace}.infra")


class EmbeddedInfra(InfraBroker):
    def __init__(self) -> None:
        self.broker = EmbeddedBroker(Topology("infra", SHARDS), prefetch=PREFETCH)

    async def start(self) -> None:
        await self.broker.start()

    async def publish(self, key: str, body: bytes, message_id: str) -> None:
        await self.broker.publish(BrokerEnvelope(RoutingKey(key), body, message_id))

    async def consume(self, handler: Callable[[bytes], Any]) -> None:
        async def on_envelope(envelope: BrokerEnvelope) -> None:
            await handler(envelope.body)

        await self.broker.consume(on_envelope)

    async def close(self) -> None:
        await self.broker.close()


async def infra_run(
    settings: Settings,
    shape: Shape,
    count: int,
    concurrency: int,
    chained: bool,
    timeout: float | None,
    name: str,
) -> RunResult:
    """`count` packages' worth of rows, publishes and consumptions from `concurrency`
    workers; latency from the worker's clock before its transaction to the consumer's
    `available_at`."""
    result = RunResult(name)
    production = common.database_of(settings) is not None
    db: InfraDb
    broker: RabbitInfra | EmbeddedInfra
    if production:
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=min(concurrency, PG_POOL)
        )
        db, broker = PgInfra(pool, chained), RabbitInfra(settings.broker_namespace)
    else:
        db = await SqliteInfra.open(settings.data_dir / "lienthong.sqlite3", chained)
        broker = EmbeddedInfra()
    available: dict[str, float] = {}
    everything = asyncio.Event()
    stats = common.PgStats(settings)
    try:
        await broker.start()

        async def consume(body: bytes) -> None:
            delivery = json.loads(body)["delivery"]
            now = datetime.now(UTC)
            if await db.make_available(delivery, now):
                available[delivery] = now.timestamp()
                if len(available) >= count:
                    everything.set()

        await broker.consume(consume)
        key = routing_key(RouteKind.INBOX, TO_CODE, SHARDS)

        async def one(_worker: int, index: int, _package: bytes) -> None:
            result.started[index] = time.time()
            try:
                now = datetime.now(UTC)
                outbox_id, delivery = await db.accept(index, shape, now)
                await broker.publish(
                    key, json.dumps({"delivery": delivery}).encode(), str(outbox_id)
                )
                await db.mark_published(outbox_id, datetime.now(UTC))
            except Exception as error:  # counted and shown, not raised
                result.failures.append(f"#{index}: {type(error).__name__}: {error}")
                return
            result.deliveries[index] = [delivery]

        await stats.read("before")
        cpu0, infra0 = own_cpu_seconds(), named_processes_cpu_seconds(INFRA_PROCESSES)
        try:
            result.submit_seconds = await common.run_workers(
                [b""] * count, concurrency, one, timeout
            )
        except TimeoutError:
            result.failures.append(f"submit phase cut after {timeout:.0f} s")
            result.submit_seconds = timeout or 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everything.wait(), common.AVAILABLE_TIMEOUT)
        result.cpu_seconds = own_cpu_seconds() - cpu0
        result.infra_cpu_seconds = named_processes_cpu_seconds(INFRA_PROCESSES) - infra0
        wanted = {d: i for i, ids in result.deliveries.items() for d in ids}
        result.unavailable = sum(1 for d in wanted if d not in available)
        result.latencies_ms = [
            (available[d] - result.started[i]) * 1000 for d, i in wanted.items() if d in available
        ]
    finally:
        await broker.close()
        await db.close()
    if production:
        await stats.read("after")  # the pool closed: its backends flushed their counters
        result.counters.update(stats.delta())
    return result


# -- the matrix --------------------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    size: str
    signing: str
    run: str  # vxp, rest, bare, infra, infra-free
    clients: int
    result: RunResult
    package_bytes: float
    outcomes: dict[str, int] | None = None


async def signature_outcomes(settings: Settings) -> dict[str, int]:
    store = build_store(settings)
    try:
        from sqlalchemy import text

        async with store.engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT coalesce(signature_outcome, '?'), count(*) FROM messages GROUP BY 1"
                    )
                )
            ).all()
        return {str(outcome): int(n) for outcome, n in rows}
    finally:
        await store.close()


class Matrix:
    def __init__(self, args: argparse.Namespace, deadline: Deadline, work: Path) -> None:
        self.args, self.deadline, self.work = args, deadline, work
        self.rows: list[Row] = []
        self.skipped: list[str] = []
        self.pki = common.make_pki(work / "trust")

    def node(self, backend: str) -> Any:
        return common.isolated_node(
            backend, trust_dir=self.pki.trust_dir, signature_policy="verify-if-present"
        )

    def run(
        self,
        backend: str,
        size: str,
        clients: int,
        sets: dict[str, tuple[list[bytes], list[bytes]]],
    ) -> None:
        args = self.args
        first = next(iter(sets.values()))[0][0]
        plan: list[tuple[str, str]] = [("", "infra")]
        if not args.no_infra_free:
            plan.append(("", "infra-free"))
        for signing in args.signing:
            plan += [(signing, "bare")] + [(signing, api) for api in args.api]
        for signing, run in plan:
            label = f"{backend} {size} KiB {signing or '-'} {run} C={clients}"
            if self.deadline.passed:
                self.skipped.append(label)
                continue
            timeout = min(args.run_timeout, max(10.0, self.deadline.left))
            packages, warmup = sets[signing] if signing else sets[args.signing[0]]
            outcomes = None
            try:
                with self.node(backend) as settings:
                    if run.startswith("infra"):
                        shape = shape_of(first, self.work)
                        result = asyncio.run(
                            infra_run(
                                settings,
                                shape,
                                len(packages),
                                clients,
                                chained=run == "infra",
                                timeout=timeout,
                                name=run,
                            )
                        )
                    elif run == "bare":
                        result = asyncio.run(
                            common.bare_run(settings, packages, clients, warmup, timeout)
                        )
                    else:
                        workers = args.workers if backend == "production" else 1
                        result = asyncio.run(
                            common.http_run(
                                settings,
                                packages,
                                clients,
                                run,
                                warmup,
                                timeout,
                                name=run if workers == 1 else f"{run} w{workers}",
                                workers=workers,
                            )
                        )
                    if signing == "signed" and not run.startswith("infra"):
                        outcomes = asyncio.run(signature_outcomes(settings))
            except Exception as error:  # the row is reported as failed, the matrix goes on
                result = RunResult(run)
                result.failures.append(f"row failed: {type(error).__name__}: {error}"[:2000])
            size_bytes = sum(len(p) for p in packages) / len(packages)
            row = Row(backend, size, signing, run, clients, result, size_bytes, outcomes)
            self.rows.append(row)
            print(
                f"  done: {label}: {result.rate:.1f} accepted/s, p50 "
                f"{percentile(result.latencies_ms, 0.5):.0f} ms, {len(result.failures)} "
                f"failed, {result.unavailable} unavailable; load average "
                + " ".join(f"{x:.2f}" for x in os.getloadavg()),
                flush=True,
            )


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def ratio(a: float, b: float) -> str:
    return f"x{a / b:.2f}" if a and b and not math.isnan(a) and not math.isnan(b) else "-"


def report(matrix: Matrix) -> None:
    rows = matrix.rows
    header = (
        f"{'backend':<10} {'KiB':>5} {'signing':<8} {'run':<10} {'C':>3} {'ok':>6} "
        f"{'acc/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'cpu ms':>7} {'cli ms':>7} "
        f"{'db+mq':>6} {'/bare':>6} {'/infra':>6} {'p50/bare':>8}"
    )
    print("\n" + header + "\n" + "-" * len(header))

    def find(backend: str, size: str, run: str, clients: int, signing: str = "") -> Row | None:
        return next(
            (
                r
                for r in rows
                if (r.backend, r.size, r.run, r.clients) == (backend, size, run, clients)
                and (not signing or r.signing == signing)
            ),
            None,
        )

    for row in rows:
        r = row.result
        bare = find(row.backend, row.size, "bare", row.clients, row.signing)
        infra = find(row.backend, row.size, "infra", row.clients)
        p50 = percentile(r.latencies_ms, 0.5)
        bare_ratio = (
            ratio(r.rate, bare.result.rate)
            if bare and row.run not in ("bare", "infra", "infra-free")
            else ""
        )
        infra_ratio = ratio(r.rate, infra.result.rate) if infra and row.run != "infra" else ""
        p50_ratio = (
            ratio(p50, percentile(bare.result.latencies_ms, 0.5))
            if bare and row.run in ("vxp", "rest")
            else ""
        )
        infra_cpu = (
            ms(r.per_package_ms(r.infra_cpu_seconds)) if row.backend == "production" else "-"
        )
        print(
            f"{row.backend:<10} {row.package_bytes / 1024:>5.1f} {row.signing or '-':<8} "
            f"{row.run:<10} {row.clients:>3} {r.accepted:>6} {r.rate:>7.1f} {p50:>7.0f} "
            f"{percentile(r.latencies_ms, 0.99):>7.0f} {ms(r.per_package_ms(r.cpu_seconds)):>7} "
            f"{ms(r.per_package_ms(r.loader_cpu_seconds)):>7} "
            f"{infra_cpu:>6} {bare_ratio:>6} "
            f"{infra_ratio:>6} {p50_ratio:>8}"
        )
    print(
        "\nacc/s: accepted packages per second of the submit phase; p50/p99: submit→available"
        "\ncpu ms: CPU per package of the process doing the node's work (lienthong serve; this"
        " process for bare/infra);\ncli ms: the clients (this process) for HTTP rows; db+mq:"
        " every postgres + beam.smp process of the machine\n(other users included);"
        " /bare, /infra: accepted/s over the baseline row of the same C (and signing)."
    )
    counted = [row for row in rows if row.result.counters]
    if counted:
        print(
            "\nper package (bare: the node's SQL, SQLAlchemy events; pg: pg_stat_database of "
            "the node's database):"
        )
        for row in counted:
            n = row.result.accepted or 1
            counts = row.result.counters
            parts = [
                f"{name.removeprefix('sql ').removeprefix('pg ')} {value / n:.2f}"
                for name, value in sorted(counts.items())
                if value
            ]
            print(
                f"  {row.backend:<10} {row.signing or '-':<8} {row.run:<10} C={row.clients:<3} "
                + ", ".join(parts)
            )
    if matrix.args.sql_profile:
        for row in rows:
            if row.result.statements:
                n = row.result.accepted or 1
                print(
                    f"\nSQL statements per package, {row.backend} {row.signing} {row.run} "
                    f"C={row.clients} (by shape; relay and consumer included):"
                )
                for shape, count in row.result.statements.most_common():
                    print(f"  {count / n:6.2f}  {shape}")
    signed = [row for row in rows if row.outcomes is not None]
    if signed:
        print(
            "\nstored signature outcomes of the signed rows (warm-up included): "
            + "; ".join(f"{row.backend} {row.run} C={row.clients} {row.outcomes}" for row in signed)
        )
    for row in rows:
        if row.outcomes is not None and set(row.outcomes) != {"valid"}:
            print(
                f"NOTE {row.backend} {row.run} C={row.clients}: signature outcomes "
                f"{row.outcomes} (expected only valid)"
            )
        for line in row.result.failures[:3] + row.result.notes:
            print(f"[{row.backend} {row.signing or '-'} {row.run} C={row.clients}] {line}")
    if matrix.skipped:
        print(
            f"\nSKIPPED (--time-limit {matrix.deadline.seconds:.0f} s reached): "
            + "; ".join(matrix.skipped)
        )


def csv_list(
    kind: Callable[[str], Any], allowed: Sequence[str] | None = None
) -> Callable[[str], list[Any]]:
    def parse(text: str) -> list[Any]:
        values = [kind(v.strip()) for v in text.split(",") if v.strip()]
        if allowed is not None and not set(values) <= set(allowed):
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        if not values:
            raise argparse.ArgumentTypeError("empty list")
        return values

    return parse


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--backend",
        type=csv_list(str, ["embedded", "production"]),
        default=["embedded", "production"],
    )
    parser.add_argument("--packages", type=int, default=1000, help="per row (default 1000)")
    parser.add_argument("--clients", type=csv_list(int), default=[8, 32, 64])
    parser.add_argument("--api", type=csv_list(str, ["vxp", "rest"]), default=["vxp", "rest"])
    parser.add_argument(
        "--signing", type=csv_list(str, ["unsigned", "signed"]), default=["unsigned", "signed"]
    )
    parser.add_argument(
        "--size-kb",
        type=csv_list(str),
        default=["10"],
        help="package sizes in KiB; 359 or sdk: the SDK sample unchanged",
    )
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured packages per run")
    parser.add_argument(
        "--run-timeout", type=float, default=300.0, help="longest submit phase of one row, seconds"
    )
    parser.add_argument(
        "--time-limit", type=float, default=3600.0, help="no row starts after this many seconds"
    )
    parser.add_argument(
        "--no-infra-free",
        action="store_true",
        help="skip the unchained-evidence infrastructure row",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="`serve --workers N` for the HTTP rows on PostgreSQL + RabbitMQ (embedded: 1)",
    )
    parser.add_argument(
        "--sql-profile",
        action="store_true",
        help="list the node's SQL statements per package (bare rows)",
    )
    args = parser.parse_args()
    print(f"command: {common.command_line()}")
    print(f"hardware: {common.hardware()}")
    deadline = Deadline(args.time_limit)
    work = Path(tempfile.mkdtemp(prefix="lienthong-small-"))
    try:
        matrix = Matrix(args, deadline, work)
        for size in args.size_kb:
            started = time.monotonic()
            unsigned = build(args.packages + args.warmup, size)
            sets = {"unsigned": (unsigned[: args.packages], unsigned[args.packages :])}
            if "signed" in args.signing:
                signed = sign_all(matrix.pki, unsigned)
                sets["signed"] = (signed[: args.packages], signed[args.packages :])
            print(
                f"packages {size} KiB: {args.packages} (+{args.warmup} warm-up) per row, "
                + ", ".join(f"{name} {len(s[0][0])} bytes" for name, s in sets.items())
                + f", built in {time.monotonic() - started:.1f} s",
                flush=True,
            )
            for backend in args.backend:
                for clients in args.clients:
                    matrix.run(backend, size, clients, sets)
        report(matrix)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    broken = any(r.result.failures or r.result.unavailable for r in matrix.rows)
    return 1 if broken or matrix.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
