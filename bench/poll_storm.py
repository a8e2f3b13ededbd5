"""Poll storm (issue #11): many systems polling a node that holds a million pending deliveries.

The loader builds, straight into a fresh node's database, `--deliveries` pending deliveries
(state `available`, as the inbox consumer leaves them) of `--deliveries / --recipients`
messages, over `--agencies` agencies in the directory, served by `--systems` systems (each
serving its block of agencies, the units of one parent, by one pattern `*.SS.TT.H6X`; with
`--serves exact` by listing every code instead; its secret sealed with the node's key as
`lienthong systems add` does) — COPY on PostgreSQL, batched `executemany` on SQLite, ids and
sequences, directory versions and ANALYZE consistent with the schema. Every message points at
one real payload in the payload store, so any item could be downloaded. No timeline, outbox or
evidence rows are written for them: polling reads none.

Then a real `lienthong serve` process is stormed by P concurrent polling systems (one HTTP
connection each, closed loop, no pause), for `--duration` seconds per phase:
  vxp    `getReceivedEdocList` signed like the SDK (`VxpClient`), which leases a page;
  rest   `GET /api/v1/inbox`, read-only, following `next_cursor` (from the start again at the
         end);
  mixed  half of each while `--submit` 10 KiB letters are sent through `/vxp/sendEdoc` by
         `--submit-clients` clients: submit throughput and submit→available during the storm,
         next to the same submit on the quiet node.
Reported per phase: polls/s, p50/p99 latency, items per poll, server CPU ms per poll and busy
share of one core (`lienthong serve`), the same for this process (the pollers: if it is near
100 %, the figure is the loader's), and errors. Everything again against an empty node (same
systems and agencies, no deliveries): the ratio loaded/empty is the cost of the million rows.
On PostgreSQL, the inbox statements the store runs (lease, its read-back, list, count: captured
from a real call with SQLAlchemy events) are shown with `EXPLAIN (ANALYZE, BUFFERS)` on the
loaded node, the lease in a transaction rolled back; on SQLite with `EXPLAIN QUERY PLAN`.

The node runs with LIENTHONG_INBOX_LEASE_SECONDS=`--lease-seconds` (default 0.001): each
poll of a backlog then hands out a full page again (as pollers that download what they are
given meet it), instead of the storm hiding every item after two polls and measuring empty
answers.

    python bench/poll_storm.py [--backend embedded,production] [--deliveries 1000000]
        [--agencies 10000] [--systems 1000] [--recipients 4] [--serves pattern|exact]
        [--pollers 50,500]
        [--duration 15] [--page-size N] [--submit 300] [--submit-clients 8]
        [--lease-seconds 0.001] [--run-timeout 120] [--time-limit 2400] [--load-only]
    quick: --deliveries 100000 --systems 100   (or --deliveries 20000 --systems 20)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import common
import httpx
from common import (
    FROM_CODE,
    SENDER,
    Deadline,
    RunResult,
    Server,
    Submitter,
    own_cpu_seconds,
    percentile,
)
from sqlalchemy import event, text

from adapters.db.store import SqlStore
from adapters.payloads.filestore import FilePayloadStore
from adapters.secretbox import SecretBox
from adapters.vxp_client import VxpClient
from gateway.codes import ServePattern, code_level
from gateway.edxml.parser import parse_package
from gateway.runtime import build_store
from gateway.settings import Settings
from gateway.types import MessageKind, Sha256Hex

BATCH = 50_000  # rows per COPY / executemany / transaction while loading


# -- what is loaded ----------------------------------------------------------------------------


def agency_code(index: int) -> str:
    """Distinct standard-shape codes (`LLL.KK.JJ.H6N`), away from the bench's H01/H02: the
    `--serves exact` layout (a system lists each of its agencies)."""
    return (
        f"{index % 1000:03d}.{index // 1000 % 100:02d}.{index // 100_000 % 100:02d}."
        f"H{60 + index // 10_000_000:02d}"
    )


def system_name(index: int) -> str:
    return f"storm.s{index:04d}"


def system_secret(index: int) -> str:
    return f"storm-{index:04d}-secret"


@dataclass
class Plan:
    deliveries: int
    agencies: int
    systems: int
    recipients: int
    serves: str = "pattern"
    seed: int = 11

    def __post_init__(self) -> None:
        if self.agencies < self.systems:
            raise SystemExit("--agencies must be at least --systems (each system serves one)")
        if self.recipients > self.agencies:
            raise SystemExit("--recipients cannot exceed --agencies")
        if self.serves == "pattern" and -(-self.agencies // self.systems) > 1000:
            raise SystemExit("--serves pattern: at most 1000 agencies per system")

    def first_of(self, system: int) -> int:
        """The first agency of `system`'s block."""
        return -(-system * self.agencies // self.systems)

    def code(self, agency: int) -> str:
        """`pattern` layout: a system's agencies are the units `NNN.SS.TT.H6X` of one parent
        (S, T, X the system's number), so it serves them all with one pattern `*.SS.TT.H6X`,
        as a province's or ministry's system does; `exact`: `agency_code`."""
        if self.serves == "exact":
            return agency_code(agency)
        system = self.system_of(agency)
        return f"{agency - self.first_of(system):03d}.{self._parent(system)}"

    @staticmethod
    def _parent(system: int) -> str:
        return f"{system % 100:02d}.{system // 100 % 100:02d}.H{60 + system // 10_000:02d}"

    def serve_patterns(self, system: int) -> list[str]:
        if self.serves == "pattern":
            return [ServePattern.parse(f"*.{self._parent(system)}").text]
        return [ServePattern.parse(self.code(a)).text for a in self.served_by(system)]

    def system_of(self, agency: int) -> int:
        """Agencies in contiguous blocks, one block per system."""
        return agency * self.systems // self.agencies

    def served_by(self, system: int) -> list[int]:
        return [a for a in range(self.agencies) if self.system_of(a) == system]

    @property
    def messages(self) -> int:
        return math.ceil(self.deliveries / self.recipients)


@dataclass
class Template:
    """One real package's stored shape: header JSON, subject, payload hash and size."""

    header: str
    subject: str
    sha256: str
    size: int


def template_and_payload(settings: Settings, work: Path) -> Template:
    """A real 10 KiB letter: parsed for the header JSON the node stores, and put into the
    payload store once (every loaded message points at it)."""
    package = common.letter_packages(1, 10, from_code=FROM_CODE, to_code=agency_code(0))[0]
    parsed = parse_package(package, work_dir=work)
    header = parsed.model.model_dump(
        mode="json", exclude_none=True, exclude={"references", "attachments"}
    )
    digest = hashlib.sha256(package).hexdigest()
    spooled = work / "payload.edxml"
    spooled.write_bytes(package)
    FilePayloadStore(settings.payload_dir).put_file(spooled, Sha256Hex(digest))
    return Template(
        json.dumps(header, ensure_ascii=False),
        parsed.model.header.subject or "",
        digest,
        len(package),
    )


AGENCY_COLUMNS = ("code", "name", "parent_code", "mail", "level", "status", "version", "updated_at")
SYSTEM_COLUMNS = (
    "system_id",
    "secret_ciphertext",
    "serves",
    "delivery_mode",
    "enabled",
    "created_at",
)
MESSAGE_COLUMNS = (
    "id",
    "public_id",
    "kind",
    "sender_system_id",
    "from_code",
    "document_id",
    "code_number",
    "code_notation",
    "subject",
    "business_type",
    "dedup_key",
    "payload_sha256",
    "payload_size",
    "warnings",
    "received_at",
    "header",
    "signed",
    "signature_outcome",
    "signature",
)
DELIVERY_COLUMNS = (
    "id",
    "public_id",
    "message_id",
    "kind",
    "recipient_code",
    "requested_code",
    "route",
    "system_id",
    "state",
    "state_changed_at",
    "attempts",
    "fail_count",
    "lease_count",
    "created_at",
    "available_at",
)
SIGNATURE = json.dumps({"outcome": "absent", "code": None, "reason": None})


class Rows:
    """The rows to load, generated batch by batch; `stamp` turns a datetime into what the
    backend's driver takes (an aware datetime for asyncpg, SQLAlchemy's text for SQLite)."""

    def __init__(
        self,
        plan: Plan,
        template: Template,
        box: SecretBox,
        stamp: Callable[[datetime], Any],
        first_version: int,
    ) -> None:
        self.plan, self.template, self.box, self.stamp = plan, template, box, stamp
        self.first_version = first_version
        self.now = datetime.now(UTC)
        self.rng = random.Random(plan.seed)

    def agencies(self) -> list[tuple[Any, ...]]:
        stamp = self.stamp(self.now)
        return [
            (
                self.plan.code(a),
                f"Đơn vị thử tải {a}",
                None,
                None,
                code_level(self.plan.code(a)),
                "active",
                self.first_version + a,
                stamp,
            )
            for a in range(self.plan.agencies)
        ]

    def systems(self) -> list[tuple[Any, ...]]:
        stamp = self.stamp(self.now)
        return [
            (
                system_name(s),
                self.box.seal(system_secret(s)),
                json.dumps(self.plan.serve_patterns(s)),
                "poll",
                True,
                stamp,
            )
            for s in range(self.plan.systems)
        ]

    def batches(
        self, first_message: int, first_delivery: int
    ) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """(message rows, delivery rows), about BATCH deliveries at a time, oldest first:
        created over the last week, ids in creation order."""
        plan, t, rng = self.plan, self.template, self.rng
        span = timedelta(days=7).total_seconds()
        start = self.now - timedelta(days=7)
        per_message = plan.recipients
        message_id, delivery_id = first_message, first_delivery
        left = plan.deliveries
        tag = uuid.uuid4().hex[:6]
        messages: list[tuple[Any, ...]] = []
        deliveries: list[tuple[Any, ...]] = []
        while left > 0:
            count = min(per_message, left)
            at = start + timedelta(seconds=span * (plan.deliveries - left) / plan.deliveries)
            created, available = self.stamp(at), self.stamp(at + timedelta(milliseconds=150))
            document_id = f"{FROM_CODE},2026/01/01,{tag}-{message_id}/STORM"
            messages.append(
                (
                    message_id,
                    str(uuid.uuid4()),
                    "edoc",
                    SENDER,
                    FROM_CODE,
                    document_id,
                    str(message_id),
                    "STORM",
                    t.subject,
                    0,
                    f"{FROM_CODE}|{document_id}",
                    t.sha256,
                    t.size,
                    "[]",
                    created,
                    t.header,
                    False,
                    "absent",
                    SIGNATURE,
                )
            )
            for agency in rng.sample(range(plan.agencies), count):
                code = plan.code(agency)
                deliveries.append(
                    (
                        delivery_id,
                        str(uuid.uuid4()),
                        message_id,
                        "edoc",
                        code,
                        code,
                        "inbox",
                        system_name(plan.system_of(agency)),
                        "available",
                        available,
                        0,
                        0,
                        0,
                        created,
                        available,
                    )
                )
                delivery_id += 1
            message_id += 1
            left -= count
            if len(deliveries) >= BATCH:
                yield messages, deliveries
                messages, deliveries = [], []
        if messages:
            yield messages, deliveries


def sqlite_stamp(value: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite (`2026-12-01 12:32:00.799595`)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def load_postgres(
    settings: Settings, plan: Plan, template: Template, with_deliveries: bool
) -> str:
    connection = await asyncpg.connect(settings.database_url)
    try:
        version = await connection.fetchval("SELECT value FROM directory_version WHERE id = 1")
        rows = Rows(plan, template, SecretBox(settings.secret_key), lambda d: d, version + 1)
        await connection.copy_records_to_table(
            "agencies", records=rows.agencies(), columns=AGENCY_COLUMNS
        )
        await connection.execute(
            "UPDATE directory_version SET value = $1 WHERE id = 1", version + plan.agencies
        )
        await connection.copy_records_to_table(
            "systems", records=rows.systems(), columns=SYSTEM_COLUMNS
        )
        if with_deliveries:
            first_message = await connection.fetchval(
                "SELECT coalesce(max(id), 0) + 1 FROM messages"
            )
            first_delivery = await connection.fetchval(
                "SELECT coalesce(max(id), 0) + 1 FROM deliveries"
            )
            for messages, deliveries in rows.batches(first_message, first_delivery):
                await connection.copy_records_to_table(
                    "messages", records=messages, columns=MESSAGE_COLUMNS
                )
                await connection.copy_records_to_table(
                    "deliveries", records=deliveries, columns=DELIVERY_COLUMNS
                )
            for table in ("messages", "deliveries"):
                await connection.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 1) FROM {table}))"
                )
        await connection.execute("ANALYZE agencies, systems, messages, deliveries")
        size = await connection.fetchval(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        )
        return f"database {size}"
    finally:
        await connection.close()


