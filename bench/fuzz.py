"""A longer run of the three fuzzers than CI's, and what it ran and found.

    .venv/bin/python bench/fuzz.py                          # 1 000 examples each, a random seed
    .venv/bin/python bench/fuzz.py --examples 5000 --seed 20261201 --backend production
    .venv/bin/python bench/fuzz.py --only edxml --known-holes   # the classes CI leaves out

It runs `tests/test_fuzz_api.py`, `tests/test_fuzz_vxp.py` and `tests/test_fuzz_edxml.py`
through pytest with `LIENTHONG_FUZZ_EXAMPLES` (examples per fuzz test; per operation for the
API), `LIENTHONG_FUZZ_SEED` (the seed is printed: a failure is replayed with the same
`--seed`) and `LIENTHONG_FUZZ_REPORT` (one line per example), then prints per fuzzer how
many examples ran, how they were answered, the largest memory growth of one edXML request,
and pytest's verdict with the first lines of each failure. It exits like pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = {
    "api": "tests/test_fuzz_api.py",
    "vxp": "tests/test_fuzz_vxp.py",
    "edxml": "tests/test_fuzz_edxml.py",
}
FUZZ_TESTS = {
    "api": "test_api_operation",
    "vxp": "test_vxp_headers",
    "edxml": "test_edxml_mutations",
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--seed", default="random", help="an integer, or 'random'")
    parser.add_argument("--backend", choices=["embedded", "production", "both"], default="both")
    parser.add_argument("--only", default="api,vxp,edxml", help="comma-separated: api, vxp, edxml")
    parser.add_argument(
        "--known-holes",
        action="store_true",
        help="also generate the edXML mutation classes CI leaves out (known pipeline holes)",
    )
    return parser.parse_args()


def summarise(report: Path) -> None:
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    targets: dict[str, Counter[str]] = defaultdict(Counter)
    largest: tuple[float, str] = (0.0, "")
    for line in report.read_text().splitlines() if report.exists() else []:
        entry = json.loads(line)
        fuzzer, outcome = entry["fuzzer"], entry["outcome"]
        targets[fuzzer][entry["target"]] += 1
        if fuzzer == "edxml":
            verdict, rss, *changes = outcome.split(" ", 2)
            outcomes[fuzzer][verdict] += 1
            growth = float(rss.removeprefix("rss="))
            if growth > largest[0]:
                largest = (growth, " ".join(changes)[:120])
        elif fuzzer == "vxp":
            outcomes[fuzzer][f"HTTP {outcome.split()[0]}, ErrorCode {outcome.split()[1]}"] += 1
        else:
            who, status = outcome.rsplit(" ", 1)
            outcomes[fuzzer][f"{who} → {status}"] += 1
    for fuzzer in sorted(outcomes):
        total = sum(outcomes[fuzzer].values())
        print(f"\n{fuzzer}: {total} examples over {len(targets[fuzzer])} targets")
        for outcome, count in outcomes[fuzzer].most_common(12):
            print(f"  {count:7d}  {outcome}")
        if fuzzer == "edxml":
            print(f"  largest peak-RSS growth of one request: {largest[0]:.1f} MiB ({largest[1]})")


def main() -> int:
    args = arguments()
    seed = str(random.randrange(1, 2**31)) if args.seed == "random" else args.seed
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    backends = "embedded,production" if args.backend == "both" else args.backend
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.jsonl"
        env = {
            **os.environ,
            "LIENTHONG_FUZZ_EXAMPLES": str(args.examples),
            "LIENTHONG_FUZZ_SEED": seed,
            "LIENTHONG_FUZZ_REPORT": str(report),
            "LIENTHONG_TEST_BACKENDS": backends,
        }
        if args.known_holes:
            env["LIENTHONG_FUZZ_KNOWN_HOLES"] = "1"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            " or ".join(FUZZ_TESTS[name] for name in chosen),
            *(FILES[name] for name in chosen),
        ]
        print(
            f"fuzzing {', '.join(chosen)} on {backends}: {args.examples} examples per "
            f"test, seed {seed}{', known holes too' if args.known_holes else ''}"
        )
        replay = [
            f"{k}={env[k]}"
            for k in (
                "LIENTHONG_FUZZ_EXAMPLES",
                "LIENTHONG_FUZZ_SEED",
                "LIENTHONG_TEST_BACKENDS",
                "LIENTHONG_FUZZ_KNOWN_HOLES",
            )
            if k in env
        ]
        print("replay: " + shlex.join([*replay, ".venv/bin/python", *command[1:]]))
        started = time.monotonic()
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        summarise(report)
    lines = result.stdout.splitlines()
    failures = [line for line in lines if line.startswith(("E   ", "FAILED"))]
    print(f"\npytest: {lines[-1] if lines else result.stderr[-500:]} ({elapsed:.0f} s)")
    for line in failures[:40]:
        print("  " + line[:300])
    return result.returncode


if __name__ == "__main__":
    raise SystemExit(main())
