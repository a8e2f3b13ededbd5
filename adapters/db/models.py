"""Tables. The database is the source of truth: the broker only carries work (SPEC §3.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.delivery_states import PENDING_FOR_RECIPIENT

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants room to grow.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class System(Base):
    """A connected document system (QLVB&ĐH) and the agencies it may act for."""

    __tablename__ = "systems"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    previous_secret_ciphertext: Mapped[str | None] = mapped_column(Text)
    """The secret before the last rotation, still accepted until `previous_secret_until`."""
    previous_secret_until: Mapped[datetime | None] = mapped_column()
    serves: Mapped[list[Any]] = mapped_column(JSON)
    delivery_mode: Mapped[str] = mapped_column(String(16), default="poll")
    push_url: Mapped[str | None] = mapped_column(String(1000))
    """Where packages for a push system are POSTed (delivery_mode "push")."""
    signature_policy: Mapped[str | None] = mapped_column(String(24))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agency(Base):
    """The directory (danh bạ): one row per identifier code, kept through renames and merges."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code: Mapped[str] = mapped_column(String(35), unique=True)
    name: Mapped[str] = mapped_column(String(500))
    parent_code: Mapped[str | None] = mapped_column(String(35), index=True)
    mail: Mapped[str | None] = mapped_column(String(200))
    mobile: Mapped[str | None] = mapped_column(String(50))
    fax: Mapped[str | None] = mapped_column(String(50))
    level: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    successor_code: Mapped[str | None] = mapped_column(String(35))
    old_code: Mapped[str | None] = mapped_column(String(35))
    signature_policy: Mapped[str | None] = mapped_column(String(24))
    peer: Mapped[str | None] = mapped_column(String(64))
    """Learned from this peer's directory: the agency is reached through it."""
    version: Mapped[int] = mapped_column(BigId, index=True, unique=True)
    """Node-wide: taken from `DirectoryVersion` by every change of the row (no default, so
    a write that forgets to take one fails instead of hiding from incremental sync)."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DirectoryVersion(Base):
    """One row: the newest directory version. A change takes the next values while holding
    this row locked until it commits, so versions become visible in the order they were
    handed out; with a sequence a later version could commit first, and a peer that synced
    past it would never see the earlier one."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigId)


class ConfigVersion(Base):
    """One row: the node-wide configuration version. Every change to systems, their
    credentials, signature policies, certificate bindings or the directory bumps it in the
    same transaction, so each gateway process knows with one read whether what it cached
    (`gateway.config`) is still what the database holds."""

    __tablename__ = "config_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigId)