def load_sqlite(settings: Settings, plan: Plan, template: Template, with_deliveries: bool) -> str:
    path = settings.data_dir / "lienthong.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous=OFF")  # this connection only: loading
        version = connection.execute("SELECT value FROM directory_version WHERE id = 1").fetchone()[
            0
        ]
        rows = Rows(plan, template, SecretBox(settings.secret_key), sqlite_stamp, version + 1)

        def insert(table: str, columns: Sequence[str], records: list[tuple[Any, ...]]) -> None:
            connection.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                f"({', '.join('?' * len(columns))})",
                records,
            )

        connection.execute("BEGIN")
        insert("agencies", AGENCY_COLUMNS, rows.agencies())
        connection.execute(
            "UPDATE directory_version SET value = ? WHERE id = 1", (version + plan.agencies,)
        )
        insert("systems", SYSTEM_COLUMNS, rows.systems())
        connection.execute("COMMIT")
        if with_deliveries:
            first_message = connection.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM messages"
            ).fetchone()[0]
            first_delivery = connection.execute(
                "SELECT coalesce(max(id), 0) + 1 FROM deliveries"
            ).fetchone()[0]
            for messages, deliveries in rows.batches(first_message, first_delivery):
                connection.execute("BEGIN")
                insert("messages", MESSAGE_COLUMNS, messages)
                insert("deliveries", DELIVERY_COLUMNS, deliveries)
                connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()
    return f"database file {path.stat().st_size / (1 << 20):.0f} MiB"


