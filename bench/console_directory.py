"""The console's directory search over the national directory (111,000 agencies, issue #13).

A fresh node per backend (embedded: SQLite; production: PostgreSQL), the directory written
straight through the store (the import itself is `bench/directory_sync.py`'s subject), then
each kind of query the console's directory page makes, timed over several runs: an exact
code, a code fragment (a province's suffix), a name fragment matching many agencies, one
matching few, none at all, and the empty query (the first page). Each is the store's
`search_agencies(query, 100)`: one LIMITed statement plus the directory's count.

Printed: the command, the machine, then per backend and query the rows returned and the
median and worst milliseconds. The goal: well under a second, whatever the query.

    .venv/bin/python bench/console_directory.py                      # both backends, 111,000
    .venv/bin/python bench/console_directory.py --backend embedded --agencies 20000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from common import command_line, hardware, isolated_node

from gateway.records import AgencyRecord
from gateway.runtime import build_store
from gateway.settings import Settings
from gateway.types import AgencyCode

QUERIES = {
    "exact code": "000.00.13.H53",
    "code fragment": ".H53",
    "name, many": "Phòng",
    "name, few": "Sở, vụ số 07 H53",
    "no match": "không có đơn vị này",
    "empty (first page)": "",
}
RUNS = 7
CHUNK = 5000


def directory(total: int) -> list[AgencyRecord]:
    roots = [f"G{n:02d}" for n in range(1, 31)] + [f"H{n:02d}" for n in range(1, 64)]
    rows = [AgencyRecord(AgencyCode(f"000.00.00.{r}"), f"UBND tỉnh {r}") for r in roots]
    level2 = [f"000.00.{j:02d}.{r}" for r in roots for j in range(1, 25)]
    rows += [AgencyRecord(AgencyCode(c), f"Sở, vụ số {c[7:9]} {c[-3:]}") for c in level2]
    n = 0
    while len(rows) < total:
        n += 1
        for parent in level2:
            if len(rows) >= total:
                break
            code = f"{n:03d}.{parent[4:]}"
            rows.append(AgencyRecord(AgencyCode(code), f"Phòng, xã {n:03d} thuộc {parent[7:]}"))
    return rows[:total]


async def measure(settings: Settings, total: int) -> None:
    store = build_store(settings)
    try:
        records = directory(total)
        started = time.perf_counter()
        for i in range(0, len(records), CHUNK):
            await store.upsert_agencies(records[i : i + CHUNK])
        print(f"  wrote {len(records):,} agencies in {time.perf_counter() - started:.1f} s")
        for name, query in QUERIES.items():
            times, found = [], 0
            for _ in range(RUNS):
                started = time.perf_counter()
                rows, count = await store.search_agencies(query, 100)
                times.append((time.perf_counter() - started) * 1000)
                found = len(rows)
            assert count == total
            print(
                f"  {name:<20} {query!r:<24} {found:>4} rows  "
                f"median {statistics.median(times):7.1f} ms  worst {max(times):7.1f} ms"
            )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("embedded", "production", "both"), default="both")
    parser.add_argument("--agencies", type=int, default=111_000)
    args = parser.parse_args()
    print(command_line())
    print(hardware())
    for backend in ("embedded", "production") if args.backend == "both" else (args.backend,):
        print(f"{backend}:")
        with isolated_node(backend, systems={}, prefix="consoledir") as settings:
            asyncio.run(measure(settings, args.agencies))


if __name__ == "__main__":
    main()
