"""Deliveries and messages as the operator console reads them (what the store answers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.records import TimelineEntry


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery as the operator console lists it."""

    row_id: int
    message_id: str
    delivery_id: str
    kind: str
    from_code: str
    to_code: str
    requested_code: str
    route: str
    system_id: str | None
    state: str
    state_changed_at: datetime
    attempts: int
    fail_count: int
    subject: str | None
    document_id: str
    code_number: str | None
    code_notation: str | None
    received_at: datetime
    available_at: datetime | None
    timeline: tuple[TimelineEntry, ...] = ()
    peer: str | None = None
    """The peer node a `peer` route forwards to."""
    peer_doc_id: str | None = None
    """The peer's DocId of the forwarded package (the next hop's id)."""
    downstream_state: str | None = None
    """How far the package got behind the peer, as last read, and when."""
    downstream_at: datetime | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageDetail:
    message_id: str
    kind: str
    sender_system_id: str
    from_code: str
    document_id: str
    code_number: str | None
    code_notation: str | None
    subject: str | None
    business_type: int
    status_code: str | None
    received_at: datetime
    payload_sha256: str
    payload_size: int
    signature_outcome: str | None
    deliveries: tuple[DeliveryRow, ...]