def load(settings: Settings, plan: Plan, work: Path, with_deliveries: bool) -> str:
    started = time.monotonic()
    template = template_and_payload(settings, work)
    if common.database_of(settings):
        size = asyncio.run(load_postgres(settings, plan, template, with_deliveries))
    else:
        size = load_sqlite(settings, plan, template, with_deliveries)
    what = (
        f"{plan.deliveries} deliveries in {plan.messages} messages"
        if with_deliveries
        else "no deliveries"
    )
    return (
        f"loaded {what}, {plan.agencies} agencies, {plan.systems} systems in "
        f"{time.monotonic() - started:.1f} s ({size})"
    )


# -- the inbox statements, explained -----------------------------------------------------------


async def explain_inbox(settings: Settings, plan: Plan, page: int) -> list[str]:
    """Run the store's lease, list and count for one loaded system with SQLAlchemy capturing
    the statements, then explain each: EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL (in a
    transaction rolled back: the lease writes), EXPLAIN QUERY PLAN (and one timed run) on
    SQLite."""
    store = build_store(settings)
    captured: list[tuple[str, str, Any]] = []
    label = {"value": ""}

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
    ) -> None:
        if "deliveries" in statement and not statement.lstrip().upper().startswith("EXPLAIN"):
            captured.append((label["value"], statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", capture)
    system = system_name(0)
    lines: list[str] = []
    try:
        for name, call in (
            (
                "lease (getReceivedEdocList, POST /inbox/leases)",
                lambda: store.lease_inbox(system, MessageKind.EDOC, page, 0.001),
            ),
            (
                "list (GET /api/v1/inbox, first page)",
                lambda: store.list_inbox(system, MessageKind.EDOC, 0, 100),
            ),
            ("count (countReceiveEdoc)", lambda: store.count_inbox(system, MessageKind.EDOC)),
        ):
            label["value"] = name
            await call()
        event.remove(store.engine.sync_engine, "before_cursor_execute", capture)
        postgres = store.engine.dialect.name == "postgresql"
        # The captured lease leased a page with the captured time as "now": handed back, so
        # that its statements explain the state the storm starts from (a full page).
        async with store.engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE deliveries SET lease_until = NULL, lease_count = lease_count - 1 "
                    "WHERE system_id = :system AND lease_until IS NOT NULL"
                ),
                {"system": system},
            )
        for name, statement, parameters in captured:
            lines.append(f"--- {name}: {' '.join(statement.split())[:600]}")
            async with store.engine.connect() as connection:
                transaction = await connection.begin()
                try:
                    if postgres:
                        result = await connection.exec_driver_sql(
                            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                        )
                        lines += ["    " + str(row[0]) for row in result.all()]
                    else:
                        result = await connection.exec_driver_sql(
                            "EXPLAIN QUERY PLAN " + statement, parameters
                        )
                        lines += [
                            "    " + " | ".join(str(v) for v in row[1:]) for row in result.all()
                        ]
                        started = time.perf_counter()
                        rows = (await connection.exec_driver_sql(statement, parameters)).all()
                        lines.append(
                            f"    (ran in {(time.perf_counter() - started) * 1000:.1f}"
                            f" ms, {len(rows)} rows)"
                        )
                finally:
                    await transaction.rollback()
    finally:
        await store.close()
    return lines


