"""Load and chaos: does a node of two processes lose or double anything while its broker, its
database and its own processes fail under a steady mixed load?

Why: SPEC §5 asks that every accepted package reach every recipient exactly once through broker
restarts, database restarts and a gateway killed mid-flight. tests/test_crashes.py checks that
at chosen fault points; this script meets it as production does: faults at random (seeded)
moments under load, unannounced. Two `lienthong serve` processes share one fresh PostgreSQL
database and RabbitMQ namespace; SDK-compatible senders submit documents (and statuses 01/03
answering delivered ones) and retry what got no answer with the SAME bytes, so a retried
accepted package must come back as a duplicate of itself (ErrorCode 24). The receiving side
judges: every (package, recipient) accepted must come out of a poller's getEdoc under one
delivery id, handed out as `new` once, and the evidence chain must verify; exit 1 otherwise.
Faults: `rabbitmqctl stop_app` for 5-20 s, a PostgreSQL restart, SIGKILL of one gateway process
(a replacement starts on a new port); never two at once; a random kind each time, or the kinds
of --faults round-robin. The node runs with a 60 s inbox lease (default 300 s): an item whose
lease answer died with a killed process stays hidden that long, and the final wait is bounded.

    python bench/chaos.py --duration 600 [--senders 4] [--pollers 4] [--processes 2]
        [--rate 20] [--fault-interval 30,90] [--faults rabbitmq,postgres,kill] [--seed N]
        [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import math
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from common import (
    ROOT,
    command_line,
    create_database,
    database_of,
    delete_broker_namespace,
    drop_database,
    node_env,
    node_settings,
    percentile,
    register_systems,
)

sys.path.insert(0, str(ROOT))  # for tests.support

from adapters.db.migrate import migrate  # noqa: E402
from adapters.vxp_client import VxpClient  # noqa: E402
from gateway.runtime import build_store  # noqa: E402
from gateway.services.audit import verify_log  # noqa: E402
from tests.support.processes import GatewayProcess  # noqa: E402
from tests.support.samples import document, status  # noqa: E402

PG_CTL = [
    "pg_ctlcluster",
    "--skip-systemctl-redirect",
    sorted(os.listdir("/etc/postgresql"))[-1],
    "main",
]
FAULT_KINDS = ("rabbitmq", "postgres", "kill")
RECEIVERS = {f"chaos.r{j}": [f"000.00.{20 + 2 * j + k}.H53" for k in (0, 1)] for j in range(3)}
SYSTEM_OF = {code: system for system, codes in RECEIVERS.items() for code in codes}
NODE_OVERRIDES = {"LIENTHONG_INBOX_LEASE_SECONDS": "60"}
DRAIN_SECONDS, FAIL_SHARE, STATUS_SHARE, SMALL_SHARE = 180.0, 0.05, 0.15, 0.5
ATTACHMENT = re.compile(rb"(<edXML:ContentTransferEncoded[^>]*>)[^<]*(<)")
KEY_PARTS = [
    re.compile(rb"<edXML:From>\s*<edXML:OrganId>([^<]*)<"),
    re.compile(rb"<edXML:MessageHeader>.*?<edXML:DocumentId>([^<]*)<", re.S),
    re.compile(rb"<edXML:StatusCode>([^<]*)<"),
]
Key = tuple[str, ...]  # (From code, DocumentId, StatusCode or ""): one package
Pair = tuple[Key, str]  # (package, recipient code): one expected delivery


def key_of(package: bytes) -> Key:
    """What identifies a package on both sides (the node's TraceHeader comes after these)."""
    return tuple((m.group(1).decode() if (m := r.search(package)) else "") for r in KEY_PARTS)


def small_attachment(rng: random.Random) -> bytes:
    """The base64 of a zip of a few KB (an attachment declared application/zip must be one)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("note.txt", rng.randbytes(rng.randint(1, 8) * 1024))
    return base64.b64encode(buffer.getvalue())


def sh(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def restore_services() -> None:
    """Idempotent: the RabbitMQ app started, PostgreSQL running (also after Ctrl-C)."""
    sh("rabbitmqctl", "start_app")
    if sh(*PG_CTL, "status").returncode != 0:
        sh(*PG_CTL, "start")


@dataclass
class Package:
    kind: str  # edoc | status
    system: str
    recipients: list[str]
    body: bytes
    key: Key = ()
    started: float = 0.0  # client epoch at the first attempt
    attempts: int = 0
    accepted_at: float = 0.0  # seconds into the run
    outcome: str | None = None  # accepted | refused; None while in doubt
    doc_ids: set[str] = field(default_factory=set)
    then: Package | None = None  # the status 03 sent once this 01 is accepted


@dataclass
class Seen:
    """A delivery id as the pollers saw it."""

    first_seen: float
    to_code: str
    key: Key | None = None  # once downloaded
    failed: bool = False
    done: bool = False


@dataclass
class Node:
    gateway: GatewayProcess
    http: httpx.AsyncClient
    clients: dict[str, VxpClient]


class Chaos:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.rng = args, random.Random(args.seed)
        self.data_dir = Path(tempfile.mkdtemp(prefix="chaos-"))
        self.settings = node_settings(
            "production", self.data_dir, secrets.token_hex(4), prefix="chaos"
        )
        database = database_of(self.settings)
        assert database is not None
        self.database = database
        self.senders = {f"chaos.s{i}": f"000.00.{10 + i}.H53" for i in range(args.senders)}
        self.nodes: list[Node] = []  # live, in use
        self.all_nodes: list[Node] = []
        self.packages: list[Package] = []
        self.retry: list[tuple[float, Package]] = []  # (not before, package)
        self.status_jobs: deque[Package] = deque()
        self.in_flight, self.next_slot, self.t0 = 0, 0.0, time.monotonic()
        self.refused: Counter[str] = Counter()
        self.refusal_text: dict[str, str] = {}
        self.retries: Counter[str] = Counter()  # sends, by reason
        self.transport: Counter[str] = Counter()  # requests without an answer, every client
        self.poll_errors: Counter[str] = Counter()
        self.new_handouts: Counter[str] = Counter()
        self.seen: dict[str, Seen] = {}
        self.faults: list[tuple[float, str, str]] = []
        self.stop_load = asyncio.Event()

    # -- the node ----------------------------------------------------------------------------

    async def setup(self) -> None:
        await create_database(self.database)
        migrate(self.settings.resolved_database_url)
        await register_systems(
            self.settings,
            {
                system: ([code] if isinstance(code, str) else code, f"{system}-secret")
                for system, code in [*self.senders.items(), *RECEIVERS.items()]
            },
        )
        for _ in range(self.args.processes):
            self.nodes.append(await self.start_node())

    async def start_node(self) -> Node:
        env = node_env(self.settings, **NODE_OVERRIDES)
        gateway = GatewayProcess(env, self.data_dir / f"serve-{len(self.all_nodes)}.log")
        http = httpx.AsyncClient(base_url=gateway.url, timeout=30)
        node = Node(
            gateway,
            http,
            {s: VxpClient(http, s, f"{s}-secret") for s in [*self.senders, *RECEIVERS]},
        )
        self.all_nodes.append(node)
        await gateway.wait_ready(timeout=60)
        return node

    async def call(
        self,
        system: str,
        index: int,
        label: str,
        operation: Callable[[VxpClient], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any] | None:
        """A request through one of the live processes; None if no (JSON) answer came."""
        try:
            if not self.nodes:
                raise LookupError("no live gateway process")
            return await operation(self.nodes[index % len(self.nodes)].clients[system])
        except (httpx.HTTPError, ValueError, LookupError, RuntimeError) as error:
            self.transport[f"{label}: {type(error).__name__}"] += 1
            return None

    # -- senders -----------------------------------------------------------------------------

    def next_package(self, index: int) -> Package | None:
        """A retry that is due; else (while the load runs) a status to send, or a document."""
        now = time.monotonic()
        for position, (not_before, _) in enumerate(self.retry):
            if not_before <= now:
                return self.retry.pop(position)[1]
        if self.stop_load.is_set():
            return None
        if self.status_jobs:
            return self.status_jobs.popleft()
        system = list(self.senders)[index % len(self.senders)]
        recipients = self.rng.sample(sorted(SYSTEM_OF), self.rng.randint(1, 3))
        body = document(self.senders[system], recipients)
        if self.rng.random() < SMALL_SHARE:
            filler = small_attachment(self.rng)
            body = ATTACHMENT.sub(lambda m: m.group(1) + filler + m.group(2), body, count=1)
        return Package("edoc", system, recipients, body)

    async def sender(self, index: int) -> None:
        """Paced to --rate in total; after the load, only until nothing is left in doubt."""
        while True:
            if not self.stop_load.is_set():
                now = time.monotonic()
                at = max(self.next_slot, now)
                self.next_slot = at + 1 / self.args.rate
                await asyncio.sleep(at - now)
            package = self.next_package(index)
            if package is not None:
                await self.send(package, index)
            elif self.stop_load.is_set() and not self.retry and not self.in_flight:
                return
            else:
                await asyncio.sleep(0.1)

    async def send(self, package: Package, index: int) -> None:
        if not package.attempts:
            package.key, package.started = key_of(package.body), time.time()
            self.packages.append(package)
        package.attempts += 1
        self.in_flight += 1
        try:
            answer = await self.call(
                package.system,
                index + package.attempts,
                "sendEdoc",
                lambda c: c.send_edoc(package.body, package.key[0], package.kind),
            )
        finally:
            self.in_flight -= 1
        code = str(answer.get("ErrorCode")) if answer else ""
        if answer is None or code == "20" or answer["_http_status"] >= 500:
            self.retries[
                "no answer" if answer is None else f"HTTP {answer['_http_status']} ErrorCode {code}"
            ] += 1
            backoff = min(8.0, 0.25 * 2**package.attempts) * self.rng.uniform(0.5, 1.0)
            self.retry.append((time.monotonic() + backoff, package))
        elif answer["status"] == "OK" or (
            code == "24" and package.attempts > 1 and answer.get("DocId")
        ):
            package.outcome, package.accepted_at = "accepted", time.monotonic() - self.t0
            package.doc_ids.add(answer["DocId"])
            if code == "24":
                self.retries["(retry answered 24: duplicate of the original)"] += 1
            if package.then is not None:
                self.status_jobs.append(package.then)
        else:
            package.outcome = "refused"
            self.refused[code] += 1
            self.refusal_text.setdefault(code, str(answer.get("ErrorDesc"))[:200])

    # -- pollers -----------------------------------------------------------------------------

    async def poller(self, system: str, kind: str, index: int) -> None:
        backlog: list[dict[str, str]] = []  # handed to this poller, not yet acknowledged
        while True:
            index += 1  # the next request goes to the next process
            if not backlog:
                answer = await self.call(
                    system, index, "getReceivedEdocList", lambda c: c.get_received(kind)
                )
                if answer is None or answer.get("status") != "OK":
                    if answer is not None:
                        self.poll_errors[f"list ErrorCode {answer.get('ErrorCode')}"] += 1
                    await asyncio.sleep(0.5)
                    continue
                backlog, now = answer["data"], time.time()
                for item in backlog:
                    self.seen.setdefault(item["docId"], Seen(now, item["to"]))
                    self.new_handouts[item["docId"]] += item["status"] == "new"
                if not backlog:
                    await asyncio.sleep(0.2)
                    continue
            if await self.receive(system, backlog[0]["docId"], index):
                backlog.pop(0)
            else:
                await asyncio.sleep(0.5)

    async def receive(self, system: str, delivery_id: str, index: int) -> bool:
        """getEdoc, then updateStatus (`fail` once for ~5%); False: no answer, try again."""
        seen, step = self.seen[delivery_id], "getEdoc"
        answer = await self.call(system, index, step, lambda c: c.get_edoc(delivery_id))
        if answer is not None and answer["status"] == "OK":
            seen.key = key_of(base64.b64decode(answer["data"]))
            outcome = "fail" if not seen.failed and self.rng.random() < FAIL_SHARE else "done"
            seen.failed = True  # a retried acknowledgement says done: one fail at most
            step = "updateStatus"
            answer = await self.call(
                system, index + 1, step, lambda c: c.update_status(delivery_id, outcome)
            )
            if answer is not None and answer["status"] == "OK":
                if outcome == "done" and not seen.done:
                    seen.done = True
                    if self.rng.random() < STATUS_SHARE and not seen.key[2]:
                        self.answer_with_statuses(seen.key, seen.to_code)
                return True
        if answer is not None:
            self.poll_errors[
                f"{step} HTTP {answer['_http_status']} ErrorCode {answer.get('ErrorCode')}"
            ] += 1
        # no answer, or the node could not work (20): again; else it comes back after the lease
        return not (answer is None or answer.get("ErrorCode") == "20")

    def answer_with_statuses(self, key: Key, to_code: str) -> None:
        """01 then 03 from the recipient agency, through its receiving system."""
        if self.stop_load.is_set():
            return
        first, then = (
            Package("status", SYSTEM_OF[to_code], [key[0]], status(to_code, key[0], key[1], code))
            for code in ("01", "03")
        )
        first.then = then
        self.status_jobs.append(first)

    # -- faults ------------------------------------------------------------------------------

    async def fault_loop(self) -> None:
        low, high = self.args.fault_interval
        order = self.args.faults
        next_at = time.monotonic() + self.rng.uniform(low, high)
        while True:
            try:
                await asyncio.wait_for(self.stop_load.wait(), max(0, next_at - time.monotonic()))
                return
            except TimeoutError:
                pass
            started = time.monotonic()
            kind = order[len(self.faults) % len(order)] if order else self.rng.choice(FAULT_KINDS)
            detail = await getattr(self, f"fault_{kind}")()
            self.faults.append((started - self.t0, kind, detail))
            next_at = max(started + self.rng.uniform(low, high), time.monotonic() + 1)

    async def fault_rabbitmq(self) -> str:
        down = self.rng.uniform(5, 20)
        stop = await asyncio.to_thread(sh, "rabbitmqctl", "stop_app")
        try:
            await asyncio.sleep(down)
        finally:
            start = await asyncio.to_thread(sh, "rabbitmqctl", "start_app")
        problems = [r.stderr.strip()[:200] for r in (stop, start) if r.returncode]
        return f"stop_app for {down:.1f} s" + (f" PROBLEM {problems}" if problems else "")

    async def fault_postgres(self) -> str:
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(sh, *PG_CTL, "restart")
        finally:
            await asyncio.to_thread(restore_services)
        problem = f" PROBLEM {result.stderr.strip()[:200]}" if result.returncode else ""
        return f"restart took {time.monotonic() - started:.1f} s{problem}"

    async def fault_kill(self) -> str:
        victim = self.rng.choice(self.nodes).gateway
        os.kill(victim.process.pid, signal.SIGKILL)
        await asyncio.to_thread(victim.process.wait)
        self.nodes = [n for n in self.nodes if n.gateway is not victim]
        started = time.monotonic()
        self.nodes.append(replacement := await self.start_node())
        return (
            f"SIGKILL pid {victim.process.pid} ({victim.url}); replacement "
            f"{replacement.gateway.url} healthy after {time.monotonic() - started:.1f} s"
        )

    # -- the run -----------------------------------------------------------------------------

    def expected(self) -> dict[Pair, Package]:
        return {
            (p.key, r): p for p in self.packages if p.outcome == "accepted" for r in p.recipients
        }

    def drained(self) -> bool:
        if self.retry or self.in_flight or any(p.outcome is None for p in self.packages):
            return False
        return set(self.expected()) <= {(s.key, s.to_code) for s in self.seen.values() if s.done}

    async def run(self) -> int:
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.setup()
            self.t0 = time.monotonic()
            tasks += [asyncio.create_task(self.sender(i)) for i in range(self.args.senders)]
            tasks += [
                asyncio.create_task(self.poller(system, "edoc", i))
                for system in RECEIVERS
                for i in range(self.args.pollers)
            ]
            tasks += [
                asyncio.create_task(self.poller(system, "status", i))
                for i, system in enumerate(self.senders)
            ]
            tasks.append(faults := asyncio.create_task(self.fault_loop()))
            await asyncio.sleep(self.args.duration)
            self.stop_load.set()
            load_seconds = time.monotonic() - self.t0
            await faults  # a fault under way ends, its service restored, first
            await asyncio.to_thread(restore_services)
            while len(self.nodes) < self.args.processes:
                self.nodes.append(await self.start_node())
            deadline = time.monotonic() + DRAIN_SECONDS
            while not self.drained() and time.monotonic() < deadline:
                await asyncio.sleep(1)
            drain_seconds = time.monotonic() - self.t0 - load_seconds
            await asyncio.sleep(2)  # a late second copy would show up now
            return await self.report(load_seconds, drain_seconds)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.cleanup()

    async def cleanup(self) -> None:
        for node in self.all_nodes:
            await asyncio.to_thread(node.gateway.stop)
            await node.http.aclose()
        await asyncio.to_thread(restore_services)
        if self.args.keep_logs:
            Path(self.args.keep_logs).mkdir(parents=True, exist_ok=True)
            for log in self.data_dir.glob("serve-*.log"):
                shutil.copy(log, self.args.keep_logs)
        for what, step in (
            ("broker topology", delete_broker_namespace(self.settings)),
            (f"database {self.database}", drop_database(self.database)),
        ):
            try:
                await step
            except Exception as error:  # shown; the rest of the cleanup goes on
                print(f"cleanup: {what} not removed: {error!r}", file=sys.stderr)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    async def database_facts(self) -> tuple[dict[str, int], int]:
        """(deliveries by state, packages stored as two messages), from the database."""
        connection = await asyncpg.connect(self.settings.database_url)
        try:
            states = await connection.fetch(
                "SELECT state, count(*) FROM deliveries GROUP BY state ORDER BY state"
            )
            return dict(states), await connection.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM messages GROUP BY sender_system_id, kind, "
                "from_code, document_id, coalesce(status_code, '') HAVING count(*) > 1) t"
            )
        finally:
            await connection.close()

    def server_logs(self) -> list[str]:
        """The most frequent ERROR/CRITICAL lines and exception lines of the gateway logs."""
        lines: Counter[str] = Counter()
        for log in sorted(self.data_dir.glob("serve-*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if re.search(r"\b(ERROR|CRITICAL)\b", line) or re.match(
                    r"[A-Za-z_][\w.]*(Error|Exception)\b", line
                ):
                    lines[re.sub(r"\d", "#", line)[:200]] += 1
        return [f"{n:>5} x {line}" for line, n in lines.most_common(10)]

    async def report(self, load_seconds: float, drain_seconds: float) -> int:
        expected = self.expected()
        delivered: dict[Pair, list[str]] = {}
        for delivery_id, seen in self.seen.items():
            if seen.key is not None:
                delivered.setdefault((seen.key, seen.to_code), []).append(delivery_id)
        accepted = [p for p in self.packages if p.outcome == "accepted"]
        lost = [pair for pair in expected if pair not in delivered]
        unexpected = [pair for pair in delivered if pair not in expected]
        latencies = [
            (min(self.seen[d].first_seen for d in delivered[pair]) - p.started) * 1000
            for pair, p in expected.items()
            if pair in delivered
        ]
        store = build_store(self.settings)
        try:
            chain = await verify_log(store)
        finally:
            await store.close()
        states, stored_twice = await self.database_facts()
        doubled = {
            "`new` handed out twice": sum(max(0, n - 1) for n in self.new_handouts.values()),
            "two deliveries for one package+recipient": sum(
                len(ids) - 1 for ids in delivered.values()
            ),
            "two DocIds for one package": sum(len(p.doc_ids) - 1 for p in accepted),
            "one package stored as two messages": stored_twice,
        }
        duplicates, a, logs = sum(doubled.values()), self.args, self.server_logs()
        windows = Counter(int(p.accepted_at // 10) for p in accepted)
        lines = [
            f"\ncommand: {command_line()}",
            f"duration: load {load_seconds:.1f} s, then drain {drain_seconds:.1f} s; processes "
            f"{a.processes}, senders {a.senders}, pollers {a.pollers}/system, rate {a.rate}/s, "
            f"seed {a.seed}",
            f"faults injected: {len(self.faults)} {dict(Counter(k for _, k, _ in self.faults))}",
            *(f"  t={at:7.1f} s  {kind:<9} {detail}" for at, kind, detail in self.faults),
            f"packages: submitted {len(self.packages)} "
            f"{dict(Counter(p.kind for p in self.packages))}, accepted {len(accepted)}, refused "
            f"{self.refused.total()} {dict(self.refused)}, unresolved "
            f"{sum(p.outcome is None for p in self.packages)}",
            *(f"  refused {code}: {text}" for code, text in self.refusal_text.items()),
            f"  send retries: {sum(v for k, v in self.retries.items() if '24' not in k)} "
            f"{dict(self.retries)}",
            f"  requests without an answer: {dict(self.transport)}",
            f"deliveries: expected {len(expected)}, delivered {len(self.seen)}, duplicates "
            f"{duplicates}, lost {len(lost)}, unexpected {len(unexpected)}, not acknowledged "
            f"{sum(not s.done for s in self.seen.values())}, never downloaded "
            f"{sum(s.key is None for s in self.seen.values())}",
            f"  duplicates: {doubled}",
            *(
                f"  {'lost' if pair in expected else 'unexpected'}: {pair}"
                for pair in (lost + unexpected)[:5]
            ),
            f"latency send→first seen (ms): p50 {percentile(latencies, 0.5):.0f}  p99 "
            f"{percentile(latencies, 0.99):.0f}  max {max(latencies, default=math.nan):.0f}  "
            f"(n={len(latencies)})",
            f"throughput: {len(accepted) / load_seconds:.1f} accepted/s; accepted per 10 s: "
            + " ".join(str(windows[w]) for w in range(max(windows, default=-1) + 1)),
            f"evidence chain: {'verifies' if chain.ok else 'BROKEN'}, {chain.checked} entries"
            + ("" if chain.ok else f" (at {chain.broken_at}: {chain.problem})"),
            f"database: deliveries by state {states}",
            *([f"poller errors: {dict(self.poll_errors)}"] if self.poll_errors else []),
            *(
                ["gateway logs, most frequent ERROR/exception lines (digits as #):", *logs]
                if logs
                else []
            ),
        ]
        broken = bool(lost or duplicates or unexpected or not chain.ok)
        print("\n".join([*lines, f"verdict: {'FAILED' if broken else 'OK'}"]))
        return 1 if broken else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, required=True, help="seconds of load")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--pollers", type=int, default=4, help="per receiving system")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="packages/s in total")
    parser.add_argument(
        "--fault-interval",
        default="30,90",
        help="LOW,HIGH seconds",
        type=lambda text: tuple(float(x) for x in text.split(",")),
    )
    parser.add_argument(
        "--faults",
        default=None,
        help="kinds taken round-robin, e.g. "
        "rabbitmq,postgres,kill (default: a random kind each time)",
        type=lambda text: [k for k in text.split(",") if k],
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the gateway logs there")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if args.faults and not set(args.faults) <= set(FAULT_KINDS):
        parser.error(f"--faults: kinds are {', '.join(FAULT_KINDS)}")
    try:
        return asyncio.run(Chaos(args).run())
    except KeyboardInterrupt:
        print("interrupted: no report; services restored, node cleaned up", file=sys.stderr)
        return 130
    finally:
        restore_services()


if __name__ == "__main__":
    sys.exit(main())