class Message(Base):
    """One accepted package; its bytes live in the payload store under `payload_sha256`."""

    __tablename__ = "messages"
    __table_args__ = (
        # The quarterly report's aggregates read these entries, not the wide rows (0012).
        Index(
            "ix_messages_report",
            "kind",
            "received_at",
            "from_code",
            "sender_system_id",
            "paper",
            "status_code",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    sender_system_id: Mapped[str] = mapped_column(String(64))
    from_code: Mapped[str] = mapped_column(String(35), index=True)
    document_id: Mapped[str] = mapped_column(String(200), index=True)
    code_number: Mapped[str | None] = mapped_column(String(100))
    code_notation: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(Text)
    business_type: Mapped[int] = mapped_column(Integer, default=0)
    status_code: Mapped[str | None] = mapped_column(String(4))
    # NULL for everything but new documents: unique keys ignore NULLs on both backends.
    dedup_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    payload_sha256: Mapped[str] = mapped_column(String(64))
    payload_size: Mapped[int] = mapped_column(BigId)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    header: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The typed header (and business part) as read, for metadata and reports."""
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    signature_outcome: Mapped[str | None] = mapped_column(String(16), index=True)
    """valid, invalid, absent, unverifiable or not-checked (SPEC §3.4)."""
    signature: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    paper: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class StoredAttachment(Base):
    """One decoded attachment, its bytes in the payload store under `sha256`."""

    __tablename__ = "attachments"
    __table_args__ = (UniqueConstraint("message_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    content_id: Mapped[str] = mapped_column(String(300))
    name: Mapped[str | None] = mapped_column(String(1000))
    description: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigId)
    sha256: Mapped[str] = mapped_column(String(64))


class MessageLink(Base):
    """A revoke, update or replace package and the document it acts on."""

    __tablename__ = "message_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    relation: Mapped[str] = mapped_column(String(16))
    target_document_id: Mapped[str] = mapped_column(String(200))
    target_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)


INBOX_PENDING = sorted(state.value for state in PENDING_FOR_RECIPIENT)
"""The states of the inbox poll index's rows (migration 0007 holds the same list)."""
INBOX_PENDING_SQL = "state IN (" + ", ".join(f"'{state}'" for state in INBOX_PENDING) + ")"


class Delivery(Base):
    """One message to one recipient agency: the unit that moves through the state machine."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("message_id", "recipient_code"),
        Index("ix_deliveries_inbox", "system_id", "kind", "state"),
        # A system's pending items oldest first (lease, list, count): the store's statements
        # repeat the predicate term as written here, which SQLite needs to use it.
        Index(
            "ix_deliveries_inbox_pending",
            "system_id",
            "kind",
            "id",
            postgresql_where=text(INBOX_PENDING_SQL),
            sqlite_where=text(INBOX_PENDING_SQL),
        ),
        Index("ix_deliveries_state_changed", "state", "state_changed_at"),
        Index("ix_deliveries_report", "message_id", "route", "kind", "recipient_code", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    recipient_code: Mapped[str] = mapped_column(String(35))
    requested_code: Mapped[str] = mapped_column(String(35))
    route: Mapped[str] = mapped_column(String(16))
    system_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    state_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    fail_count: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column()
    lease_count: Mapped[int] = mapped_column(Integer, default=0)
    next_offer_at: Mapped[datetime | None] = mapped_column()
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    """When a push that failed will be tried again (state retrying)."""
    last_error: Mapped[str | None] = mapped_column(Text)
    peer: Mapped[str | None] = mapped_column(String(64))
    """The peer node a `peer` route forwards to (decided at acceptance)."""
    peer_doc_id: Mapped[str | None] = mapped_column(String(100))
    """The DocId the peer answered: its id of the forwarded package."""
    downstream_state: Mapped[str | None] = mapped_column(String(32))
    """How far the package got behind the peer (its `getSentEdocList`), and when read."""
    downstream_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime | None] = mapped_column()
    downloaded_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column()


class DeliveryEvent(Base):
    """The timeline: one row per state transition, never updated."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)


class OutboxEntry(Base):
    """Work to publish: written in the accepting transaction, published after commit."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), index=True)
    routing_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column()
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class AgencyCertificate(Base):
    """A certificate an agency signs with: a signature by it for another agency is spoofing."""

    __tablename__ = "agency_certificates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(35), index=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), index=True)
    """SHA-256 of the certificate, lower-case hex."""
    subject: Mapped[str | None] = mapped_column(String(500))
    """Attributes that must all be in the subject, RFC 4514 (`CN=…,O=…`)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvidenceEntry(Base):
    """The hash-chained evidence log (`gateway.evidence`). An entry is written in its event's
    transaction *unchained* (`seq`, `prev_hash`, `entry_hash` NULL, no lock taken); the
    sequencer (`SqlEvidence.chain_evidence`) then gives it its place in the chain, once.
    Chained rows are never updated."""

    __tablename__ = "evidence"
    __table_args__ = (
        Index("uq_evidence_seq", "seq", unique=True),
        Index(
            "ix_evidence_unchained",
            "id",
            postgresql_where=text("seq IS NULL"),
            sqlite_where=text("seq IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    """Insertion order: the order in which the sequencer chains what it finds."""
    seq: Mapped[int | None] = mapped_column(BigId)
    at: Mapped[datetime] = mapped_column(index=True)
    event: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(36), index=True)
    delivery_id: Mapped[str | None] = mapped_column(String(36))
    actor: Mapped[str] = mapped_column(String(100))
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))


class EvidenceHead(Base):
    """One row: the newest chained entry. The sequencer locks it, which orders chaining from
    every gateway process, and it lets `audit verify` see entries removed from the end."""

    __tablename__ = "evidence_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId)
    entry_hash: Mapped[str] = mapped_column(String(64))


def table(model: type[Base]) -> Table:
    """The Core table of a model, for the hot paths' statements: an INSERT or UPDATE on the
    table skips the ORM's bulk-persistence layer and the session's flush."""
    return Base.metadata.tables[model.__tablename__]


class Peer(Base):
    """Another node this one forwards to and polls (SPEC §3.5): reached as a client of its
    `/vxp`, with the systemId and secret it gave this node (the secret sealed)."""

    __tablename__ = "peers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(1000))
    system_id: Mapped[str] = mapped_column(String(64))
    secret_ciphertext: Mapped[str] = mapped_column(Text)
    prefixes: Mapped[list[Any]] = mapped_column(JSON)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    poll_owner: Mapped[str | None] = mapped_column(String(64))
    poll_until: Mapped[datetime | None] = mapped_column()
    """The poll lease: one gateway process polls a peer at a time."""
    last_poll_at: Mapped[datetime | None] = mapped_column()
    last_poll_error: Mapped[str | None] = mapped_column(Text)
    last_contact_at: Mapped[datetime | None] = mapped_column()
    """The peer last answered (a poll, a forward, a sync): its reachability."""
    last_error_at: Mapped[datetime | None] = mapped_column()
    directory_version: Mapped[int | None] = mapped_column(BigId)
    """The peer's directory version this node synced up to (`getSynchronizeUnit`)."""
    directory_synced_at: Mapped[datetime | None] = mapped_column()


class PeerItem(Base):
    """An item a peer handed out (its `docId`): seen once, whatever the peer does again."""

    __tablename__ = "peer_items"
    __table_args__ = (UniqueConstraint("peer", "kind", "item_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    peer: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[str] = mapped_column(String(100))
    recipient_code: Mapped[str | None] = mapped_column(String(35))
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    """accepted (a message here), duplicate (already here), refused (acknowledged `fail`)."""
    message_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