# -- the storm ---------------------------------------------------------------------------------


@dataclass
class Phase:
    node: str  # loaded | empty
    kind: str  # vxp | rest | mixed
    pollers: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    items: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu: float = 0.0
    loader_cpu: float = 0.0
    by_kind: Counter[str] = field(default_factory=Counter)

    @property
    def polls(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.polls / self.seconds if self.seconds else 0.0


class Pollers:
    """One HTTP connection and credential per poller; poller j is system j mod --systems."""

    def __init__(self, base_url: str, plan: Plan, count: int, page_size: int | None) -> None:
        self.page_size = page_size
        self.http = [
            httpx.AsyncClient(base_url=base_url, timeout=60, limits=httpx.Limits(max_connections=1))
            for _ in range(count)
        ]
        systems = [j % plan.systems for j in range(count)]
        self.vxp = [
            VxpClient(client, system_name(s), system_secret(s))
            for client, s in zip(self.http, systems, strict=True)
        ]
        self.rest_headers = [
            {"Authorization": f"Bearer {system_name(s)}:{system_secret(s)}"} for s in systems
        ]
        self.cursors: list[str | None] = [None] * count

    async def poll(self, j: int, kind: str) -> int:
        """One poll; the number of items it returned (raises on a refusal)."""
        if kind == "vxp":
            params = {"messagetype": "edoc"}
            if self.page_size:
                params["pageSize"] = str(self.page_size)
            answer = await self.vxp[j].call("getReceivedEdocList", params)
            if answer.get("status") != "OK":
                raise RuntimeError(
                    f"HTTP {answer.get('_http_status')} ErrorCode {answer.get('ErrorCode')}"
                )
            return len(answer["data"])
        params = {"limit": str(self.page_size or 100)}
        if self.cursors[j]:
            params["cursor"] = self.cursors[j] or ""
        response = await self.http[j].get(
            "/api/v1/inbox", params=params, headers=self.rest_headers[j]
        )
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        page = response.json()
        self.cursors[j] = page["next_cursor"]
        return len(page["items"])

    async def close(self) -> None:
        await asyncio.gather(*(client.aclose() for client in self.http))


async def storm(server: Server, pollers: Pollers, phase: Phase, stop: asyncio.Event) -> Phase:
    """`phase.pollers` pollers in a closed loop until `stop`; a poll still running then is
    waited for but not counted."""
    ended = asyncio.Event()

    async def poller(j: int) -> None:
        kind = phase.kind if phase.kind != "mixed" else ("vxp", "rest")[j % 2]
        while not ended.is_set():
            started = time.perf_counter()
            try:
                items = await pollers.poll(j, kind)
            except Exception as error:  # counted and shown, not raised
                if not ended.is_set():
                    phase.errors[f"{kind}: {type(error).__name__}: {str(error)[:80]}"] += 1
                await asyncio.sleep(0.1)
                continue
            if not ended.is_set():
                phase.latencies_ms.append((time.perf_counter() - started) * 1000)
                phase.items += items
                phase.by_kind[kind] += 1

    cpu0, own0, t0 = server.cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    tasks = [asyncio.create_task(poller(j)) for j in range(phase.pollers)]
    try:
        await stop.wait()
    finally:
        ended.set()
        phase.seconds = time.perf_counter() - t0
        phase.server_cpu, phase.loader_cpu = server.cpu_seconds() - cpu0, own_cpu_seconds() - own0
        done, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return phase


async def timed_stop(seconds: float) -> asyncio.Event:
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, stop.set)
    return stop


