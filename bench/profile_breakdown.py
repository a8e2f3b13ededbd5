"""Where a production node's CPU goes (issue #11 asks, where a throughput goal is missed,
for "the profile that shows what bounds it"): py-spy samples of `lienthong serve` by component
while it takes distinct 10 KiB packages through `/vxp/sendEdoc`, unsigned and signed.

What runs: the HTTP row of bench/small_packages.py (its packages, signing, PKI, fresh
PostgreSQL + RabbitMQ node, `common.http_run`), `py-spy record --format raw --subprocesses
--gil` attached to the server (and workers) from after the warm-up until every delivery is
available (acceptance, relay, consumer).

Why `--gil` (no `--idle` either): a sample is then the thread holding the GIL, and one serve
process cannot take packages faster than 1 / its GIL time per package: that time, by
component, is what bounds it (`busy` near 1.0: the GIL is full). Without `--gil` py-spy
counted pool threads waiting on their queue, threads in fsync and threads waiting for the
GIL as running: 2-3x the server's CPU, and the pauses halved accepted/s (`--all-threads`
shows that view). What runs with the GIL released is not seen: lxml parses and validates
so (a parse loop showed half its samples with `--gil`), as do file I/O and hashing; on a
busy machine a GIL holder waiting for a core still counts. Compare samples with CPU.

Attribution rule: a sample goes to the component of its innermost frame that belongs to a
named component (by file: package under site-packages, stdlib module, or repository path).
So stdlib or unlisted code (json, re, hashlib, uuid, logging …) is charged to the component
that called it: json dumped by SQLAlchemy's JSON type is SQLAlchemy time. `leaf` is the part
whose innermost frame itself is in the component. C extensions show no frames (no
`--native`): lxml's parse and XSD validation appear as the gateway/edxml frame calling them,
asyncpg's Cython protocol as its Python frames, uvloop as the asyncio frame that entered it.
`gateway/*` and `adapters/*` outside edxml and signatures (API handlers, services, store,
relay, consumer) are "own code"; `other` has no named frame (a pool thread's own loop …).

    python bench/profile_breakdown.py [--packages 400] [--clients 32] [--signing unsigned,signed]
        [--workers 1] [--rate 200] [--nonblocking] [--all-threads] [--keep DIR] …  (--help)
py-spy needs ptrace (root or CAP_SYS_PTRACE); it pauses the server per sample unless
`--nonblocking`: consistent stacks, accepted/s a little under small_packages.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import common
from common import INFRA_PROCESSES, ROOT, BenchPki, Server, percentile, process_cpu_seconds
from small_packages import build, csv_list, ms, sign_all, signature_outcomes

SIGNATURES: tuple[str, ...] = ("adapters/signatures/", "gateway/signatures", "xmlsec")
SIGNATURES += ("cryptography/", "pyhanko", "asn1crypto/")  # pyhanko-certvalidator: trust paths
HTTP = ("uvicorn/", "starlette/", "fastapi/", "h11/", "httptools/", "anyio/")
COMPONENTS: list[tuple[str, tuple[str, ...]]] = [  # a frame's is the first its path starts with
    ("SQLAlchemy (sqlalchemy/*)", ("sqlalchemy/",)),
    ("asyncpg driver", ("asyncpg/",)),
    ("lxml / XSD / parse (gateway/edxml, lxml)", ("gateway/edxml/", "lxml/")),
    ("signature + trust (signatures, xmlsec, cryptography, certvalidator)", SIGNATURES),
    ("HTTP (uvicorn, starlette, fastapi, h11/httptools, anyio)", HTTP),
    ("pydantic", ("pydantic/", "pydantic_core/", "pydantic_settings/")),
    ("aio-pika / aiormq / pamqp", ("aio_pika/", "aiormq/", "pamqp/")),
    ("asyncio event loop itself (asyncio, uvloop)", ("asyncio/", "selectors.py", "uvloop/")),
    ("own code (gateway/*, adapters/* other than above)", ("gateway/", "adapters/")),
]
OTHER = "other (no frame of a named component)"
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*):(?P<line>\d+)\)$")
STDLIB = sysconfig.get_paths()["stdlib"]
PREFIX = re.compile(rf"^(.*/site-packages/|{re.escape(str(ROOT))}/|{re.escape(STDLIB)}/)")


def relative(path: str) -> str:
    """A frame's file as its import path (`sqlalchemy/engine/base.py`, `asyncio/tasks.py`)."""
    return PREFIX.sub("", path)


