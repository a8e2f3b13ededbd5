"""Submit throughput and submit→available latency, over `/vxp/sendEdoc` and without HTTP.

Why these figures: a sender only gets its id after the accepting transaction commits (SPEC §3.1
step 3), so "accepted packages per second" is what a node can take in; "submit→available" (the
client's clock just before the request to the delivery's `available_at`) is what a polling
recipient waits for: accept, outbox relay, broker, inbox consumer (steps 3–5). The same packages
go once through a real `lienthong serve` subprocess driven by SDK-compatible clients, and once
straight into an in-process `Runtime` (spool + `runtime.submit`, same concurrency): the ratio
between the two is the cost of the HTTP layer (auth, streaming, hash check, uvicorn), the
baseline is the cost of the stack itself. Each run gets a fresh node (data dir, database, broker
namespace), so neither inherits the other's rows or queues. Figures only, no assertions.

    python bench/submit_throughput.py --backend embedded|production --packages N \
        --concurrency C [--size-kb K]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import io
import math
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from cryptography.fernet import Fernet

from adapters.broker.rabbitmq import RabbitMQBroker
from adapters.db.migrate import migrate
from adapters.db.store import SqlStore
from adapters.vxp_client import VxpClient
from gateway.runtime import Runtime, build_broker, build_store
from gateway.services.directory import add_system
from gateway.services.submission import Submission
from gateway.settings import Settings
from gateway.spool import spool_body
from gateway.types import MessageKind

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "samples" / "vpcp-sdk" / "edoc_new.edxml"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
SENDER, RECEIVER = "bench.sender", "bench.receiver"
FROM_CODE, TO_CODE = "000.00.00.H01", "000.00.00.H02"
AVAILABLE_TIMEOUT = 120.0
CHUNK = 64 * 1024


@dataclass
class RunResult:
    name: str
    submit_seconds: float = 0.0
    started: dict[int, float] = field(default_factory=dict)  # package index → client epoch
    deliveries: dict[int, list[str]] = field(default_factory=dict)  # index → delivery ids
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    unavailable: int = 0
    notes: list[str] = field(default_factory=list)


def random_zip(size: int) -> bytes:
    """A real zip (the attachment is declared application/zip) of about `size` bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("document.doc", os.urandom(max(0, size - 200)))
    return buffer.getvalue()


