"""What is wrong with a package, and how much of it is told: problems with their element path,
bounded so that a package of half a million identical defects costs what one of twenty does,
and ASCII-safe text as the SDKs print it. `gateway.errors` re-exports these names.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a package: where (element path), which rule, and what to fix."""

    code: str
    path: str
    message: str
    severity: str = "error"

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }


MAX_PROBLEMS_PER_CODE = 20
MAX_PROBLEMS = 200
MAX_PROBLEM_BYTES = 64 << 10


def bounded(
    problems: Sequence[Problem],
    per_code: int = MAX_PROBLEMS_PER_CODE,
    total: int = MAX_PROBLEMS,
    budget: int = MAX_PROBLEM_BYTES,
) -> tuple[Problem, ...]:
    """What is kept, stored and answered of a package's problems: at most `per_code` of one
    code and severity, then one "N more like this"; at most `total` and about `budget`
    bytes in all. A package of half a million identical defects must not become half a
    million stored warnings (issue #9); errors come before warnings."""
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    kept: list[Problem] = []
    omitted: dict[tuple[str, str], tuple[Problem, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    used = 0
    for problem in ordered:
        key = (problem.code, problem.severity)
        seen[key] = seen.get(key, 0) + 1
        size = len(problem.path) + len(problem.message) + len(problem.code) + 40
        if seen[key] > per_code or len(kept) >= total or used + size > budget:
            first, count = omitted.get(key, (problem, 0))
            omitted[key] = (first, count + 1)
            continue
        kept.append(problem)
        used += size
    kept += [
        Problem(code, first.path, f"+{count} more like this", severity)
        for (code, severity), (first, count) in omitted.items()
    ]
    return tuple(kept)


ERROR_DESC_BUDGET = 1000


def list_within(items: list[str], budget: int, separator: str = "; ") -> str:
    """As many items as fit in `budget` characters, then "+N more" for the rest."""
    shown: list[str] = []
    used = 0
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        tail = len(f"{separator}+{rest} more") if rest else 0
        cost = len(item) + (len(separator) if shown else 0)
        if used + cost + tail > budget and shown:
            break
        if used + cost + tail > budget:
            item = item[: max(budget - tail - 1, 0)] + "…"
            cost = len(item)
        shown.append(item)
        used += cost
    text = separator.join(shown)
    left = len(items) - len(shown)
    return f"{text}{separator}+{left} more" if left else text


def ascii_safe(text: str) -> str:
    """Fold Vietnamese to ASCII (`Đồng` → `Dong`): old SDK clients mangle anything else."""
    folded = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    return folded.encode("ascii", "ignore").decode("ascii")
