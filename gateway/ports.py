"""The ports: what the domain and the use cases need of the world outside, each a protocol
that an adapter implements. Use cases and the HTTP layer depend on these, so the domain reads
without SQL, AMQP or xmlsec, and a second implementation (or a test double) fits the same slot.

    Store, OperatorStore, PushStore, PeerStore, DirectoryStore, ReportStore (NodeStore:
    all six), ConsoleReads
                          adapters.db.store.SqlStore (one object, each method one transaction)
    PushSender            adapters.push_client.PushClient
    PeerCaller            adapters.peer_client.PeerClient
    Cursors               adapters.cursors.CursorSeal
    Broker                adapters.broker (RabbitMQ, embedded)
    PayloadStore          adapters.payloads.filestore.FilePayloadStore
    SignatureVerifier     adapters.signatures.verifier

Only names are imported, for the type checker: `gateway.types` re-exports `Broker` and
`PayloadStore` from here, and importing nothing else at run time keeps that free of cycles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from datetime import datetime
    from pathlib import Path

    from gateway.directory_sync import MergeOutcome, PeerUnit, SyncCounts
    from gateway.operators import (
        ActionOutcome,
        DeliveryRow,
        MessageDetail,
        MessageFilter,
        Operator,
        OperatorAction,
        OperatorCredentials,
        OperatorRecord,
        Role,
        Selection,
    )
    from gateway.operators.figures import DayTraffic, FeedbackCoverage, StateFigure
    from gateway.peers import Busy, ForwardBatch, PeerRecord, PeerStatus
    from gateway.records import (
        AcceptedMessage,
        AgencyRecord,
        AgencyRegistration,
        DeliveryView,
        DirectoryChange,
        DirectoryUnit,
        InboxFilter,
        InboxItem,
        MadeAvailable,
        MessageView,
        NewMessage,
        OutboxWork,
        PushResult,
        PushTarget,
        RecipientPlan,
        RemovedSystem,
        SystemCredentials,
        SystemRecord,
    )
    from gateway.reports import AgencyTraffic
    from gateway.signatures import CertificateBinding, SignatureReport, SigningTime
    from gateway.types import BrokerEnvelope, BrokerHandler, MessageKind, Sha256Hex


class Store(Protocol):
    """The store as the use cases need it; each method is one transaction. Systems,
    credentials, signature policies, bindings, successors and closed agencies are read from
    a configuration snapshot checked once per request (`gateway.config`)."""

    async def ping(self) -> None: ...

    # systems and directory
    async def add_system(
        self,
        system_id: str,
        secret: str,
        patterns: Sequence[str],
        delivery_mode: str = "poll",
        push_url: str | None = None,
        *,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> None: ...
    async def set_system_enabled(
        self,
        system_id: str,
        enabled: bool,
        *,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> bool: ...
    async def set_system_secret(
        self,
        system_id: str,
        secret: str,
        *,
        previous_until: datetime | None = None,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> None: ...
    async def remove_system(
        self,
        system_id: str,
        *,
        force: bool = False,
        by: Operator | None = None,
        reason: str | None = None,
    ) -> RemovedSystem: ...
    async def get_system(self, system_id: str) -> SystemRecord | None: ...
    async def get_credentials(self, system_id: str) -> SystemCredentials | None: ...
    async def list_systems(self) -> list[SystemRecord]: ...
    async def list_peers(self) -> list[PeerRecord]: ...
    async def upsert_agencies(self, records: Sequence[AgencyRecord]) -> tuple[int, int]: ...
    async def list_agencies(self, prefix: str | None = None) -> list[AgencyRecord]: ...
    async def current_codes(self, codes: Sequence[str]) -> dict[str, str]: ...
    async def agency_statuses(self, codes: Sequence[str]) -> dict[str, str]: ...
    async def closed_agencies(self, codes: Sequence[str]) -> dict[str, str]: ...
    async def listed_agencies(self, level: int | None = None) -> list[AgencyRecord]: ...
    async def directory_units(
        self, after_version: int = 0, limit: int | None = None
    ) -> list[DirectoryUnit]: ...
    async def register_agency(
        self, registration: AgencyRegistration, actor: str
    ) -> DirectoryChange: ...
    async def delete_agency(self, code: str, actor: str) -> DirectoryChange: ...
    async def original_recipients(self, target_key: str) -> list[str] | None: ...

    async def signature_policies(
        self, system_id: str, agency_code: str
    ) -> tuple[str | None, str | None]: ...
    async def certificate_bindings(
        self, agency_code: str, fingerprint: str | None
    ) -> list[CertificateBinding]: ...
    async def record_refusal(
        self, actor: str, payload_sha256: str | None, code: str, detail: str
    ) -> None: ...

    # the evidence log: entries are written unchained with their events, then chained by
    # the sequencer; reads chain what is pending first unless told not to
    async def chain_evidence(self, limit: int = ...) -> int: ...
    async def flush_evidence(self) -> int: ...
    async def evidence_backlog(self) -> tuple[int, datetime | None]: ...
    async def evidence_head(self, *, chain_pending: bool = True) -> tuple[int, str]: ...
    async def evidence_page(
        self,
        after_seq: int,
        limit: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        chain_pending: bool = True,
    ) -> list[dict[str, Any]]: ...

    # acceptance and the outbox
    async def accept(self, new: NewMessage, actor: str) -> AcceptedMessage: ...
    async def claim_outbox(
        self, owner: str, limit: int, claim_seconds: float
    ) -> list[OutboxWork]: ...
    async def mark_published(self, outbox_ids: Sequence[int], actor: str) -> None: ...
    async def release_outbox(self, outbox_ids: Sequence[int], error: str) -> None: ...
    async def republish_stale(self, published_before: datetime) -> int: ...

    # the inbox
    async def make_available(self, delivery_id: str, actor: str) -> MadeAvailable | None: ...
    async def lease_inbox(
        self,
        system_id: str,
        kind: MessageKind,
        limit: int,
        lease_seconds: float,
        only: InboxFilter = ...,  # NO_FILTER
    ) -> list[InboxItem]: ...
    async def count_inbox(self, system_id: str, kind: MessageKind) -> int: ...
    async def list_inbox(
        self, system_id: str, kind: MessageKind, after: int, limit: int
    ) -> tuple[list[InboxItem], int | None]: ...
    async def download(self, system_id: str, delivery_id: str, actor: str) -> InboxItem: ...
    async def acknowledge(
        self,
        system_id: str,
        delivery_id: str,
        outcome: str,
        reason: str | None,
        actor: str,
        retry_after: float,
    ) -> str: ...

    # what senders see
    async def sent_deliveries(
        self,
        system_id: str,
        message_id: str | None = None,
        with_timeline: bool = False,
        limit: int = 1000,
    ) -> list[DeliveryView]: ...
    async def message_payload(self, message_id: str, system_id: str) -> tuple[str, str]: ...
    async def message_view(self, message_id: str, system_id: str) -> MessageView: ...

    # the node's own: operations (stuck, metrics), signature policy, and shutdown
    async def stuck(
        self, thresholds: Mapping[str, float], limit: int = 500
    ) -> list[tuple[str, DeliveryView]]: ...
    async def metrics(
        self, stuck_thresholds: Mapping[str, float]
    ) -> dict[str, list[tuple[dict[str, str], float]]]: ...
    async def schema_revision(self) -> str | None: ...
    async def set_signature_policy(
        self, *, system_id: str | None = None, agency_code: str | None = None, policy: str | None
    ) -> None: ...
    async def add_binding(
        self, agency_code: str, fingerprint: str | None, subject: str | None
    ) -> None: ...
    async def close(self) -> None: ...


class OperatorStore(Protocol):
    """What the operator API and CLI need of the store (`adapters.db.store.operators`)."""

    async def add_operator(
        self, name: str, role: Role, token_sha256: str, by: Operator
    ) -> None: ...
    async def set_operator_enabled(self, name: str, enabled: bool, by: Operator) -> None: ...
    async def record_operator_action(
        self, by: Operator, action: str, target: str, details: dict[str, Any]
    ) -> None: ...
    async def get_operator(self, name: str) -> OperatorCredentials | None: ...
    async def list_operators(self) -> list[OperatorRecord]: ...
    async def find_deliveries(
        self, where: MessageFilter, after: int, limit: int
    ) -> tuple[list[DeliveryRow], int | None]: ...
    async def message_detail(self, message_id: str) -> MessageDetail: ...
    async def replay(
        self, selection: Selection, reason: str, by: Operator, dry_run: bool
    ) -> ActionOutcome: ...
    async def cancel(
        self, selection: Selection, reason: str, by: Operator, dry_run: bool
    ) -> ActionOutcome: ...
    async def operator_actions(
        self, after: int, limit: int, operator: str | None = None
    ) -> tuple[list[OperatorAction], int | None]: ...


class ConsoleReads(Protocol):
    """What the operator console reads beside the operator API's reads
    (`adapters.db.store.console`, and the peers' status of `adapters.db.store.peers`)."""

    async def traffic_by_day(self, bounds: Sequence[datetime]) -> list[DayTraffic]: ...
    async def state_figures(self, stuck_thresholds: Mapping[str, float]) -> list[StateFigure]: ...
    async def feedback_coverage(self, since: datetime) -> FeedbackCoverage: ...
    async def search_agencies(self, query: str, limit: int) -> tuple[list[AgencyRecord], int]: ...
    async def agency_with_units(self, code: str, limit: int) -> list[AgencyRecord]: ...
    async def peer_statuses(self) -> list[PeerStatus]: ...


class Broker(Protocol):
    """Carries work between the relay and the consumers; never the source of truth."""

    async def start(self) -> None:
        """Connect and declare the topology; may be called before the broker is reachable."""

    async def close(self) -> None: ...

    async def publish(self, envelope: BrokerEnvelope) -> None:
        """Return only once the broker has taken responsibility (publisher confirm).

        Raises `BrokerUnavailable` otherwise, so the caller keeps the outbox row unpublished.
        """

    async def consume(self, handler: BrokerHandler) -> None:
        """Start consumers; a handler that raises leaves the message to be delivered again."""

    async def publish_delayed(self, envelope: BrokerEnvelope, delay_seconds: float) -> None:
        """Deliver again after about `delay_seconds` (broker delay queues, not a sleep in a
        consumer); raises `BrokerUnavailable` like `publish`."""

    async def healthy(self) -> bool: ...


class PayloadStore(Protocol):
    """Content-addressed bytes: the database holds only hashes and sizes."""

    def put_file(self, path: Path, sha256: Sha256Hex) -> None:
        """Move a spooled file into the store under its hash (idempotent)."""

    def path_of(self, sha256: Sha256Hex) -> Path: ...

    def read(self, sha256: Sha256Hex) -> bytes: ...

    def exists(self, sha256: Sha256Hex) -> bool: ...

    def check_writable(self) -> None:
        """Raise OSError unless a file can be written where payloads go (readiness)."""


class SignatureVerifier(Protocol):
    """Checks a package's signature and its signer's certificate (adapters/signatures)."""

    async def verify(self, document: bytes, signing_time: SigningTime) -> SignatureReport:
        """`signing_time` is when the certificate must have been valid: a time, or a function
        of how many TraceHeaders relays appended after signing (those are no claim of the
        sender's, `gateway.signatures.SigningTime`)."""


class PushStore(Protocol):
    """What push delivery needs of the store (`adapters.db.store_push`)."""

    async def push_target(self, delivery_id: str) -> PushTarget | None: ...
    def open_secret(self, ciphertext: str) -> str: ...
    async def push_succeeded(self, delivery_id: str, detail: str) -> bool: ...
    async def push_failed(self, delivery_id: str, error: str, retry_in: float | None) -> str: ...


class PeerStore(Protocol):
    """What federation needs of the store (`adapters.db.store.peers`, `.forwarding`)."""

    async def add_peer(
        self,
        name: str,
        url: str,
        system_id: str,
        secret: str,
        prefixes: Sequence[str],
        is_default: bool = False,
    ) -> PeerRecord: ...
    async def remove_peer(self, name: str) -> None: ...
    async def peer_statuses(self) -> list[PeerStatus]: ...
    async def refused_peer_items(
        self, peer: str | None = None, limit: int = 100
    ) -> list[dict[str, object]]: ...
    async def list_peers(self) -> list[PeerRecord]: ...
    async def get_peer(self, name: str) -> PeerRecord | None: ...
    async def peer_secret(self, name: str) -> str | None: ...
    async def note_peer_contact(self, name: str, error: str | None = None) -> None: ...
    async def claim_forward(
        self, delivery_id: str, lease_seconds: float
    ) -> ForwardBatch | Busy | None: ...
    async def forward_succeeded(
        self, delivery_ids: Sequence[str], peer_doc_id: str, detail: str
    ) -> int: ...
    async def forward_failed(
        self, delivery_ids: Sequence[str], error: str, retry_in: float | None
    ) -> list[str]: ...
    async def claim_peer_poll(self, name: str, owner: str, seconds: float) -> bool: ...
    async def finish_peer_poll(self, name: str, owner: str, error: str | None) -> None: ...
    async def peer_item_outcome(self, peer: str, kind: str, item_id: str) -> str | None: ...
    async def refuse_peer_item(
        self, peer: str, kind: str, item_id: str, recipient: str | None, reason: str
    ) -> None: ...
    async def peer_item_acknowledged(self, peer: str, kind: str, item_id: str) -> None: ...
    async def forwarded_awaiting_downstream(
        self, limit: int
    ) -> list[tuple[str, str, str, str]]: ...
    async def record_downstream(
        self, delivery_id: str, state: str, at: datetime | None = None
    ) -> None: ...


class DirectoryStore(Protocol):
    """The directory's sync from peers and its reorganisation
    (`adapters.db.store.directory_sync`, `.directory`)."""

    async def apply_peer_units(
        self,
        peer: str,
        units: Sequence[PeerUnit],
        *,
        other_peers: frozenset[str] = frozenset(),
        adopt: bool = False,
        version: int | None = None,
    ) -> SyncCounts: ...
    async def peer_directory_version(self, peer: str) -> int | None: ...
    async def claim_directory_sync(self, peer: str, interval_seconds: float) -> bool: ...
    async def merge_agency(
        self, old: str, new: str, plan: RecipientPlan | None, actor: str
    ) -> MergeOutcome: ...
    async def rename_agency(self, code: str, name: str, actor: str) -> DirectoryChange: ...
    async def retire_agency(self, code: str, actor: str) -> DirectoryChange: ...


class ReportStore(Protocol):
    """The quarterly report's aggregates (`gateway.reports`), computed by the database."""

    async def traffic_by_agency(self, start: datetime, end: datetime) -> list[AgencyTraffic]:
        """Per local agency: documents sent and received, with paper, via peers, and the
        status codes it sent, in [start, end)."""
        ...


class NodeStore(Store, OperatorStore, PushStore, PeerStore, DirectoryStore, ReportStore, Protocol):
    """The whole store, as the composition root builds it and CLI commands use it; use cases
    take the narrower port they need."""


class PushSender(Protocol):
    """POSTs a package to a system's endpoint, signed with its secret (`adapters.push_client`)."""

    async def push(
        self, url: str, secret: str, chunks: Callable[[], Iterator[bytes]], headers: dict[str, str]
    ) -> PushResult:
        """`chunks()` yields the body; it may be called more than once (hash, then send)."""
        ...

    async def close(self) -> None: ...


class PeerCaller(Protocol):
    """A client of peer nodes' `/vxp` (`adapters.peer_client`); transport failures raise
    `gateway.peers.PeerUnreachable`, answers come back as the peer gave them."""

    async def send_edoc(
        self,
        peer: PeerRecord,
        secret: str,
        chunks: Callable[[], Iterator[bytes]],
        from_code: str,
        messagetype: str,
        to: list[str],
    ) -> dict[str, Any]: ...

    async def call(
        self,
        peer: PeerRecord,
        secret: str,
        operation: str,
        params: dict[str, str] | None = None,
        body: bytes = b"{}",
    ) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class Cursors(Protocol):
    """Page cursors sealed with the listing and caller they were issued for
    (`adapters.cursors`)."""

    def seal(self, scope: str, position: int) -> str: ...
    def open(self, scope: str, cursor: str | None) -> int: ...
