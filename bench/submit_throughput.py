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

The node, the clients and both runs are those of bench/common.py (bench/small_packages.py
measures the same for small packages, signed or not, over both APIs, with more baselines).

    python bench/submit_throughput.py --backend embedded|production --packages N \
        --concurrency C [--size-kb K] [--warmup W]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from common import (
    RunResult,
    bare_run,
    command_line,
    http_run,
    isolated_node,
    percentile,
    sdk_packages,
)


def report(args: argparse.Namespace, size: int, results: list[RunResult]) -> None:
    print(f"\ncommand: {command_line()}")
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
        lat = r.latencies_ms
        print(
            f"{r.name:<10} {r.rate:>10.1f} {percentile(lat, 0.5):>9.1f} "
            f"{percentile(lat, 0.99):>9.1f} {max(lat, default=float('nan')):>9.1f} "
            f"{len(r.failures):>6} {r.unavailable:>7}"
        )
    if len(results) == 2 and all(r.submit_seconds and r.latencies_ms for r in results):
        http, base = results
        p50 = percentile(http.latencies_ms, 0.5) / percentile(base.latencies_ms, 0.5)
        print(f"\nHTTP/baseline: accepted/s x{http.rate / base.rate:.2f}, p50 x{p50:.2f}")
    for r in results:
        for line in r.failures[:5] + r.notes:
            print(f"[{r.name}] {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=["embedded", "production"], required=True)
    parser.add_argument("--packages", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--size-kb", type=int, default=None)
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="unmeasured packages sent first in each run (default 0, as the "
        "README's figures were measured)",
    )
    args = parser.parse_args()
    packages = sdk_packages(args.packages + args.warmup, args.size_kb)
    measured, warmup = packages[: args.packages], packages[args.packages :]
    results: list[RunResult] = []
    with isolated_node(args.backend) as settings:
        results.append(
            asyncio.run(
                http_run(settings, measured, args.concurrency, "vxp", warmup, name="http /vxp")
            )
        )
    with isolated_node(args.backend) as settings:
        results.append(
            asyncio.run(bare_run(settings, measured, args.concurrency, warmup, name="baseline"))
        )
    report(args, len(packages[0]), results)
    broken = any(r.failures or r.unavailable or len(r.deliveries) != args.packages for r in results)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
