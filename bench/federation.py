"""Three nodes end to end (issue #12): documents/s across two hops and send → recipient-
available latency, next to the single-node figures measured in the same run.

Three real `lienthong serve` processes on loopback — province p53 (000.00.00.H53), the national
node (000.00.00.G22), province p54 (000.00.00.H54) — each with a fresh database (production:
PostgreSQL + a RabbitMQ vhost of its own, as in tests/test_federation_processes.py; embedded:
SQLite + the in-process broker), configured with the CLI as operators do (README, "Federation").
Both paths use the same processes and C, N distinct ~10 KiB unsigned letters, after a few
unmeasured warm-up documents through each:
  single-node  agency H53 A sends at p53 to agency H53 B, whose system polls p53: one hop.
  three-node   H53 A sends at p53 to H54 A: p53 forwards to the national node (sendEdoc),
               p54 polls it (list, getEdoc, submit, ack), H54 A's system polls p54.
Senders: C SDK-style clients (`common.Submitter`). A recipient system lists its inbox every
`--recipient-poll-seconds`, stamps each item when first listed (that interval bounds the
resolution), then downloads it — getEdoc gives the DocumentId, which the list entry lacks —
and acknowledges `done`, as a real system does. Latency: first listed − the client's clock
before its sendEdoc; docs/s: N / (first send → last listed). CPU per document: each serve
process (its pollers idling included), every postgres + beam.smp of the machine (others'
load included), this process (clients, recipients). Downstream reads: node default (60 s).
`--forward-lease-seconds`: on PostgreSQL a forward that finds its delivery row still locked
by the relay's accepted→queued step is BUSY and looked at again only after this lease (node
default 180 s; the stale sweep republishes it first, ~120-150 s): it shows what that costs.

    python bench/federation.py [--backend production,embedded] [--documents 300] [--clients 8]
        [--poll-seconds 0.2] [--poll-batch 100] [--warmup 10] [--forward-lease-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import common
import httpx
from common import AMQP, INFRA_PROCESSES, Server, Submitter, percentile
from small_packages import csv_list, ms, ratio

from adapters.vxp_client import VxpClient
from gateway.settings import Settings

CODES = {"p53": "000.00.00.H53", "national": "000.00.00.G22", "p54": "000.00.00.H54"}
H53_A, H53_B, H54_A = "000.00.01.H53", "000.00.02.H53", "000.00.01.H54"
SYSTEMS = {  # node → system id → (serves, secret)
    "national": {"P53": ("#.H53", "p53-at-national"), "P54": ("#.H54", "p54-at-national")},
    "p53": {"sys.h53a": (H53_A, "secret-h53a"), "sys.h53b": (H53_B, "secret-h53b")},
    "p54": {"sys.h54a": (H54_A, "secret-h54a")},
}
DOCUMENT_ID = re.compile(rb"<edXML:DocumentId>([^<]*)</edXML:DocumentId>")


@dataclass
class PathResult:
    name: str
    documents: int
    seconds: float = math.nan
    latencies_ms: list[float] = field(default_factory=list)
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per document, by process
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else math.nan


def document_id(package: bytes) -> str:
    return DOCUMENT_ID.search(package).group(1).decode()  # type: ignore[union-attr]


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True)


def cli(settings: Settings, code: str, *args: str) -> None:
    """`lienthong ARGS` for one node, as its operator types it."""
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=common.node_env(settings, LIENTHONG_NODE_CODE=code),
        check=True,
        capture_output=True,
    )


def add_systems(nodes: dict[str, Settings]) -> None:
    """The README's lines: the provinces as systems at the national node, the agencies'
    systems at the provinces."""
    for name, systems in SYSTEMS.items():
        for system_id, (serves, secret) in systems.items():
            cli(nodes[name], CODES[name], *f"systems add {system_id} --serves {serves}".split(),
                "--secret", secret)  # fmt: skip


def add_peers(nodes: dict[str, Settings], national_url: str) -> None:
    """The national node as each province's default peer (its port is known once it runs)."""
    for province, system_id in (("p53", "P53"), ("p54", "P54")):
        line = f"peers add national --url {national_url} --system-id {system_id} --default"
        cli(nodes[province], CODES[province], *line.split(), "--secret",
            SYSTEMS["national"][system_id][1])  # fmt: skip