async def submit_phase(
    server: Server,
    store: SqlStore,
    packages: Sequence[bytes],
    clients: int,
    name: str,
    timeout: float,
) -> RunResult:
    result = RunResult(name)
    submitter = Submitter(server.url, clients, "vxp")
    try:
        cpu0 = server.cpu_seconds()
        await common.submit_through(submitter, store, packages, clients, result, timeout)
        result.cpu_seconds = server.cpu_seconds() - cpu0
    finally:
        await submitter.close()
    return result


@dataclass
class NodeReport:
    backend: str
    node: str
    loaded: str
    phases: list[Phase] = field(default_factory=list)
    submits: list[tuple[str, RunResult, Phase | None]] = field(default_factory=list)
    explain: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


async def exercise(
    settings: Settings,
    args: argparse.Namespace,
    plan: Plan,
    packages: dict[str, list[bytes]],
    report: NodeReport,
    deadline: Deadline,
) -> None:
    """Serve the node, submit on it quiet, storm it at each P (vxp, rest, mixed + submit)."""
    server = Server(settings, LIENTHONG_INBOX_LEASE_SECONDS=str(args.lease_seconds))
    store = build_store(settings)
    pollers: Pollers | None = None
    try:
        await server.wait_healthy()
        pollers = Pollers(server.url, plan, max(args.pollers), args.page_size)
        # warm-up: a poll of each kind for a few systems, and a few packages the whole way
        for j in range(min(4, max(args.pollers))):
            for kind in ("vxp", "rest"):
                with contextlib.suppress(Exception):
                    await pollers.poll(j, kind)
        await submit_phase(server, store, packages["warmup"], args.submit_clients, "warm-up", 120)
        report.submits.append(
            (
                "quiet",
                await submit_phase(
                    server, store, packages["quiet"], args.submit_clients, "quiet", args.run_timeout
                ),
                None,
            )
        )
        for count in args.pollers:
            for kind in ("vxp", "rest", "mixed"):
                if deadline.passed:
                    report.notes.append(f"time limit: phase {kind} P={count} and later skipped")
                    return
                phase = Phase(report.node, kind, count)
                if kind != "mixed":
                    await storm(server, pollers, phase, await timed_stop(args.duration))
                else:
                    stop = asyncio.Event()
                    storming = asyncio.create_task(storm(server, pollers, phase, stop))
                    await asyncio.sleep(min(2.0, args.duration / 4))  # the storm is on
                    try:
                        submitted = await submit_phase(
                            server,
                            store,
                            packages[f"storm-{count}"],
                            args.submit_clients,
                            f"during mixed storm P={count}",
                            args.run_timeout,
                        )
                    finally:
                        stop.set()
                        await storming
                    report.submits.append((f"storm P={count}", submitted, phase))
                report.phases.append(phase)
                print(
                    f"  {report.backend} {report.node} {kind:<5} P={count:<4} "
                    f"{phase.rate:8.1f} polls/s  p50 {percentile(phase.latencies_ms, 0.5):7.1f}"
                    f" ms  p99 {percentile(phase.latencies_ms, 0.99):7.1f} ms  "
                    f"{sum(phase.errors.values())} errors; load average "
                    + " ".join(f"{x:.2f}" for x in os.getloadavg()),
                    flush=True,
                )
    finally:
        if pollers is not None:
            await pollers.close()
        await store.close()
        await asyncio.to_thread(server.stop)
        if (problems := server.log_problems()) is not None:
            report.notes.append(problems)