def component_of(path: str) -> str | None:
    rel = relative(path)
    return next((name for name, prefixes in COMPONENTS if rel.startswith(prefixes)), None)


class Breakdown:
    """Samples by component (innermost named frame), by leaf component, by leaf frame."""

    def __init__(self) -> None:
        self.total = 0
        self.component: Counter[str] = Counter()
        self.leaf: Counter[str] = Counter()
        self.frames: Counter[str] = Counter()

    def add_raw(self, text: str) -> None:
        """py-spy's raw format: `frame;frame;…;leaf count`, outermost first, each frame
        `function (file:line)`; `process N:"cmdline"` pseudo-frames (--subprocesses) match
        no frame and are left out."""
        for line in text.splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [m for f in stack.split(";") if (m := FRAME.match(f))]
            named = [component_of(m["file"]) for m in frames] or [None]
            self.total += (n := int(count))
            self.component[next((c for c in reversed(named) if c), OTHER)] += n
            self.leaf[named[-1] or OTHER] += n
            leaf = frames[-1] if frames else None
            where = f"{leaf['func']} ({relative(leaf['file'])})" if leaf else "(no Python frame)"
            self.frames[where] += n

    def print(self, rate: int, cpu: float, wall: float, packages: int) -> None:
        """The table; `ms/pkg`: sampled time per accepted package (samples / rate / packages);
        busy: sampled seconds over the wall time sampled (1.0: one thread always running)."""
        total, per, busy = self.total or 1, 1000 / rate / (packages or 1), self.total / rate
        print(
            f"\n  samples: {self.total} = {busy:.2f} s in {wall:.2f} s of wall time (busy "
            f"{busy / (wall or 1):.2f}); server CPU {ms(cpu)} s"
        )
        print(f"  {'component':<76} {'samples':>7} {'share':>6} {'leaf':>6} {'ms/pkg':>6}")
        for name in [c for c, _ in COMPONENTS] + [OTHER]:
            n, leaf = self.component[name], self.leaf[name] / total
            print(f"  {name:<76} {n:>7} {n / total:>6.1%} {leaf:>6.1%} {n * per:>6.2f}")
        print("\n  top 15 self-time frames (innermost frame, by function):")
        for frame, n in self.frames.most_common(15):
            print(f"  {n / total:>6.1%}  {frame}")


class Sampler:
    """py-spy attached to the server (and its workers) for a block (`common.http_run`'s
    `around`); the raw stacks in `out`, py-spy's own CPU in `cpu_seconds`."""

    def __init__(self, out: Path, rate: int, nonblocking: bool, gil: bool) -> None:
        self.out, self.rate, self.nonblocking, self.gil = out, rate, nonblocking, gil
        self.cpu_seconds: float | None = None
        self.wall_seconds = 0.0

    @contextlib.contextmanager
    def __call__(self, server: Server) -> Iterator[None]:
        """Waits until py-spy says it samples, so that the measured part is covered whole."""
        log, exe = self.out.with_suffix(".log"), Path(sys.executable).parent / "py-spy"
        command = [str(exe) if exe.exists() else "py-spy", "record", "--format", "raw"]
        command += ["--rate", str(self.rate), "--subprocesses", "--function", "--full-filenames"]
        command += ["--output", str(self.out), "--pid", str(server.pid)]
        command += (["--nonblocking"] if self.nonblocking else []) + (["--gil"] if self.gil else [])
        with open(log, "wb") as sink:
            spy = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 15
            while b"Sampling process" not in log.read_bytes():
                if spy.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"py-spy did not start: {log.read_text(errors='replace')}")
                time.sleep(0.05)
            cpu0, wall0 = process_cpu_seconds(spy.pid), time.monotonic()
            yield
            self.cpu_seconds = process_cpu_seconds(spy.pid) - cpu0
            self.wall_seconds = time.monotonic() - wall0
        finally:
            spy.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(timeout=60)
            spy.kill()  # when it did not stop (nothing if it did)
            spy.wait()
        if not self.out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {log.read_text(errors='replace')}")


