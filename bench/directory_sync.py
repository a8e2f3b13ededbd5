"""The national directory (111,000 agencies) imported and synced (issue #12 item 6).

What is measured, on each backend (embedded: SQLite; production: PostgreSQL + RabbitMQ):

1. `import`: `lienthong agencies import national.csv` as an operator runs it (a separate
   process: startup, reading and checking the file, the writes) into a fresh node; then the
   same file again (nothing changed: no row is written, no version taken).
2. `sync`: a fresh second node (no local system, the first node its default peer) runs
   `lienthong agencies sync --from national` against the first node served by a real
   `lienthong serve` (getSynchronizeUnit in pages of `--page-size`, each page one
   transaction). Then a few changes at the national node (renames, a merge, a retirement)
   and an incremental sync: only those are transferred.
3. For the paging decision: one unpaged `getSynchronizeUnit` (what an SDK client gets: every
   unit in one answer), its size and time.

The directory: realistic codes of the `LLL.KK.JJ.XNN` form over ministries G01..G30 and
provinces H01..H63 — level 1 `000.00.00.XNN`, 24 departments (`000.00.JJ.XNN`) each, 5
sub-units (`000.KK.JJ.XNN`) each, and level-4 units (`LLL.KK.JJ.XNN`) spread evenly until
the total is reached — with Vietnamese names, parents and mail addresses.

Printed: the command, the machine (CPU, cores, RAM, load), then per step the counts, wall
seconds and rows/s. The goal (issue #12): under 30 s each for the import and the full sync.

    .venv/bin/python bench/directory_sync.py                           # both backends, 111,000
    .venv/bin/python bench/directory_sync.py --backend embedded --agencies 20000   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from common import command_line, hardware, isolated_node, node_env, serving

from adapters.vxp_client import VxpClient
from gateway.codes import code_level
from gateway.settings import Settings

ROOTS = [f"G{n:02d}" for n in range(1, 31)] + [f"H{n:02d}" for n in range(1, 64)]
DEPARTMENTS, SUB_UNITS = 24, 5
PEER_SYSTEM, PEER_SECRET = "P53", "bench-province-secret"
GOAL_SECONDS = 30.0


def national_directory(total: int) -> list[tuple[str, str, str]]:
    """(code, name, parent) of `total` units, parents before their children."""
    rows = [(f"000.00.00.{r}", f"{'Bộ' if r[0] == 'G' else 'UBND tỉnh'} {r}", "") for r in ROOTS]
    level2 = [(f"000.00.{j:02d}.{r}", f"000.00.00.{r}") for r in ROOTS for j in range(1, 25)]
    rows += [(c, f"Sở, vụ số {c[7:9]} {c[-3:]}", p) for c, p in level2]
    level3 = [(f"000.{k:02d}.{c[7:]}", c) for c, _ in level2 for k in range(1, SUB_UNITS + 1)]
    rows += [(c, f"Phòng, huyện {c[4:6]} thuộc {c[7:]}", p) for c, p in level3]
    rows = rows[:total]
    need = total - len(rows)
    per = -(-need // len(level3)) if need > 0 else 0
    level4 = [(f"{n:03d}.{c[4:]}", c) for n in range(1, per + 1) for c, _ in level3][:need]
    rows += [(c, f"Xã, đơn vị cơ sở {c[:3]} thuộc {c[4:]}", p) for c, p in level4]
    return rows


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["code", "name", "parent", "mail"])
        for code, name, parent in rows:
            out.writerow([code, name, parent, f"vanthu.{code.replace('.', '').lower()}@gov.vn"])


def lienthong(settings: Settings, *args: str) -> tuple[float, str]:
    """`lienthong ARGS` as a separate process against the node; (wall seconds, output)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=node_env(settings),
        cwd=settings.data_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"lienthong {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return seconds, done.stdout.strip()


GOAL_STEPS = ("import", "full sync")


def row(step: str, backend: str, count: int, seconds: float, note: str = "") -> None:
    goal = ""
    if step in GOAL_STEPS and count >= 100_000:
        goal = "  (goal < 30 s: " + ("met)" if seconds < GOAL_SECONDS else "MISSED)")
    print(
        f"{step:<17} {backend:<10} {count:>7} rows {seconds:>6.2f} s "
        f"{count / seconds if seconds else 0:>7.0f} rows/s  {note}{goal}",
        flush=True,
    )


