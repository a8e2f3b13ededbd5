"""Plain values that cross the boundary between the use cases and the store."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.codes import ServePattern
from gateway.edxml.model import BusinessType
from gateway.edxml.parser import ParsedPackage
from gateway.errors import Problem
from gateway.peers import PeerItemRef
from gateway.types import (
    AgencyCode,
    DeliveryId,
    MessageId,
    MessageKind,
    RouteKind,
    RoutingKey,
    SystemId,
)


@dataclass(frozen=True, slots=True)
class SystemRecord:
    """A connected system as routing and permission checks see it (never its secret)."""

    system_id: SystemId
    patterns: tuple[ServePattern, ...]
    delivery_mode: str = "poll"
    enabled: bool = True
    push_url: str | None = None
    """Where a push system's packages are POSTed (shown to operators; never a secret)."""
    previous_secret_until: datetime | None = None
    """After a rotation with a grace period: until when the previous secret still works."""

    def serves(self, code: str) -> bool:
        return any(p.matches(code) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class SystemCredentials:
    """What authentication needs: decrypted only for the one system that is calling.

    After `lienthong systems rotate-secret --grace …` the previous secret still
    authenticates until `previous_until`; `secrets_at` says which secrets are good now."""

    system: SystemRecord
    secret: str = field(repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_until: datetime | None = None

    def secrets_at(self, now: datetime) -> tuple[str, ...]:
        """The current secret, then the previous one while its grace lasts."""
        if self.previous_secret and self.previous_until is not None and now < self.previous_until:
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True, slots=True)
class RemovedSystem:
    """What `lienthong systems remove` did: the system is gone (its history stays), and with
    `--force` its unfinished deliveries were cancelled (these ids)."""

    system_id: str
    cancelled: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecipientPlan:
    """Where one recipient's delivery goes, decided at acceptance."""

    requested_code: AgencyCode
    recipient_code: AgencyCode
    route: RouteKind
    system_id: SystemId | None
    routing_key: RoutingKey
    peer: str | None = None
    """The peer node of a `peer` route."""


@dataclass(frozen=True, slots=True)
class AttachmentRecord:
    position: int
    content_id: str
    name: str | None
    description: str | None
    content_type: str | None
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class BusinessAct:
    """What a revoke, update or replace package acts on (`gateway.business` decides what it
    does to the original's deliveries)."""

    kind: BusinessType
    target_document_id: str
    target_key: str
    """Duplicate key of the original new document (`<from>|<DocumentId>`)."""
    removed: frozenset[str] = frozenset()
    replaced_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusAct:
    """Which document and which recipient's flow a status package belongs to (SPEC §2.2)."""

    code: str
    document_id: str
    original_sender: str
    recipient: str
    """The recipient agency whose flow this is (the status's sender, or for 13 the agency
    named in ResponseFor)."""
    code_number: str | None
    code_notation: str | None


@dataclass(frozen=True, slots=True)
class NewMessage:
    kind: MessageKind
    sender_system_id: SystemId
    package: ParsedPackage
    payload_sha256: str
    payload_size: int
    recipients: tuple[RecipientPlan, ...]
    """Plans for the recipients the package names (for an update: To, added and removed)."""
    dedup_key: str | None
    idempotency_key: str | None
    warnings: tuple[Problem, ...] = ()
    attachments: tuple[AttachmentRecord, ...] = ()
    header: dict[str, Any] | None = None
    signed: bool = False
    paper: int | None = None
    business: BusinessAct | None = None
    signature: dict[str, Any] | None = None
    """The verification report (outcome, reason, signer …) stored with the message."""
    status: StatusAct | None = None
    holders: Mapping[str, RecipientPlan] = field(default_factory=dict)
    """For a revocation: plans for the original's recipients, who may get it."""
    peer_item: PeerItemRef | None = None
    """Polled from a peer: its item is remembered with the message (never accepted twice)."""
    adds_recipients: bool = False
    """A send for some recipients only (the `to` header): when the same document (same
    DocumentId from the same sender) is already here, the recipients it does not reach yet
    are added to it, so a package sent once per recipient, or once per peer, is one message
    and every status and revocation finds it; recipients it already reaches are duplicates."""


@dataclass(frozen=True, slots=True)
class DeliveryRef:
    recipient_code: AgencyCode
    delivery_id: DeliveryId
    state: str


@dataclass(frozen=True, slots=True)
class AcceptedMessage:
    message_id: MessageId
    received_at: datetime
    deliveries: tuple[DeliveryRef, ...]
    duplicate_of: str | None = None
    """'idempotency-key' or 'document-id' when this answers an earlier submission."""
    cancelled: tuple[DeliveryRef, ...] = ()
    """Deliveries of the original document that a revoke or update cancelled."""
    warnings: tuple[Problem, ...] = ()
    """What the sender is told beside the id: recipients merged into a successor, to whom
    the package goes instead (`RECIPIENT_MERGED`)."""


@dataclass(frozen=True, slots=True)
class OutboxWork:
    outbox_id: int
    routing_key: str
    payload: str


@dataclass(frozen=True, slots=True)
class PushTarget:
    """A delivery still to be POSTed to its system's endpoint, as the store finds it."""

    delivery_id: str
    message_id: str
    kind: MessageKind
    from_code: str
    to_code: str
    system_id: str
    url: str
    secret_ciphertext: str
    payload_sha256: str
    attempts: int
    created_at: datetime
    enabled: bool = True
    """False while an operator has the system disabled: nothing is POSTed to it."""


@dataclass(frozen=True, slots=True)
class PushResult:
    """One POST of a package: delivered (any 2xx) or not, and what the endpoint answered."""

    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """What a poller may narrow its pending items to (the filters SDK clients send)."""

    created_from: datetime | None = None
    created_before: datetime | None = None
    recipients: frozenset[str] | None = None
    """Only these recipient agencies (each one the caller serves)."""
    handed_out: bool | None = None
    """False: only items never handed out (`new`); True: only ones offered before."""
    skip: int = 0
    """Items to pass over first (pageIndex > 1)."""


NO_FILTER = InboxFilter()


@dataclass(frozen=True, slots=True)
class InboxItem:
    delivery_id: DeliveryId
    message_id: MessageId
    kind: MessageKind
    from_code: AgencyCode
    to_code: AgencyCode
    document_id: str
    subject: str | None
    state: str
    created_at: datetime
    updated_at: datetime
    payload_sha256: str
    payload_size: int
    first_handout: bool = False
    available_since: datetime | None = None
    """Set by a download that moved the delivery out of `available`: since when it was there
    (the available→downloaded latency)."""


@dataclass(frozen=True, slots=True)
class MadeAvailable:
    """A delivery the inbox consumer has just made available."""

    message_id: MessageId
    received_at: datetime
    """When its package was accepted."""
    first_time: bool
    """False when it had been available before (an operator's replay of an uncollected
    item): the submit→available latency is measured once."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    at: datetime
    from_state: str | None
    to_state: str
    actor: str
    reason: str | None
    attempt: int


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A delivery as its sender sees it (getSentEdocList, /api/v1 timeline)."""

    message_id: MessageId
    delivery_id: DeliveryId
    kind: MessageKind
    from_code: AgencyCode
    to_code: AgencyCode
    requested_code: AgencyCode
    subject: str | None
    code_number: str | None
    code_notation: str | None
    document_id: str
    sent_at: datetime
    available_at: datetime | None
    state: str
    state_changed_at: datetime
    fail_count: int
    timeline: tuple[TimelineEntry, ...] = field(default_factory=tuple)
    route: str = "inbox"
    peer: str | None = None
    """Forwarded deliveries: the peer node, its DocId, and how far the package got behind
    it (the peer's `getSentEdocList`) and when that was read."""
    peer_doc_id: str | None = None
    downstream_state: str | None = None
    downstream_at: datetime | None = None
    business_status: str | None = None
    """The latest status code the recipient sent back (01..16), and when, and its text."""
    business_status_at: datetime | None = None
    business_status_desc: str | None = None


@dataclass(frozen=True, slots=True)
class AgencyRecord:
    code: AgencyCode
    name: str
    parent_code: str | None = None
    mail: str | None = None
    status: str = "active"
    successor_code: str | None = None
    old_code: str | None = None
    id: int | None = None
    parent_id: int | None = None
    peer: str | None = None
    """The peer this entry was learned from (`agencies sync`); None: this node's own."""


@dataclass(frozen=True, slots=True)
class DirectoryUnit:
    """One directory row as a peer syncs it (`getSynchronizeUnit`), tombstones included."""

    id: int
    parent_id: int | None
    code: AgencyCode
    name: str
    mail: str | None
    status: str
    version: int
    modified_at: datetime
    parent_code: str | None = None
    successor_code: str | None = None
    old_code: str | None = None


@dataclass(frozen=True, slots=True)
class AgencyRegistration:
    """A unit a system registers (`registerAgency`), its parent already decided."""

    code: AgencyCode
    name: str
    parent_code: str | None = None
    mail: str | None = None
    mobile: str | None = None
    fax: str | None = None


@dataclass(frozen=True, slots=True)
class DirectoryChange:
    """What a registration or deletion did: `added`, `updated`, `restored` (a tombstone came
    back), `deleted`, or `unchanged` (nothing to do, no version taken)."""

    code: AgencyCode
    change: str
    version: int


@dataclass(frozen=True, slots=True)
class AttachmentView:
    position: int
    content_id: str
    name: str | None
    description: str | None
    content_type: str | None
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class LinkView:
    relation: str
    target_document_id: str
    target_message_id: MessageId | None


@dataclass(frozen=True, slots=True)
class MessageView:
    """A package's metadata as one system may see it: its sender sees every delivery, a
    recipient only its own."""

    message_id: MessageId
    kind: MessageKind
    from_code: AgencyCode
    document_id: str
    code_number: str | None
    code_notation: str | None
    subject: str | None
    business_type: int
    status_code: str | None
    signed: bool
    paper: int | None
    received_at: datetime
    payload_sha256: str
    payload_size: int
    header: dict[str, Any] | None
    signature: dict[str, Any] | None
    warnings: tuple[dict[str, str], ...]
    attachments: tuple[AttachmentView, ...]
    links: tuple[LinkView, ...]
    deliveries: tuple[DeliveryView, ...]
    is_sender: bool
