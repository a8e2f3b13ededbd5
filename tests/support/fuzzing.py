"""The budget and reproducibility of the fuzzers (`tests/test_fuzz_*.py`), in one place.

CI runs every fuzzer derandomised: the same examples on every run and every machine, so a red
CI is reproducible and a green one is not luck. A longer or wider search is the same tests
with more examples and a random (or chosen) seed, driven by environment variables that
`bench/fuzz.py` sets:

- `LIENTHONG_FUZZ_EXAMPLES=N`: N examples per fuzz test (per operation for the API fuzzer)
  instead of each test's CI budget.
- `LIENTHONG_FUZZ_SEED=S`: search with seed S (an integer) instead of derandomised;
  `LIENTHONG_FUZZ_SEED=random` draws one (Hypothesis prints it with any failure).

Hypothesis' own `--hypothesis-seed` is ignored while derandomised, which is why the seed has
its own variable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, seed, settings

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES_VARIABLE = "LIENTHONG_FUZZ_EXAMPLES"
SEED_VARIABLE = "LIENTHONG_FUZZ_SEED"


def examples(ci_budget: int) -> int:
    """The number of examples a fuzz test runs: its CI budget unless overridden."""
    value = os.environ.get(EXAMPLES_VARIABLE, "").strip()
    return int(value) if value else ci_budget


def _seed() -> str:
    return os.environ.get(SEED_VARIABLE, "").strip()


def fuzz_settings(ci_budget: int) -> settings:
    """Settings of one fuzz test. The nodes under test are shared by the examples of a test
    (starting one per example would cost more than the example), hence the function-scoped
    fixture health check is off; requests take far longer than Hypothesis' 200 ms deadline
    on a loaded 2-core machine, hence no deadline."""
    return settings(
        max_examples=examples(ci_budget),
        deadline=None,
        derandomize=not _seed(),
        database=None,
        print_blob=True,
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


def fuzz(ci_budget: int) -> Callable[[F], F]:
    """Decorator: `fuzz_settings` plus the chosen seed, if any (outermost of `@given`)."""

    def apply(test: F) -> F:
        chosen = _seed()
        decorated = fuzz_settings(ci_budget)(test)
        if chosen and chosen != "random":
            decorated = seed(int(chosen))(decorated)
        return decorated

    return apply


class ErrorLog(logging.Handler):
    """Records every log record at ERROR or above while installed on the root logger: an
    unhandled exception anywhere in the node (a request handler, the relay, a consumer)
    ends up here through `handle_unexpected_error` or asyncio's exception handler."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        """The records since the last call, formatted with their tracebacks."""
        taken, self.records = self.records, []
        formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
        return [formatter.format(record) for record in taken]


@contextlib.contextmanager
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


MIB = 1 << 20


def _status_kib(pid: int | str, field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


class PeakRss:
    """Growth of a process' peak RSS over a span (`with peak:`), through /proc: writing 5 to
    `clear_refs` resets VmHWM to the current RSS, so the peak after the span minus the RSS
    before it is what the span needed at most. Sees native allocations too (libxml2,
    expat), which tracemalloc does not. `growth_mib` is None where /proc cannot do this."""

    def __init__(self, pid: int | str = "self") -> None:
        self._pid = pid
        self._before: int | None = None
        self.growth_mib: float | None = None

    def __enter__(self) -> PeakRss:
        try:
            Path(f"/proc/{self._pid}/clear_refs").write_text("5")
        except OSError:
            self._before = None
        else:
            self._before = _status_kib(self._pid, "VmRSS")
        return self

    def __exit__(self, *_: object) -> None:
        peak = _status_kib(self._pid, "VmHWM") if self._before is not None else None
        self.growth_mib = (
            (peak - self._before) / 1024 if peak is not None and self._before is not None else None
        )


REPORT_VARIABLE = "LIENTHONG_FUZZ_REPORT"


def record(fuzzer: str, target: str, outcome: str) -> None:
    """One line per example (`fuzzer`, what it hit, how it was answered) to the file named
    by LIENTHONG_FUZZ_REPORT, for `bench/fuzz.py` to say what ran; nothing without it."""
    path = os.environ.get(REPORT_VARIABLE, "").strip()
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(
                json.dumps({"fuzzer": fuzzer, "target": target, "outcome": outcome}) + "\n"
            )