async def unpaged(url: str) -> tuple[int, int, float]:
    """One getSynchronizeUnit without pageSize: (entries, bytes, seconds)."""
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        client = VxpClient(http, PEER_SYSTEM, PEER_SECRET)
        started = time.monotonic()
        response = await http.post(
            "/vxp/getSynchronizeUnit",
            content=b"",
            headers=client.signed_headers({}, "application/json"),
        )
        body = response.content
        seconds = time.monotonic() - started
    return len(json.loads(body)["data"]), len(body), seconds


def received(summary: str) -> int:
    match = re.search(r"(\d+) received", summary)
    return int(match.group(1)) if match else 0


def run_backend(backend: str, csv_path: Path, total: int, page_size: int, leaf: str) -> None:
    systems = {PEER_SYSTEM: (["#.H53"], PEER_SECRET)}
    with (
        isolated_node(backend, systems, prefix="dirsync") as national,
        isolated_node(backend, {}, prefix="dirsync") as province,
    ):
        seconds, out = lienthong(national, "agencies", "import", str(csv_path))
        row("import", backend, total, seconds, f"[{out}]")
        seconds, out = lienthong(national, "agencies", "import", str(csv_path))
        row("import again", backend, total, seconds, f"[{out}]")
        asyncio.run(sync_from(backend, national, province, page_size, leaf))


async def sync_from(
    backend: str, national: Settings, province: Settings, page_size: int, leaf: str
) -> None:
    """The province syncs from the national node served by `lienthong serve` (the commands
    block this loop: the server is another process)."""
    async with serving(national) as server:
        lienthong(
            province,
            "peers",
            "add",
            "national",
            "--url",
            f"{server.url}/vxp",
            "--system-id",
            PEER_SYSTEM,
            "--secret",
            PEER_SECRET,
            "--default",
        )
        sync = ("agencies", "sync", "--from", "national", "--page-size", str(page_size))
        seconds, out = lienthong(province, *sync)
        row("full sync", backend, received(out), seconds, f"[{out}]")
        # A few changes at the national node, then an incremental sync.
        for code in [f"000.00.{j:02d}.H54" for j in range(1, 11)]:
            lienthong(national, "agencies", "rename", code, "--name", f"Sở đổi tên {code}")
        lienthong(national, "agencies", "merge", "000.01.01.H54", "--into", "000.02.01.H54")
        lienthong(national, "agencies", "retire", leaf)
        seconds, out = lienthong(province, *sync)
        row("incremental sync", backend, received(out), seconds, f"[{out}]")
        entries, size, seconds = await unpaged(server.url)
        row(
            "unpaged answer",
            backend,
            entries,
            seconds,
            f"[one getSynchronizeUnit without pageSize: {size / 1e6:.1f} MB of JSON]",
        )
        if (problems := server.log_problems()) is not None:
            print(f"  {problems}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", default="embedded,production")
    parser.add_argument(
        "--agencies", type=int, default=111_000, help="at least 15,000 (the changes need them)"
    )
    parser.add_argument("--page-size", type=int, default=10_000, help="units per sync page")
    args = parser.parse_args()
    print(f"command: {command_line()}")
    print(f"hardware: {hardware()}")
    work = Path(tempfile.mkdtemp(prefix="lienthong-dirsync-"))
    csv_path = work / f"national-{secrets.token_hex(3)}.csv"
    rows = national_directory(args.agencies)
    write_csv(csv_path, rows)
    levels = Counter(code_level(code) for code, _, _ in rows)
    print(
        f"directory: {len(rows)} agencies ("
        + ", ".join(f"level {n}: {levels[n]}" for n in sorted(levels))
        + f"), "
        f"{csv_path.stat().st_size / 1e6:.1f} MB CSV; sync pages of {args.page_size}"
    )
    for backend in args.backend.split(","):
        run_backend(backend.strip(), csv_path, len(rows), args.page_size, rows[-1][0])
    csv_path.unlink()
    work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