def build_packages(count: int, size_kb: int | None) -> list[bytes]:
    """N distinct packages from the SDK sample: our sender and receiver codes, a unique
    DocumentId each; optionally the attachment resized so a package is about `size_kb` KiB."""
    text = SAMPLE.read_text(encoding="utf-8")
    # The kit's sample carries a fake signature, refused under the default policy.
    text = re.sub(r"\s*<Signature>.*?</Signature>", "", text, count=1, flags=re.S)
    text = text.replace(
        "<edXML:OrganId>000.00.00.A80</edXML:OrganId>",
        f"<edXML:OrganId>{FROM_CODE}</edXML:OrganId>",
        1,
    )
    text = text.replace(
        "<edXML:OrganId>28.22.H17</edXML:OrganId>", f"<edXML:OrganId>{TO_CODE}</edXML:OrganId>", 1
    )
    attachment = re.compile(r"(<edXML:ContentTransferEncoded[^>]*>)([^<]*)(<)")
    if size_kb is not None:
        overhead = len(attachment.sub(r"\1\3", text, count=1).encode())
        chars = max(4, (size_kb * 1024 - overhead - 80) // 4 * 4)
        filler = base64.b64encode(random_zip(chars // 4 * 3)).decode()
        text = attachment.sub(lambda m: m.group(1) + filler + m.group(3), text, count=1)
    document_id = re.compile(r"<edXML:DocumentId>[^<]*</edXML:DocumentId>")
    tag = secrets.token_hex(3)
    return [
        document_id.sub(
            f"<edXML:DocumentId>{FROM_CODE},2026/01/01,{tag}-{i}/BENCH</edXML:DocumentId>",
            text,
            count=1,
        ).encode()
        for i in range(count)
    ]


@contextlib.contextmanager
def isolated_node(backend: str) -> Iterator[Settings]:
    """A fresh data dir (and for `production` database + broker namespace), migrated, with a
    sender serving `#.H01` and a receiver serving `#.H02`; everything removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="lienthong-bench-"))
    suffix = secrets.token_hex(4)
    fields: dict[str, object] = {"data_dir": data_dir, "secret_key": Fernet.generate_key().decode()}
    database = f"bench_{suffix}" if backend == "production" else None
    if database:
        fields |= {
            "database_url": f"postgresql://postgres@127.0.0.1:5432/{database}",
            "broker_url": AMQP,
            "broker_namespace": f"bench-{suffix}",
        }
    settings = Settings(**fields)  # type: ignore[arg-type]
    try:
        if database:
            asyncio.run(_pg_admin(f"CREATE DATABASE {database}"))
        migrate(settings.resolved_database_url)
        asyncio.run(_register_systems(settings))
        yield settings
    finally:
        if database:
            with contextlib.suppress(Exception):
                broker = build_broker(settings)
                if isinstance(broker, RabbitMQBroker):
                    asyncio.run(broker.delete_topology())
            asyncio.run(_pg_admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        shutil.rmtree(data_dir, ignore_errors=True)


async def _pg_admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_ADMIN)
    await connection.execute(sql)
    await connection.close()


async def _register_systems(settings: Settings) -> None:
    store = build_store(settings)
    try:
        await add_system(store, SENDER, ["#.H01"], secret="bench-sender-secret")
        await add_system(store, RECEIVER, ["#.H02"], secret="bench-receiver-secret")
    finally:
        await store.close()


def node_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
    env |= {
        "LIENTHONG_DATA_DIR": str(settings.data_dir),
        "LIENTHONG_SECRET_KEY": settings.secret_key,
        "LIENTHONG_BROKER_URL": settings.broker_url,
        "LIENTHONG_BROKER_NAMESPACE": settings.broker_namespace,
        # C concurrent clients of one system: the per-system upload cap would throttle it
        "LIENTHONG_MAX_UPLOADS_PER_SYSTEM": "1000",
    }
    if settings.database_url:
        env["LIENTHONG_DATABASE_URL"] = settings.database_url
    return env


async def run_workers(
    packages: list[bytes],
    concurrency: int,
    submit_one: Callable[[int, int, bytes], Awaitable[None]],
) -> float:
    """Feed every package to `concurrency` workers (`submit_one(worker, index, package)`);
    returns the wall time of the whole submit phase."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(packages)):
        queue.put_nowait(index)

    async def worker(number: int) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            await submit_one(number, index, packages[index])

    started = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return time.perf_counter() - started


async def wait_available(store: SqlStore, result: RunResult) -> None:
    """Poll `available_at` until every delivery has one (bounded); latency = available_at minus
    the client's start time. The poll interval does not enter the figures: the stored time does."""
    wanted = {d: i for i, ids in result.deliveries.items() for d in ids}
    seen: dict[str, float] = {}
    deadline = time.monotonic() + AVAILABLE_TIMEOUT
    while len(seen) < len(wanted) and time.monotonic() < deadline:
        pending = [d for d in wanted if d not in seen]
        for start in range(0, len(pending), 500):
            stamps = await store.delivery_timestamps(pending[start : start + 500])
            seen |= {d: at.timestamp() for d, (_, at) in stamps.items() if at is not None}
        if len(seen) < len(wanted):
            await asyncio.sleep(0.5)
    result.unavailable = len(wanted) - len(seen)
    result.latencies_ms = [(at - result.started[wanted[d]]) * 1000 for d, at in seen.items()]


async def http_run(settings: Settings, packages: list[bytes], concurrency: int) -> RunResult:
    result = RunResult("http /vxp")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = settings.data_dir / "serve.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--no-migrate", "--port", str(port)],
            env=node_env(settings),
            cwd=settings.data_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    store = build_store(settings)
    try:
        await _wait_healthy(base, server, log_path)
        message_of: dict[int, str] = {}
        clients = [httpx.AsyncClient(base_url=base, timeout=120) for _ in range(concurrency)]
        vxps = [VxpClient(client, SENDER, "bench-sender-secret") for client in clients]

        async def submit_one(worker: int, index: int, package: bytes) -> None:
            result.started[index] = time.time()
            try:
                answer = await vxps[worker].send_edoc(package, FROM_CODE)
            except Exception as error:  # counted and shown, not raised
                result.failures.append(f"#{index}: {type(error).__name__}: {error}")
                return
            if answer.get("status") != "OK" or not answer.get("DocId"):
                result.failures.append(f"#{index}: {answer}")
            else:
                message_of[index] = answer["DocId"]

        try:
            result.submit_seconds = await run_workers(packages, concurrency, submit_one)
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
        views = await store.sent_deliveries(SENDER, limit=len(packages) * 2 + 100)
        by_message: dict[str, list[str]] = {}
        for view in views:
            by_message.setdefault(view.message_id, []).append(view.delivery_id)
        result.deliveries = {i: by_message.get(m, []) for i, m in message_of.items()}
        missing = [i for i, ids in result.deliveries.items() if not ids]
        if missing:
            result.failures.append(f"{len(missing)} accepted packages have no delivery row")
        await wait_available(store, result)
    finally:
        await store.close()
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        bad = [
            line
            for line in log_path.read_text(errors="replace").splitlines()
            if re.search(r"\b(ERROR|CRITICAL|WARNING|Traceback)\b", line)
        ]
        if bad:
            result.notes.append(
                f"server log: {len(bad)} WARNING/ERROR/Traceback lines, "
                "first: " + " | ".join(bad[:3])
            )
    return result


async def _wait_healthy(base: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base, timeout=2) as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(
                    f"lienthong serve exited with {server.returncode}:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("lienthong serve did not answer /healthz within 60 s")


async def baseline_run(settings: Settings, packages: list[bytes], concurrency: int) -> RunResult:
    result = RunResult("baseline")
    runtime = Runtime(settings)
    await runtime.start()
    try:
        system = await runtime.store.get_system(SENDER)
        assert system is not None

        async def chunks(package: bytes) -> AsyncIterator[bytes]:
            for start in range(0, len(package), CHUNK):
                yield package[start : start + CHUNK]

        async def submit_one(_worker: int, index: int, package: bytes) -> None:
            result.started[index] = time.time()
            try:
                body = await spool_body(
                    chunks(package), settings.spool_dir, settings.max_package_bytes, slack=0
                )
                accepted = await runtime.submit(
                    Submission(
                        system=system,
                        body=body,
                        declared_kind=MessageKind.EDOC,
                        declared_from=FROM_CODE,
                    )
                )
            except Exception as error:  # counted and shown, not raised
                result.failures.append(f"#{index}: {type(error).__name__}: {error}")
                return
            result.deliveries[index] = [d.delivery_id for d in accepted.deliveries]

        result.submit_seconds = await run_workers(packages, concurrency, submit_one)
        await wait_available(runtime.store, result)
    finally:
        await runtime.stop()
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def report(args: argparse.Namespace, size: int, results: list[RunResult]) -> None:
    print(f"\ncommand: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"backend={args.backend}  N={args.packages}  C={args.concurrency}  "
        f"package={size / 1024:.1f} KiB\n"
    )
    header = (
        f"{'run':<10} {'accepted/s':>10} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} "
        f"{'failed':>6} {'unavail':>7}"
    )
    print(header + "\n" + "-" * len(header))
    for r in results:
        accepted = len(r.deliveries) / r.submit_seconds if r.submit_seconds else 0.0
        lat = r.latencies_ms
        print(
            f"{r.name:<10} {accepted:>10.1f} {percentile(lat, 0.5):>9.1f} "
            f"{percentile(lat, 0.99):>9.1f} {max(lat, default=float('nan')):>9.1f} "
            f"{len(r.failures):>6} {r.unavailable:>7}"
        )
    if len(results) == 2 and all(r.submit_seconds and r.latencies_ms for r in results):
        http, base = results
        rate = (len(http.deliveries) / http.submit_seconds) / (
            len(base.deliveries) / base.submit_seconds
        )
        p50 = percentile(http.latencies_ms, 0.5) / percentile(base.latencies_ms, 0.5)
        print(f"\nHTTP/baseline: accepted/s x{rate:.2f}, p50 x{p50:.2f}")
    for r in results:
        for line in r.failures[:5] + r.notes:
            print(f"[{r.name}] {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["embedded", "production"], required=True)
    parser.add_argument("--packages", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--size-kb", type=int, default=None)
    args = parser.parse_args()
    packages = build_packages(args.packages, args.size_kb)
    results: list[RunResult] = []
    for run in (http_run, baseline_run):
        with isolated_node(args.backend) as settings:
            results.append(asyncio.run(run(settings, packages, args.concurrency)))
    report(args, len(packages[0]), results)
    broken = any(r.failures or r.unavailable or len(r.deliveries) != args.packages for r in results)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
