"""The composition root: builds the adapters a node runs with and its background work.

This is the one module of `gateway/` that names concrete adapters (with the CLI's bootstrap,
`gateway.cli._bootstrap`, which builds what commands need through the functions here);
everything else receives them already built, typed as the ports of `gateway.ports`,
`gateway.types` and `gateway.signatures`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from adapters.broker.embedded import EmbeddedBroker
from adapters.broker.rabbitmq import RabbitMQBroker
from adapters.broker.topology import Topology
from adapters.cursors import CursorSeal
from adapters.db.engine import create_engine
from adapters.db.migrate import migrate, revisions
from adapters.db.store import SqlStore
from adapters.payloads.filestore import FilePayloadStore
from adapters.peer_client import PeerClient
from adapters.push_client import PushClient
from adapters.secretbox import SecretBox
from adapters.signatures import trust_files
from adapters.signatures.trust import TrustStore
from adapters.signatures.trust_files import TrustEntry
from adapters.signatures.verifier import PackageVerifier
from gateway.datadir import ensure_data_dir
from gateway.edxml.schema import load_schemas
from gateway.faults import AFTER_ACCEPT, AFTER_FORWARD_ANSWER, BEFORE_CONSUME_COMMIT, FaultPoints
from gateway.ports import (
    ConsoleReads,
    Cursors,
    NodeStore,
    OperatorStore,
    PeerCaller,
    PushSender,
    ReportStore,
    SignatureVerifier,
    Store,
)
from gateway.services.directory_sync import DirectorySyncer
from gateway.services.downstream import DownstreamTracker
from gateway.services.evidence_sequencer import EvidenceSequencer
from gateway.services.forwarding import PeerForwarder
from gateway.services.inbox import Inbox, InboxDeliverer
from gateway.services.peer_polling import PeerPoller
from gateway.services.push import PushDeliverer
from gateway.services.relay import OutboxRelay
from gateway.services.submission import SubmitPackage
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from gateway.types import Broker, BrokerEnvelope, BrokerHandler, PayloadStore, RouteKind
from gateway.upload_slots import UploadSlots

log = logging.getLogger(__name__)


def build_secret_box(settings: Settings) -> SecretBox:
    ensure_data_dir(settings.data_dir)
    return SecretBox.from_settings(settings.secret_key, settings.data_dir)


def migrate_database(settings: Settings) -> None:
    """Create or upgrade the schema (and the data directory, owner-only)."""
    ensure_data_dir(settings.data_dir)
    migrate(settings.resolved_database_url)


def schema_state(revision: str | None) -> str:
    """`ok` (the schema this code needs), `behind` (a migration is due, or none was ever
    run) or `ahead` (migrated by a newer version of the node)."""
    head, known = revisions()
    if revision == head:
        return "ok"
    return "behind" if revision is None or revision in known else "ahead"


def build_store(settings: Settings) -> SqlStore:
    engine = create_engine(
        settings.resolved_database_url,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout_seconds,
    )
    return SqlStore(engine, build_secret_box(settings))


def build_trust_store(settings: Settings) -> TrustStore:
    return TrustStore(
        settings.trust_dir,
        cache_dir=settings.data_dir / "crl-cache",
        crl_max_age=timedelta(seconds=settings.crl_max_age_seconds),
        fetch_timeout=settings.crl_fetch_timeout_seconds,
    )


def build_verifier(settings: Settings) -> SignatureVerifier:
    """Package signatures checked against the trust directory (XML-DSig, chain, CRLs)."""
    return PackageVerifier(build_trust_store(settings))


def build_peer_client(settings: Settings) -> PeerCaller:
    """A client of peer nodes' `/vxp` (forwarding, polling, directory sync)."""
    return PeerClient(settings.peer_timeout_seconds)


def build_broker(settings: Settings) -> Broker:
    topology = Topology(
        settings.broker_namespace, settings.broker_shards, settings.push_retry_tiers_seconds
    )
    if settings.uses_embedded_broker:
        return EmbeddedBroker(topology, prefetch=settings.broker_prefetch)
    return RabbitMQBroker(settings.broker_url, topology, prefetch=settings.broker_prefetch)


def trust_entries(settings: Settings) -> list[TrustEntry]:
    """What the trust directory holds (`lienthong trust list`); empty when none is set."""
    if settings.trust_dir is None or not settings.trust_dir.is_dir():
        return []
    return trust_files.list_dir(settings.trust_dir)