def run(args: argparse.Namespace, pki: BenchPki, signing: str, packages: list[bytes]) -> bool:
    """One profiled row; prints its figures and breakdown. True if nothing failed."""
    measured, warmup = packages[: args.packages], packages[args.packages :]
    out = args.keep / f"profile-{signing}-c{args.clients}-w{args.workers}.txt"
    sampler = Sampler(out, args.rate, args.nonblocking, gil=not args.all_threads)
    with common.isolated_node(
        "production", trust_dir=pki.trust_dir, signature_policy="verify-if-present"
    ) as settings:
        result = asyncio.run(
            common.http_run(
                settings,
                measured,
                args.clients,
                "vxp",
                warmup,
                args.run_timeout,
                workers=args.workers,
                around=sampler,
            )
        )
        outcomes = asyncio.run(signature_outcomes(settings)) if signing == "signed" else None
    per, latencies = result.per_package_ms, result.latencies_ms
    q50, q99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(
        f"\n== production, {signing}, /vxp sendEdoc, C={args.clients}, workers {args.workers}: "
        f"{result.accepted} accepted, {result.rate:.1f} accepted/s, p50/p99 submit→available "
        f"{q50:.0f}/{q99:.0f} ms\n  CPU ms per package: node {ms(per(result.cpu_seconds))}"
        f", clients {ms(per(result.loader_cpu_seconds))}, {'+'.join(INFRA_PROCESSES)} "
        f"{ms(per(result.infra_cpu_seconds))}, py-spy {ms(per(sampler.cpu_seconds))}"
    )
    if outcomes is not None:
        print(f"  stored signature outcomes (warm-up included): {outcomes}")
    for line in result.failures[:3] + result.notes:
        print(f"  [{signing}] {line}")
    (breakdown := Breakdown()).add_raw(out.read_text(errors="replace"))
    cpu = result.cpu_seconds or float("nan")
    breakdown.print(args.rate, cpu, sampler.wall_seconds, result.accepted)
    return not result.failures and not result.unavailable


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--packages", type=int, default=400, help="measured, per row")
    parser.add_argument("--clients", type=int, default=32)
    choices = csv_list(str, ["unsigned", "signed"])
    parser.add_argument("--signing", type=choices, default=["unsigned", "signed"])
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured packages per row")
    parser.add_argument("--workers", type=int, default=1, help="`serve --workers N`")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--nonblocking", action="store_true", help="py-spy does not pause")
    parser.add_argument("--all-threads", action="store_true", help="no --gil: every busy thread")
    parser.add_argument("--keep", type=Path, help="keep the raw stacks (flamegraph input) here")
    parser.add_argument("--run-timeout", type=float, default=300.0, help="seconds per row")
    args = parser.parse_args()
    print(f"command: {common.command_line()}\nhardware: {common.hardware()}")
    work = Path(tempfile.mkdtemp(prefix="lienthong-profile-"))
    kept, args.keep, ok = args.keep, args.keep or work, True
    args.keep.mkdir(parents=True, exist_ok=True)
    try:
        pki = common.make_pki(work / "trust")
        sets = {"unsigned": build(args.packages + args.warmup, "10")}
        if "signed" in args.signing:
            sets["signed"] = sign_all(pki, sets["unsigned"])
        print(
            "backend: production (PostgreSQL 127.0.0.1:5432 + RabbitMQ 127.0.0.1:5672), "
            f"policy verify-if-present; payload: {args.packages} distinct packages "
            f"(+{args.warmup} warm-up), "
            + ", ".join(f"{s} {len(sets[s][0])} bytes" for s in args.signing)
            + f"; py-spy {args.rate} Hz, {'non' if args.nonblocking else ''}blocking, no idle, "
            + ("all threads" if args.all_threads else "GIL holder")
        )
        for signing in args.signing:
            ok = run(args, pki, signing, sets[signing]) and ok
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if kept:
        print(f"\nraw stacks kept in {kept}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
