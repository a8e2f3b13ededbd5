"""Electronic identifier codes (mã định danh, SPEC §2.3) and the patterns systems serve.

Codes are compared case-sensitively as given. Routing reads a code right to left, so a whole
province (`#.H53`) or ministry is one prefix of the reversed code (`H53.#`).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from gateway.types import AgencyCode, RouteKind, RoutingKey

T = TypeVar("T")
MAX_CODE_LENGTH = 35
_CODE = re.compile(r"[0-9A-Za-z]+(\.[0-9A-Za-z]+)*")
_STANDARD = re.compile(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}")


def is_valid_code(value: str) -> bool:
    """Any dot-separated code of letters and digits up to 35 characters (real traffic varies)."""
    return len(value) <= MAX_CODE_LENGTH and _CODE.fullmatch(value) is not None


def is_standard_shape(value: str) -> bool:
    """The common four-group form `LLL.KK.JJ.XNN` of Decision 20/2020."""
    return _STANDARD.fullmatch(value) is not None


def code_level(code: str) -> int:
    """The number of non-zero groups: 1 for `000.00.00.H53`, 2 for `000.00.13.H53`."""
    return sum(1 for group in code.split(".") if group.strip("0"))


def reversed_groups(code: str) -> list[str]:
    return list(reversed(code.split(".")))


def shard_of(code: str, shards: int) -> int:
    """A stable shard, so one agency's deliveries keep their order within one queue."""
    return zlib.crc32(code.encode()) % shards


def routing_key(kind: RouteKind, code: AgencyCode, shards: int) -> RoutingKey:
    """`<route>.<reversed code>.s<shard>`: bindings select the route by its first word and
    a queue by its last; a peer will bind a reversed prefix (`peer.H53.#`)."""
    return RoutingKey(".".join([kind.value, *reversed_groups(code), f"s{shard_of(code, shards)}"]))


@dataclass(frozen=True, slots=True)
class ServePattern:
    """What a system serves: an exact code, or one whose leading groups are wildcards.

    `*` stands for exactly one group, a leading `#.` for any number of groups (zero or more):
    `*.*.13.H53` serves every unit of department 13 of H53, `#.H53` the whole province.
    """

    text: str

    @classmethod
    def parse(cls, text: str) -> ServePattern:
        text = text.strip()
        groups = text.split(".")
        body = groups[1:] if groups[0] == "#" else groups
        if not body or len(text) > 64:
            raise ValueError(f"pattern {text!r} is empty or too long")
        literal_started = False
        for group in body:
            if group == "*":
                if literal_started:
                    raise ValueError(f"pattern {text!r}: '*' may only stand in leading groups")
                continue
            literal_started = True
            if not _CODE.fullmatch(group):
                raise ValueError(f"pattern {text!r}: group {group!r} is not letters and digits")
        if not literal_started:
            raise ValueError(f"pattern {text!r} must end in at least one literal group")
        return cls(text)

    @property
    def _groups(self) -> list[str]:
        return self.text.split(".")

    def matches(self, code: str) -> bool:
        groups = self._groups
        parts = code.split(".")
        if groups[0] == "#":
            tail = groups[1:]
            if len(parts) < len(tail):
                return False
            parts = parts[len(parts) - len(tail) :]
            groups = tail
        if len(parts) != len(groups):
            return False
        return all(g == "*" or g == p for g, p in zip(groups, parts, strict=True))

    @property
    def specificity(self) -> tuple[int, int]:
        """Exact codes beat wildcards; among wildcards, more literal groups win."""
        groups = self._groups
        literal = sum(1 for g in groups if g not in {"*", "#"})
        return (0 if "#" in groups or "*" in groups else 1, literal)


def ancestor_codes(code: str) -> list[str]:
    """The units a standard code sits under, nearest first: the leftmost non-zero group
    zeroed, then the next (`000.20.31.H53` → `000.00.31.H53`, `000.00.00.H53`). Other
    shapes carry no hierarchy that can be read off them, so they have none."""
    if not is_standard_shape(code):
        return []
    groups = code.split(".")
    ancestors: list[str] = []
    for index, group in enumerate(groups[:-1]):
        if group.strip("0"):
            groups[index] = "0" * len(group)
            ancestors.append(".".join(groups))
    return ancestors


def best_match(
    code: str,
    candidates: Iterable[T],
    patterns: Callable[[T], Iterable[ServePattern]],
    name: Callable[[T], str],
) -> T | None:
    """The candidate with the most specific pattern matching `code`; ties go to the lowest
    name, so every gateway process decides the same (systems and peers route alike)."""
    matches = [(p.specificity, c) for c in candidates for p in patterns(c) if p.matches(code)]
    if not matches:
        return None
    best = max(spec for spec, _ in matches)
    return min((c for spec, c in matches if spec == best), key=name)
