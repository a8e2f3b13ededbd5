"""The quarterly report (SPEC §4.3): what the provinces publish every quarter, built from
per-agency aggregates that the store computes in the database (`ReportStore`).

Counting rules (the README's "Quarterly report" section says the same for operators):

- **sent**: one per document package (kind `edoc`) accepted in the period from an agency a
  local system serves (the package did not come from a peer); status packages are not
  documents and are never counted; however many recipients, one package is one.
- **received**: one per recipient delivery of a document whose route is `inbox` or `push`
  (a local system takes it), counted for the agency the delivery is for (after a directory
  merge, the successor); a delivery forwarded to a peer (`peer` route) was not received
  here, nor a cancelled one (revoked, cancelled by an operator, or a merged agency's whose
  successor had its own); other states are not looked at (a dead delivery is still owed).
- **with paper**: the package's `Bussiness/Paper` is 1; anything else (0, or no Bussiness
  block) is electronic only.
- **level**: `gateway.codes.code_level` of the sender's code (sent) or the recipient's code
  (received).
- **via peers**: sent packages with at least one recipient forwarded to a peer; received
  deliveries of packages that came from a peer. The rest stayed inside the node.
- **status feedback**: per local agency that received at least one document in the period,
  the number of distinct status codes among the status packages it sent in the period
  (13, a recall request, is the original sender's, not feedback: not counted): 5 or more,
  3 to 4, fewer than 3.

A replay moves the same delivery row again and a duplicate submission creates nothing, so
counting rows counts each package and each delivery once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.codes import code_level, reversed_groups
from gateway.reports.period import Period

LEVELS = (1, 2, 3, 4)
"""Always listed, even when empty; a code of another level adds its own row."""
NOT_FEEDBACK = frozenset({"13"})
"""Status codes an agency sends that are not feedback on a document it received."""


@dataclass(frozen=True, slots=True)
class AgencyTraffic:
    """One local agency's figures for a period, as the store aggregates them."""

    code: str
    name: str | None = None
    sent: int = 0
    sent_with_paper: int = 0
    sent_via_peers: int = 0
    received: int = 0
    received_with_paper: int = 0
    received_via_peers: int = 0
    status_codes: tuple[str, ...] = ()
    """The distinct status codes of the status packages it sent, sorted."""
    status_packages: int = 0

    @property
    def level(self) -> int:
        return code_level(self.code)

    @property
    def feedback_codes(self) -> tuple[str, ...]:
        return tuple(c for c in self.status_codes if c not in NOT_FEEDBACK)


@dataclass(frozen=True, slots=True)
class Split:
    """A count split into electronic only and with a paper copy."""

    total: int = 0
    with_paper: int = 0

    @property
    def electronic_only(self) -> int:
        return self.total - self.with_paper

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "electronic_only": self.electronic_only,
            "with_paper": self.with_paper,
            "electronic_only_percent": percent(self.electronic_only, self.total),
            "with_paper_percent": percent(self.with_paper, self.total),
        }


@dataclass(frozen=True, slots=True)
class LevelRow:
    level: int
    sent: Split
    received: Split

    def as_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "sent": self.sent.total,
            "received": self.received.total,
            "sent_with_paper": self.sent.with_paper,
            "received_with_paper": self.received.with_paper,
        }