async def table_facts(settings: Settings) -> dict[str, int]:
    """The deliveries table on PostgreSQL: updates, of them HOT (no index entry written),
    dead row versions, total size with indexes; the file size on SQLite."""
    if common.database_of(settings) is None:
        return {"bytes": (settings.data_dir / "lienthong.sqlite3").stat().st_size}
    await asyncio.sleep(0.6)  # the server's backends flush their counters when they exit
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        row = await connection.fetchrow(
            "SELECT n_tup_upd AS updates, n_tup_hot_upd AS hot, n_dead_tup AS dead, "
            "pg_total_relation_size('deliveries') AS bytes FROM pg_stat_user_tables "
            "WHERE relname = 'deliveries'"
        )
    finally:
        await connection.close()
    return dict(row) if row else {}


def facts_note(before: dict[str, int], after: dict[str, int]) -> str:
    size = (
        f"deliveries {before['bytes'] / (1 << 20):.0f} → {after['bytes'] / (1 << 20):.0f} "
        "MiB with indexes"
        if "updates" in after
        else f"database file {before['bytes'] / (1 << 20):.0f} → {after['bytes'] / (1 << 20):.0f} "
        "MiB"
    )
    if "updates" not in after:
        return f"during the phases: {size}"
    updates = after["updates"] - before["updates"]
    hot = after["hot"] - before["hot"]
    return (
        f"during the phases: {updates} row updates of deliveries, {hot} HOT "
        f"({hot / updates * 100 if updates else 0:.0f} %: the others wrote an entry in "
        f"every index of the table), {after['dead']} dead row versions, {size}"
    )


