"""The lifecycle of a directory entry (SPEC §2.3, §3.5): which statuses are listed, synced
as deleted, refused as recipients, and which ones a system may not undo. No I/O.

`active` and `merged` (redirects to its successor) are live. `retired` (an operator closed
it) and `deleted` (a system deleted it through `deleteAgency`) are closed: the row stays as a
tombstone, so a peer that syncs incrementally learns of the closing, and routing refuses the
code with a reason instead of "unknown".
"""

from __future__ import annotations

ACTIVE = "active"
MERGED = "merged"
RETIRED = "retired"
DELETED = "deleted"

STATUSES = frozenset({ACTIVE, MERGED, RETIRED, DELETED})
CLOSED = frozenset({RETIRED, DELETED})
OPERATOR_OWNED = frozenset({MERGED, RETIRED})
"""Set by an operator's directory change (2025 reorganisation): a system re-registering the
code must not silently undo a merge or a retirement."""


def is_closed(status: str) -> bool:
    return status in CLOSED