async def receive(
    client: VxpClient, wanted: set[str], seen: dict[str, float], poll: float, timeout: float
) -> list[str]:
    """Poll the inbox until every wanted DocumentId was listed; stamp each item when first
    listed, then download and acknowledge it (4 at a time). Returns problems."""
    problems: list[str] = []
    gate = asyncio.Semaphore(4)

    async def take(doc_id: str, listed_at: float) -> None:
        async with gate:
            answer = await client.get_edoc(doc_id)
            if answer.get("status") != "OK":
                problems.append(f"getEdoc {doc_id}: {str(answer)[:200]}")
                return
            ident = document_id(base64.b64decode(answer["data"]))
            if ident not in wanted or ident in seen:
                problems.append(f"unexpected or repeated document {ident}")
            seen.setdefault(ident, listed_at)
            await client.update_status(doc_id, "done")

    deadline = time.monotonic() + timeout
    tasks: set[asyncio.Task[None]] = set()
    while not wanted <= seen.keys() and time.monotonic() < deadline:
        answer = await client.get_received()
        listed_at = time.time()
        for item in answer.get("data") or []:
            tasks.add(asyncio.create_task(take(str(item["docId"]), listed_at)))
        if tasks:
            _, tasks = await asyncio.wait(tasks, timeout=0)
        await asyncio.sleep(poll)
    await asyncio.gather(*tasks)
    if missing := len(wanted - seen.keys()):
        problems.append(f"{missing} of {len(wanted)} never listed within {timeout:.0f} s")
    return problems


async def run_path(
    name: str,
    servers: dict[str, Server],
    recipient: VxpClient,
    packages: Sequence[bytes],
    args: argparse.Namespace,
) -> PathResult:
    """The packages from H53 A at p53 by C clients, until the recipient listed them all."""
    result = PathResult(name, len(packages))
    ids = [document_id(p) for p in packages]
    started: dict[str, float] = {}
    seen: dict[str, float] = {}
    submitter = Submitter(
        servers["p53"].url, args.clients, "vxp", "sys.h53a", SYSTEMS["p53"]["sys.h53a"][1], H53_A
    )

    async def send(worker: int, index: int, package: bytes) -> None:
        started[ids[index]] = time.time()
        try:
            await submitter.submit(worker, package)
        except Exception as error:  # shown, not raised
            result.problems.append(f"send #{index}: {error}"[:300])

    cpu0 = {n: s.cpu_seconds() for n, s in servers.items()}
    infra0, own0 = common.named_processes_cpu_seconds(INFRA_PROCESSES), time.process_time()
    receiving = asyncio.create_task(
        receive(recipient, set(ids), seen, args.recipient_poll_seconds, args.timeout)
    )
    try:
        await common.run_workers(packages, args.clients, send, args.timeout)
        result.problems += await receiving
    finally:
        await submitter.close()
    cpu = {n: s.cpu_seconds() - cpu0[n] for n, s in servers.items()}
    cpu["db+mq"] = common.named_processes_cpu_seconds(INFRA_PROCESSES) - infra0
    cpu["bench"] = time.process_time() - own0
    result.cpu_ms = {n: seconds * 1000 / len(packages) for n, seconds in cpu.items()}
    if seen:
        result.seconds = max(seen.values()) - min(started.values())
    result.latencies_ms = [(at - started[ident]) * 1000 for ident, at in seen.items()]
    return result


async def measure(
    backend: str, nodes: dict[str, Settings], args: argparse.Namespace
) -> list[PathResult]:
    env = {
        "LIENTHONG_PEER_POLL_SECONDS": str(args.poll_seconds),
        "LIENTHONG_PEER_POLL_BATCH": str(args.poll_batch),
    }
    if args.forward_lease_seconds is not None:  # also how long a BUSY forward claim waits
        env["LIENTHONG_PEER_FORWARD_LEASE_SECONDS"] = str(args.forward_lease_seconds)
    add_systems(nodes)
    servers: dict[str, Server] = {}
    http: list[httpx.AsyncClient] = []
    try:
        for names in (["national"], ["p53", "p54"]):  # the provinces need the national URL
            for n in names:
                servers[n] = Server(nodes[n], LIENTHONG_NODE_CODE=CODES[n], **env)
            await asyncio.gather(*(servers[n].wait_healthy() for n in names))
            if names == ["national"]:
                add_peers(nodes, f"{servers['national'].url}/vxp")
        targets = {
            "single-node": ("p53", "sys.h53b", H53_B),
            "three-node": ("p54", "sys.h54a", H54_A),
        }
        results = []
        for warm in (True, False):
            for path, (node, system, code) in targets.items():
                http.append(httpx.AsyncClient(base_url=servers[node].url, timeout=60))
                client = VxpClient(http[-1], system, SYSTEMS[node][system][1])
                count = args.warmup if warm else args.documents
                packages = common.letter_packages(count, 10, H53_A, code)
                result = await run_path(path, servers, client, packages, args)
                if warm:
                    if result.problems:
                        raise RuntimeError(f"warm-up {path}: {result.problems[:3]}")
                    continue
                results.append(result)
                print(
                    f"  done: {backend} {path}: {result.rate:.1f} docs/s; load average "
                    + " ".join(f"{x:.2f}" for x in os.getloadavg()),
                    flush=True,
                )
        for name, server in servers.items():
            if (problems := server.log_problems()) is not None:
                results[-1].problems.append(f"(whole run) {name} {problems}"[:400])
        return results
    finally:
        await asyncio.gather(*(c.aclose() for c in http))
        await asyncio.gather(*(asyncio.to_thread(s.stop) for s in servers.values()))
        logs = Path(tempfile.mkdtemp(prefix=f"lienthong-fedbench-{backend}-logs-"))
        for name, server in servers.items():  # the data dirs go with the nodes: keep the logs
            shutil.copy(server.log_path, logs / f"{name}.log")
        print(f"  server logs: {logs}", flush=True)