class Runtime:
    """Everything one gateway process holds; `start`/`stop` bracket the app's lifespan."""

    def __init__(self, settings: Settings, telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.telemetry = telemetry = telemetry or Telemetry()
        load_schemas()
        store = build_store(settings)
        self.store: Store = store
        self.operators: OperatorStore = store
        self.console: ConsoleReads = store
        self.directory: NodeStore = store
        """The directory's reorganisation (`gateway.services.reorganisation`) reads routes."""
        self.reports: ReportStore = store
        box = build_secret_box(settings)
        self.cursors: Cursors = CursorSeal(box.derive("cursors"))
        self.console_key: bytes = box.derive("console")
        """Signs the operator console's sessions and CSRF tokens (`gateway.console`)."""
        self.payloads: PayloadStore = FilePayloadStore(settings.payload_dir)
        self.broker = build_broker(settings)
        self.relay = OutboxRelay(settings, store, self.broker, telemetry)
        self.sequencer = EvidenceSequencer(settings, store)
        store.on_evidence_appended(self.sequencer.notify)
        on_accepted = self.relay.notify
        self.push_sender: PushSender = PushClient(settings.push_timeout_seconds)
        self.peer_client: PeerCaller = build_peer_client(settings)
        self.directory_sync = DirectorySyncer(settings, store, self.peer_client)
        inbox: BrokerHandler = InboxDeliverer(store, telemetry)
        after_forward_answer: Callable[[], None] = _nothing
        if settings.fault_points:  # fault tests only; otherwise nothing is wrapped
            faults = FaultPoints(settings.fault_points, settings.data_dir)
            on_accepted = faults.before_callback(AFTER_ACCEPT, on_accepted)
            inbox = faults.before_handler(BEFORE_CONSUME_COMMIT, inbox)
            after_forward_answer = faults.before_callback(AFTER_FORWARD_ANSWER, lambda: None)
        self._deliverer = RouteDispatcher(
            {
                RouteKind.INBOX: inbox,
                RouteKind.PUSH: PushDeliverer(
                    settings, store, self.payloads, self.broker, self.push_sender, telemetry
                ),
                RouteKind.PEER: PeerForwarder(
                    settings,
                    store,
                    self.payloads,
                    self.broker,
                    self.peer_client,
                    telemetry,
                    after_forward_answer,
                ),
            },
            telemetry,
        )
        self.submit = SubmitPackage(
            settings, store, self.payloads, build_verifier(settings), on_accepted, telemetry
        )
        self.inbox = Inbox(settings, store, self.payloads, telemetry)
        self.peer_poller = PeerPoller(settings, store, self.submit, self.peer_client, telemetry)
        self.downstream = DownstreamTracker(settings, store, self.peer_client)
        self.uploads = UploadSlots(settings.max_uploads_per_system)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.broker.start()
        if isinstance(self.broker, EmbeddedBroker):
            # Whatever the previous run had only in memory is published again.
            with contextlib.suppress(Exception):
                await self.relay.republish_stale(0)
        await self.broker.consume(self._deliverer)
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        # Its first pass chains whatever a previous run left unchained.
        self._tasks.append(asyncio.create_task(self.sequencer.run(), name="evidence-sequencer"))
        if self.settings.peer_poll_seconds > 0:
            self._tasks.append(asyncio.create_task(self.peer_poller.run(), name="peer-poller"))
        if self.settings.peer_downstream_seconds > 0:
            self._tasks.append(
                asyncio.create_task(self.downstream.run(), name="downstream-tracker")
            )
        if self.settings.directory_sync_seconds > 0:
            self._tasks.append(
                asyncio.create_task(self.directory_sync.run(), name="directory-sync")
            )

    async def stop(self) -> None:
        """Each step is bounded: a stop that hangs keeps a node from restarting, and a
        step that overruns is logged by name instead (what it left is recovered at the
        next start: unchained evidence, unconfirmed outbox rows, unacknowledged messages)."""
        for task in self._tasks:
            task.cancel()
        await _bounded("background tasks", asyncio.gather(*self._tasks, return_exceptions=True))
        self._tasks.clear()
        await _bounded("broker", self.broker.close())
        await _bounded("push client", self.push_sender.close())
        await _bounded("peer client", self.peer_client.close())
        await _bounded("store", self.store.close())


STOP_STEP_SECONDS = 5.0
"""Longest wait for one step of `Runtime.stop`."""


async def _bounded(step: str, work: Awaitable[object]) -> None:
    try:
        await asyncio.wait_for(work, STOP_STEP_SECONDS)
    except TimeoutError:
        log.error("stopping: %s did not finish within %.0f s; left behind", step, STOP_STEP_SECONDS)


class RouteDispatcher:
    """One broker handler: the routing key's first word says which deliverer takes it.

    Retries come back from the delay queues under `push.retry.s<shard>` (their dead-letter
    key is part of the queues' fixed arguments), so for those the message body names the
    route (`{"delivery": …, "route": "peer"}`); a body without one is a push."""

    def __init__(self, handlers: dict[RouteKind, BrokerHandler], telemetry: Telemetry) -> None:
        self._handlers = handlers
        self._telemetry = telemetry

    async def __call__(self, envelope: BrokerEnvelope) -> None:
        route = envelope.routing_key.partition(".")[0]
        if envelope.routing_key.startswith(f"{RouteKind.PUSH.value}.retry."):
            route = _route_in_body(envelope.body) or route
        handler = self._handlers.get(RouteKind(route)) if route in set(RouteKind) else None
        if handler is None:
            self._telemetry.consumed.labels("unknown", "malformed").inc()
            log.error("no deliverer for routing key %s; dropped", envelope.routing_key)
            return
        try:
            await handler(envelope)
        except Exception:
            # Left to the broker (redelivery, then its dead-letter queue); the handlers count
            # every other outcome themselves.
            self._telemetry.consumed.labels(route, "error").inc()
            raise


def _route_in_body(body: bytes) -> str | None:
    try:
        route = json.loads(body).get("route")
    except (ValueError, AttributeError):
        return None
    return route if isinstance(route, str) else None


def _nothing() -> None:
    """No fault point: the hook the forwarder calls costs a call, nothing more."""
