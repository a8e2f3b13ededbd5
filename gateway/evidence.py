"""The evidence log: an append-only, hash-chained record of what the node did (SPEC §3.4).

Each entry holds the hash of the previous entry and of the package bytes it concerns, and its
own hash over a canonical JSON form. Changing, deleting or reordering one entry breaks the
chain at that entry; removing the newest ones is caught against the head the database keeps.
This module only computes and checks: it has no I/O, so an exported bundle can be checked by
the very same rules (the bundle's `verify.py` mirrors them with the standard library only).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

GENESIS = "0" * 64
"""`prev_hash` of the first entry."""


class EvidenceEvent(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"
    DELIVERED = "delivered"  # available in the recipient's inbox
    FORWARDED = "forwarded"  # accepted by the peer node that serves the recipient
    DOWNLOADED = "downloaded"
    ACKNOWLEDGED = "acknowledged"
    CANCELLED = "cancelled"
    REPLAYED = "replayed"
    AGENCY_REGISTERED = "agency.register"  # a system registered (or updated) a sub-agency
    AGENCY_DELETED = "agency.delete"
    AGENCY_MERGED = "agency.merge"  # an operator merged an agency into its successor
    AGENCY_RENAMED = "agency.rename"
    AGENCY_RETIRED = "agency.retire"
    AGENCY_SYNCED = "agency.sync"  # a page of a peer's directory changed rows here


HASHED_FIELDS = (
    "seq",
    "at",
    "event",
    "message_id",
    "delivery_id",
    "actor",
    "payload_sha256",
    "details",
    "prev_hash",
)


def timestamp(at: datetime) -> str:
    """The one text form of an entry's time that goes into its hash (UTC, microseconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {name: fields[name] for name in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def entry_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(fields)).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    checked: int
    last_seq: int
    broken_at: int | None = None
    problem: str | None = None


def verify_chain(
    entries: Iterable[Mapping[str, Any]],
    *,
    first_seq: int = 1,
    anchor: str = GENESIS,
    head: tuple[int, str] | None = None,
) -> ChainReport:
    """Walk entries in `seq` order; the first entry must have `first_seq` and point at
    `anchor`. With `head` (seq, hash) the walk must end exactly there (no entry removed from
    the end). Reports the first broken link."""
    expected_seq, previous, checked = first_seq, anchor, 0
    for entry in entries:
        seq = int(entry["seq"])
        if seq != expected_seq:
            return ChainReport(
                False,
                checked,
                expected_seq - 1,
                expected_seq,
                f"entry {expected_seq} is missing (next found: {seq})",
            )
        if entry["prev_hash"] != previous:
            return ChainReport(
                False,
                checked,
                seq - 1,
                seq,
                f"entry {seq} does not point at entry {seq - 1}: entries were "
                "removed, inserted or reordered",
            )
        if entry_hash(entry) != entry["entry_hash"]:
            return ChainReport(
                False,
                checked,
                seq - 1,
                seq,
                f"entry {seq} was altered: its content no longer matches its hash",
            )
        previous, expected_seq, checked = entry["entry_hash"], seq + 1, checked + 1
    last = expected_seq - 1
    if head is not None and (last, previous) != head:
        return ChainReport(
            False,
            checked,
            last,
            last + 1,
            f"the log ends at entry {last} but the head records entry "
            f"{head[0]}: entries were removed from the end",
        )
    return ChainReport(True, checked, last)