def run_node(
    backend: str,
    node: str,
    args: argparse.Namespace,
    plan: Plan,
    packages: dict[str, list[bytes]],
    deadline: Deadline,
    work: Path,
) -> NodeReport:
    with common.isolated_node(backend, prefix="storm") as settings:
        loaded = load(settings, plan, work, with_deliveries=node == "loaded")
        print(f"  {backend} {node}: {loaded}", flush=True)
        report = NodeReport(backend, node, loaded)
        if node == "loaded":
            report.explain = asyncio.run(explain_inbox(settings, plan, args.page_size or 500))
        if not args.load_only:
            before = asyncio.run(table_facts(settings))
            asyncio.run(exercise(settings, args, plan, packages, report, deadline))
            report.notes.append(facts_note(before, asyncio.run(table_facts(settings))))
    return report


# -- the report --------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"x{a / b:.2f}" if a and b and not math.isnan(a) and not math.isnan(b) else "-"


def print_report(reports: list[NodeReport], args: argparse.Namespace) -> None:
    if not args.load_only:
        print_tables(reports, args)
    for report in reports:
        if report.explain:
            print(
                f"\n{report.backend} {report.node}: the inbox statements of the store, "
                "explained (system storm.s0000):"
            )
            print("\n".join(report.explain))
    for report in reports:
        for phase in report.phases:
            for error, count in phase.errors.most_common(3):
                print(
                    f"[{report.backend} {report.node} {phase.kind} P={phase.pollers}] "
                    f"{count} x {error}"
                )
        for label, result, _ in report.submits:
            for line in result.failures[:3] + result.notes:
                print(f"[{report.backend} {report.node} submit {label}] {line}")
        for line in report.notes:
            print(f"[{report.backend} {report.node}] {line}")