@dataclass(frozen=True, slots=True)
class Feedback:
    """Status feedback coverage of the agencies that received documents."""

    agencies: int = 0
    five_or_more: int = 0
    three_to_four: int = 0
    fewer_than_three: int = 0
    by_code: dict[str, int] = field(default_factory=dict)
    """Agencies that sent back each code (every local agency's statuses)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "agencies": self.agencies,
            "five_or_more": self.five_or_more,
            "three_to_four": self.three_to_four,
            "fewer_than_three": self.fewer_than_three,
            "five_or_more_percent": percent(self.five_or_more, self.agencies),
            "agencies_by_code": dict(sorted(self.by_code.items())),
        }


@dataclass(frozen=True, slots=True)
class QuarterlyReport:
    period: Period
    timezone: str
    node_code: str
    generated_at: datetime
    agencies: tuple[AgencyTraffic, ...]
    """Every local agency with something to count, in the directory's order (reversed
    groups: a province, then each department followed by its units)."""

    @classmethod
    def build(
        cls,
        period: Period,
        rows: Iterable[AgencyTraffic],
        *,
        timezone: str,
        node_code: str,
        generated_at: datetime,
    ) -> QuarterlyReport:
        ordered = sorted(rows, key=lambda r: (reversed_groups(r.code), r.code))
        return cls(period, timezone, node_code, generated_at, tuple(ordered))

    @property
    def sent(self) -> Split:
        return Split(
            sum(a.sent for a in self.agencies), sum(a.sent_with_paper for a in self.agencies)
        )

    @property
    def received(self) -> Split:
        return Split(
            sum(a.received for a in self.agencies),
            sum(a.received_with_paper for a in self.agencies),
        )

    @property
    def sent_via_peers(self) -> int:
        return sum(a.sent_via_peers for a in self.agencies)

    @property
    def received_via_peers(self) -> int:
        return sum(a.received_via_peers for a in self.agencies)

    @property
    def by_level(self) -> list[LevelRow]:
        levels = sorted(set(LEVELS) | {a.level for a in self.agencies})
        return [
            LevelRow(
                level,
                Split(
                    sum(a.sent for a in self.agencies if a.level == level),
                    sum(a.sent_with_paper for a in self.agencies if a.level == level),
                ),
                Split(
                    sum(a.received for a in self.agencies if a.level == level),
                    sum(a.received_with_paper for a in self.agencies if a.level == level),
                ),
            )
            for level in levels
        ]

    @property
    def feedback(self) -> Feedback:
        counts = [len(a.feedback_codes) for a in self.agencies if a.received > 0]
        by_code: dict[str, int] = {}
        for agency in self.agencies:
            for code in agency.feedback_codes:
                by_code[code] = by_code.get(code, 0) + 1
        return Feedback(
            agencies=len(counts),
            five_or_more=sum(1 for n in counts if n >= 5),
            three_to_four=sum(1 for n in counts if 3 <= n <= 4),
            fewer_than_three=sum(1 for n in counts if n < 3),
            by_code=by_code,
        )

    def as_json(self) -> dict[str, Any]:
        """The pinned shape of SPEC §4.3 (a contract: keys may be added, never renamed)."""
        sent, received = self.sent, self.received
        title_vi, title_en = self.period.title()
        return {
            "period": {
                "from": self.period.first.isoformat(),
                "to": self.period.last.isoformat(),
                "timezone": self.timezone,
                "days": self.period.days,
                "quarter": (
                    {"year": self.period.quarter[0], "quarter": self.period.quarter[1]}
                    if self.period.quarter
                    else None
                ),
                "title": {"vi": title_vi, "en": title_en},
            },
            "node": self.node_code,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "sent": sent.as_json(),
            "received": received.as_json(),
            "by_level": [row.as_json() for row in self.by_level],
            "via_peers": {"sent": self.sent_via_peers, "received": self.received_via_peers},
            "inside": {
                "sent": sent.total - self.sent_via_peers,
                "received": received.total - self.received_via_peers,
            },
            "status_feedback": self.feedback.as_json(),
            "agencies": [agency_json(a) for a in self.agencies],
        }


def agency_json(agency: AgencyTraffic) -> dict[str, Any]:
    return {
        "code": agency.code,
        "name": agency.name,
        "sent": agency.sent,
        "received": agency.received,
        "sent_with_paper": agency.sent_with_paper,
        "received_with_paper": agency.received_with_paper,
        "status_codes": len(agency.feedback_codes),
        "level": agency.level,
        "sent_via_peers": agency.sent_via_peers,
        "received_via_peers": agency.received_via_peers,
        "status_codes_sent": list(agency.feedback_codes),
    }


def percent(part: int, whole: int) -> float:
    """One decimal, as the published reports print it; 0.0 of nothing."""
    return round(100.0 * part / whole, 1) if whole else 0.0


def merge_rows(
    sent: Sequence[tuple[str, int, int, int]],
    received: Sequence[tuple[str, int, int, int]],
    statuses: Sequence[tuple[str, str, int]],
    names: dict[str, str],
) -> list[AgencyTraffic]:
    """The store's three aggregates (per sender: sent, with paper, via peers; per recipient:
    received, with paper, via peers; per agency and status code: packages) as one row per
    agency."""
    fields: dict[str, dict[str, Any]] = {}
    for code, n, paper, peers in sent:
        fields.setdefault(code, {}).update(sent=n, sent_with_paper=paper, sent_via_peers=peers)
    for code, n, paper, peers in received:
        fields.setdefault(code, {}).update(
            received=n, received_with_paper=paper, received_via_peers=peers
        )
    codes: dict[str, set[str]] = {}
    packages: dict[str, int] = {}
    for code, status, n in statuses:
        codes.setdefault(code, set()).add(status)
        packages[code] = packages.get(code, 0) + n
    for code in codes:
        fields.setdefault(code, {}).update(
            status_codes=tuple(sorted(codes[code])), status_packages=packages[code]
        )
    return [
        AgencyTraffic(code=code, name=names.get(code), **values) for code, values in fields.items()
    ]