def run_backend(backend: str, args: argparse.Namespace) -> list[PathResult]:
    """Fresh nodes (and on production a vhost each), removed afterwards."""
    with contextlib.ExitStack() as stack:
        nodes: dict[str, Settings] = {}
        for name in CODES:
            overrides = {}
            if backend == "production":
                vhost = f"lt-fedbench-{name}-{secrets.token_hex(4)}"
                rabbitmqctl("add_vhost", vhost)
                stack.callback(rabbitmqctl, "delete_vhost", vhost)
                rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
                overrides["broker_url"] = f"{AMQP}{vhost}"
            nodes[name] = stack.enter_context(
                common.isolated_node(backend, systems={}, prefix=f"fed_{name}", **overrides)
            )
        return asyncio.run(measure(backend, nodes, args))


def report(backend: str, results: list[PathResult]) -> None:
    columns = ["p53", "national", "p54", "db+mq", "bench"]
    header = f"{'backend':<11}{'path':<13}{'docs':>5}{'docs/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
    header += "".join(f"{c:>10}" for c in columns)
    print("\n" + header + "   (CPU ms per document)\n" + "-" * len(header))
    for r in results:
        if backend != "production":
            r.cpu_ms.pop("db+mq", None)  # no database or broker server of its own
        p50, p99 = percentile(r.latencies_ms, 0.5), percentile(r.latencies_ms, 0.99)
        print(
            f"{backend:<11}{r.name:<13}{len(r.latencies_ms):>5}{r.rate:>8.1f}{p50:>8.0f}"
            f"{p99:>8.0f}" + "".join(f"{ms(r.cpu_ms.get(c, math.nan)):>10}" for c in columns)
        )
    if len(results) == 2:
        one, three = results
        cpu = [sum(r.cpu_ms[c] for c in columns[:3]) for r in (three, one)]
        print(
            f"{backend:<11}{'three/single':<13}{'':>5}{ratio(three.rate, one.rate):>8}"
            f"{ratio(*(percentile(r.latencies_ms, 0.5) for r in (three, one))):>8}"
            f"{ratio(*(percentile(r.latencies_ms, 0.99) for r in (three, one))):>8}"
            f"   serve CPU/doc, all nodes: {ratio(*cpu)}"
        )
    for r in results:
        for problem in r.problems[:5]:
            print(f"[{backend} {r.name}] {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    backends = ["production", "embedded"]
    parser.add_argument("--backend", type=csv_list(str, backends), default=backends)
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--poll-seconds", type=float, default=0.2, help="peer polling")
    parser.add_argument("--poll-batch", type=int, default=100, help="peer items per poll")
    parser.add_argument("--recipient-poll-seconds", type=float, default=0.1,
                        help="how often the agency systems list their inbox")  # fmt: skip
    parser.add_argument("--forward-lease-seconds", type=float, help="default: the node's")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured, per path")
    parser.add_argument("--timeout", type=float, default=600.0, help="per path, seconds")
    args = parser.parse_args()
    print(f"command: {common.command_line()}")
    print(f"hardware: {common.hardware()}")
    size = len(common.letter_packages(1, 10, H53_A, H54_A)[0])
    print(
        f"payload: {size} bytes unsigned, N={args.documents}, C={args.clients}, warm-up "
        f"{args.warmup} per path, peer poll {args.poll_seconds} s batch {args.poll_batch}, "
        f"recipient poll {args.recipient_poll_seconds} s, forward lease "
        f"{args.forward_lease_seconds or 'node default'}",
        flush=True,
    )
    broken = False
    for backend in args.backend:
        results = run_backend(backend, args)
        report(backend, results)
        broken |= any(r.problems or len(r.latencies_ms) < r.documents for r in results)
    print(
        "\ndb+mq: every postgres + beam.smp of the machine; bench: this process (clients and"
        " recipients).\nload average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