def print_tables(reports: list[NodeReport], args: argparse.Namespace) -> None:
    header = (
        f"{'backend':<10} {'node':<6} {'phase':<6} {'P':>4} {'polls/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'items':>6} {'srv ms':>7} {'srv %':>6} {'cli ms':>7} "
        f"{'cli %':>6} {'errors':>6} {'/empty':>7} {'p50/empty':>9}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for report in reports:
        for phase in report.phases:
            empty = next(
                (
                    p
                    for r in reports
                    if r.backend == report.backend and r.node == "empty"
                    for p in r.phases
                    if (p.kind, p.pollers) == (phase.kind, phase.pollers)
                ),
                None,
            )
            polls = phase.polls or 1
            p50 = percentile(phase.latencies_ms, 0.5)
            against = empty is not None and report.node == "loaded"
            rate_ratio = ratio(phase.rate, empty.rate) if against and empty else ""
            p50_ratio = ratio(p50, percentile(empty.latencies_ms, 0.5)) if against and empty else ""
            print(
                f"{report.backend:<10} {report.node:<6} {phase.kind:<6} {phase.pollers:>4} "
                f"{phase.rate:>8.1f} {p50:>8.1f} {percentile(phase.latencies_ms, 0.99):>8.1f} "
                f"{phase.items / polls:>6.0f} {phase.server_cpu * 1000 / polls:>7.2f} "
                f"{phase.server_cpu / phase.seconds * 100 if phase.seconds else 0:>5.0f}% "
                f"{phase.loader_cpu * 1000 / polls:>7.2f} "
                f"{phase.loader_cpu / phase.seconds * 100 if phase.seconds else 0:>5.0f}% "
                f"{sum(phase.errors.values()):>6} "
                f"{rate_ratio:>7} {p50_ratio:>9}"
            )
    print(
        "\npolls/s: completed polls per second over the phase; items: mean items per poll; "
        "srv ms / srv %: CPU of lienthong serve per poll and as a share of one core; "
        "cli: the same for this process (the pollers — near 100 % means the loader is the "
        "limit); /empty: the loaded node's figure over the empty node's."
    )
    header = (
        f"{'backend':<10} {'node':<6} {'submit during':<16} {'ok':>5} {'acc/s':>7} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'srv ms':>7} {'storm polls/s':>13} {'/quiet':>7}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for report in reports:
        quiet = next((r for label, r, _ in report.submits if label == "quiet"), None)
        for label, result, phase in report.submits:
            print(
                f"{report.backend:<10} {report.node:<6} {label:<16} {result.accepted:>5} "
                f"{result.rate:>7.1f} {percentile(result.latencies_ms, 0.5):>8.1f} "
                f"{percentile(result.latencies_ms, 0.99):>8.1f} "
                f"{result.per_package_ms(result.cpu_seconds):>7.2f} "
                f"{phase.rate if phase else math.nan:>13.1f} "
                f"{ratio(result.rate, quiet.rate) if quiet and phase else '':>7}"
            )
    print(
        f"\nsubmit: {args.submit} distinct 10 KiB letters through /vxp/sendEdoc from "
        f"{args.submit_clients} clients; acc/s, p50/p99 submit→available, server CPU ms per "
        "package (storm included when one runs); /quiet: accepted/s over the quiet figure."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--backend", default="embedded,production", type=lambda t: [b for b in t.split(",") if b]
    )
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--agencies", type=int, default=10_000)
    parser.add_argument("--systems", type=int, default=1_000)
    parser.add_argument(
        "--recipients", type=int, default=4, help="recipients (deliveries) per loaded message"
    )
    parser.add_argument(
        "--serves",
        choices=["pattern", "exact"],
        default="pattern",
        help="each system serves its agencies by one pattern (default) or lists every code "
        "(every submission then matches agencies x patterns while routing)",
    )
    parser.add_argument(
        "--pollers", default=[50, 500], type=lambda t: [int(x) for x in t.split(",") if x]
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per storm phase")
    parser.add_argument(
        "--page-size",
        type=int,
        default=None,
        help="pageSize sent with getReceivedEdocList and limit of /inbox "
        "(default: none, as the SDK: the node's 500; /inbox: 100)",
    )
    parser.add_argument("--submit", type=int, default=300, help="packages per submit phase")
    parser.add_argument("--submit-clients", type=int, default=8)
    parser.add_argument("--lease-seconds", type=float, default=0.001)
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=120.0,
        help="longest submit phase, seconds (a starved submit is cut there)",
    )
    parser.add_argument(
        "--load-only",
        action="store_true",
        help="load the loaded node, explain its inbox statements, no storm",
    )
    parser.add_argument(
        "--time-limit", type=float, default=2400.0, help="no phase starts after this many seconds"
    )
    args = parser.parse_args()
    if not set(args.backend) <= {"embedded", "production"}:
        parser.error("--backend: embedded, production")
    if args.agencies < args.systems:
        args.agencies = args.systems
    plan = Plan(args.deliveries, args.agencies, args.systems, args.recipients, args.serves)
    print(f"command: {common.command_line()}")
    print(f"hardware: {common.hardware()}")
    print(
        f"plan: {plan.deliveries} pending deliveries in {plan.messages} messages over "
        f"{plan.agencies} agencies served by {plan.systems} systems (by {plan.serves}); "
        f"pollers {args.pollers}"
        + (
            f" (more pollers than systems: {max(args.pollers) / plan.systems:.1f} per system)"
            if max(args.pollers) > plan.systems
            else ""
        )
        + f"; {args.duration:.0f} s per phase; lease {args.lease_seconds} s",
        flush=True,
    )
    deadline = Deadline(args.time_limit)
    labels = ["warmup", "quiet"] + [f"storm-{p}" for p in args.pollers]
    sizes = [10] + [args.submit] * (len(labels) - 1)
    letters = common.letter_packages(sum(sizes), 10)
    reports: list[NodeReport] = []
    with tempfile.TemporaryDirectory(prefix="lienthong-storm-") as work:
        for backend in args.backend:
            for node in ("loaded",) if args.load_only else ("loaded", "empty"):
                if deadline.passed:
                    print(f"time limit: {backend} {node} skipped")
                    continue
                # distinct packages per node (a fresh node each, so they may repeat across)
                offsets = [sum(sizes[:i]) for i in range(len(sizes))]
                packages = {
                    label: letters[o : o + n]
                    for label, o, n in zip(labels, offsets, sizes, strict=True)
                }
                reports.append(run_node(backend, node, args, plan, packages, deadline, Path(work)))
    print_report(reports, args)
    broken = any(sum(p.errors.values()) for r in reports for p in r.phases) or any(
        result.failures or result.unavailable for r in reports for _, result, _ in r.submits
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
