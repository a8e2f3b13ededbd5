"""The business status flow per (document, recipient) (SPEC §2.2).

    01 arrived ──▶ 02 rejected                      (ends the recipient's flow)
               └─▶ 03 accepted ──▶ 04 assigned ──▶ 05 processing* ──▶ 06 completed (ends it)
    13 recall request (from the original sender, at any point) ──▶ 15 agreed | 16 refused

A repeated status (same document, same agency, same code) is a duplicate, except 05. The
store applies this inside the accepting transaction, with the document's row locked, so two
statuses racing for the same document are decided one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.edxml.model import StatusCode

C = StatusCode
NAMES = {
    C.ARRIVED: "arrived (đã đến)",
    C.REJECTED: "rejected (từ chối)",
    C.ACCEPTED: "accepted (đã tiếp nhận)",
    C.ASSIGNED: "assigned (phân công)",
    C.PROCESSING: "processing (đang xử lý)",
    C.COMPLETED: "completed (hoàn thành)",
    C.RECALL_REQUEST: "recall request (lấy lại)",
    C.RECALL_AGREED: "recall agreed",
    C.RECALL_REFUSED: "recall refused",
}
ENDS = frozenset({C.REJECTED, C.COMPLETED})
NEEDS = {
    C.ARRIVED: frozenset(),
    C.REJECTED: frozenset({C.ARRIVED}),
    C.ACCEPTED: frozenset({C.ARRIVED}),
    C.ASSIGNED: frozenset({C.ACCEPTED}),
    C.PROCESSING: frozenset({C.ASSIGNED}),
    C.COMPLETED: frozenset({C.ASSIGNED}),
}
"""What must already be in the recipient's history (any one of)."""


@dataclass(frozen=True, slots=True)
class FlowVerdict:
    duplicate: bool = False
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return not self.duplicate and self.problem is None


def name(code: StatusCode) -> str:
    return f"{code.value} {NAMES[code]}"


def check(code: StatusCode, history: Sequence[StatusCode]) -> FlowVerdict:
    """May `code` follow `history` (the statuses of this document and recipient, oldest
    first, recall requests from the sender included)?"""
    if code is C.RECALL_REQUEST:
        if _open_recall(history):
            return FlowVerdict(duplicate=True)
        return FlowVerdict()
    if code in (C.RECALL_AGREED, C.RECALL_REFUSED):
        if not _open_recall(history):
            return FlowVerdict(
                problem=f"{name(code)} answers a recall request (13), and "
                "none is waiting for an answer"
            )
        return FlowVerdict()
    flow = [c for c in history if c in NEEDS]
    if code in flow and code is not C.PROCESSING:
        return FlowVerdict(duplicate=True)
    ended = [c for c in flow if c in ENDS]
    if ended:
        return FlowVerdict(
            problem=f"the recipient's flow ended with {name(ended[0])}; {name(code)} cannot follow"
        )
    if code is C.ACCEPTED and C.REJECTED in flow or code is C.REJECTED and C.ACCEPTED in flow:
        return FlowVerdict(
            problem=f"{name(code)} cannot follow "
            f"{name(C.REJECTED if code is C.ACCEPTED else C.ACCEPTED)}"
        )
    needed = NEEDS[code]
    if needed and not needed & set(flow):
        had = ", ".join(c.value for c in flow) or "none"
        wanted = " or ".join(name(c) for c in sorted(needed))
        return FlowVerdict(problem=f"{name(code)} needs {wanted} first (statuses so far: {had})")
    return FlowVerdict()


def _open_recall(history: Sequence[StatusCode]) -> bool:
    open_request = False
    for code in history:
        if code is C.RECALL_REQUEST:
            open_request = True
        elif code in (C.RECALL_AGREED, C.RECALL_REFUSED):
            open_request = False
    return open_request
