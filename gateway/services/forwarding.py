"""Forwarding to peer nodes (SPEC §3.5): the broker handler of `peer.*` deliveries.

One `sendEdoc` per package and peer, whatever the number of recipients behind it: the
deliveries are claimed together (`claim_forward`) and the `to` header lists their codes.
The package goes unchanged but for this node's TraceHeader, stamped with the time the
deliveries were accepted, so a resend after a crash carries the very same bytes. Failures
follow the push budget and tiers (`retrying`, then `dead`); a refusal that sending again
cannot fix is `dead` at once; a package whose trace already holds this node's code is a
loop and is never forwarded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.backoff import push_retry_delay
from gateway.delivery_states import DeliveryState
from gateway.edxml.trace import delivered_copy
from gateway.errors import BrokerUnavailable
from gateway.logs import body_ids, correlated
from gateway.peers import Busy, ForwardBatch, PeerUnreachable
from gateway.ports import PeerCaller, PeerStore
from gateway.services.inbox import file_chunks
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from gateway.types import Broker, BrokerEnvelope, MessageKind, PayloadStore, Sha256Hex

log = logging.getLogger(__name__)

PERMANENT_CODES = frozenset({"10", "18", "19", "22", "23", "26", "27"})
"""Peer refusals that the same package sent again cannot fix: not a package, unknown or
locked recipient, sender not registered there, bad parameters. The rest (wrong
credentials, a system error, an answer that is no answer) is retried: an operator can fix
the peer's configuration while the budget lasts."""
STATUS_RETRIED_CODES = frozenset({"22"})
"""For a status package, "not a valid package" is retried too: statuses of one document
travel as separate packages and may overtake each other on the way (03 reaching the peer
before 01), and a peer checks their order; the earlier one arrives, the retry passes."""
DUPLICATE_CODE = "24"
"""The peer has this package already (a resend after a crash): its DocId is the answer."""


class PeerForwarder:
    def __init__(
        self,
        settings: Settings,
        store: PeerStore,
        payloads: PayloadStore,
        broker: Broker,
        peers: PeerCaller,
        telemetry: Telemetry,
        after_answer: Callable[[], None] = lambda: None,
    ) -> None:
        """`after_answer` runs between the peer's answer and recording it (a fault point
        in the crash tests; nothing otherwise)."""
        self._settings = settings
        self._telemetry = telemetry
        self._after_answer = after_answer
        self._store = store
        self._payloads = payloads
        self._broker = broker
        self._peers = peers
        self._zone = ZoneInfo(settings.timezone)

    async def __call__(self, envelope: BrokerEnvelope) -> None:
        delivery_id, message_id = body_ids(envelope.body)
        if delivery_id is None:
            self._consumed("malformed")
            log.error("dropping malformed forward message %r", envelope.body[:200])
            return
        lease = self._settings.peer_forward_lease_seconds
        with correlated(message_id):
            claim = await self._store.claim_forward(delivery_id, lease)
            if claim is None:
                self._consumed("skipped")
                return  # forwarded, dead or cancelled already
            if isinstance(claim, Busy):
                # Another attempt holds it: look again once that claim has run out.
                await self._later(envelope, claim.seconds)
                self._consumed("deferred")
                return
        self._consumed("handled")
        with correlated(claim.message_id):
            await self._forward(claim, envelope)

    def _consumed(self, outcome: str) -> None:
        self._telemetry.consumed.labels("peer", outcome).inc()

    def _settled(self, batch: ForwardBatch, outcome: str, detail: str) -> None:
        self._telemetry.forwards.labels(batch.peer.name, outcome).inc()
        if outcome in ("forwarded", "duplicate"):
            self._telemetry.since(
                self._telemetry.submit_to_available, batch.created_at, route="peer"
            )
        log.log(
            logging.INFO if outcome in ("forwarded", "duplicate") else logging.WARNING,
            "forward %s",
            outcome,
            extra={"peer": batch.peer.name, "deliveries": batch.delivery_ids, "detail": detail},
        )

    async def _forward(self, batch: ForwardBatch, envelope: BrokerEnvelope) -> None:
        if self._settings.node_code in batch.trace_organs:
            reason = (
                f"loop: the package's trace already holds this node ({self._settings.node_code})"
            )
            self._failure(
                batch, await self._store.forward_failed(batch.delivery_ids, reason, None), reason
            )
            return
        secret = await self._store.peer_secret(batch.peer.name)
        if secret is None:
            reason = f"peer {batch.peer.name} is no longer configured"
            self._failure(
                batch, await self._store.forward_failed(batch.delivery_ids, reason, None), reason
            )
            return
        chunks = await self._copy(batch)
        try:
            answer = await self._peers.send_edoc(
                batch.peer,
                secret,
                chunks,
                batch.from_code,
                batch.kind,
                batch.recipients,
            )
        except PeerUnreachable as error:
            await self._store.note_peer_contact(batch.peer.name, str(error))
            await self._failed(batch, envelope, str(error), permanent=False)
            return
        self._after_answer()
        await self._store.note_peer_contact(batch.peer.name)
        code = str(answer.get("ErrorCode", ""))
        doc_id = str(answer.get("DocId") or "")
        description = str(answer.get("ErrorDesc", ""))[:500]
        if answer.get("status") == "OK" and doc_id:
            await self._store.forward_succeeded(batch.delivery_ids, doc_id, "accepted")
            self._settled(batch, "forwarded", f"peer DocId {doc_id}")
        elif code == DUPLICATE_CODE and doc_id:
            await self._store.forward_succeeded(
                batch.delivery_ids, doc_id, "the peer already had it (duplicate answer)"
            )
            self._settled(batch, "duplicate", f"peer DocId {doc_id}")
        else:
            reason = f"peer answered {answer.get('status')} {code}: {description}"
            permanent = code in PERMANENT_CODES and not (
                batch.kind == MessageKind.STATUS.value and code in STATUS_RETRIED_CODES
            )
            await self._failed(batch, envelope, reason, permanent=permanent)

    async def _copy(self, batch: ForwardBatch) -> Callable[[], Iterator[bytes]]:
        """The stored package with this node's TraceHeader, as a re-iterable stream."""
        path = self._payloads.path_of(Sha256Hex(batch.payload_sha256))
        if batch.kind != MessageKind.EDOC.value:
            return lambda: file_chunks(path)
        stamped = batch.created_at.astimezone(self._zone)
        copy = await asyncio.to_thread(delivered_copy, path, self._settings.node_code, stamped)
        return copy.chunks

    async def _failed(
        self, batch: ForwardBatch, envelope: BrokerEnvelope, error: str, *, permanent: bool
    ) -> None:
        attempt = batch.attempts + 1
        age = (datetime.now(UTC) - batch.created_at).total_seconds()
        spent = (
            permanent
            or attempt >= self._settings.push_max_attempts
            or age >= self._settings.push_max_age_seconds
        )
        delay = (
            None if spent else push_retry_delay(attempt, self._settings.push_retry_tiers_seconds)
        )
        states = await self._store.forward_failed(batch.delivery_ids, error, delay)
        self._failure(batch, states, error)
        if delay is not None and DeliveryState.RETRYING.value in states:
            await self._later(envelope, delay)

    def _failure(self, batch: ForwardBatch, states: list[str], error: str) -> None:
        if DeliveryState.RETRYING.value in states:
            self._settled(batch, "retrying", error)
        elif DeliveryState.DEAD.value in states:
            self._settled(batch, "dead", error)

    async def _later(self, envelope: BrokerEnvelope, delay: float) -> None:
        try:
            await self._broker.publish_delayed(envelope, delay)
            self._telemetry.delayed.labels("peer").inc()
        except BrokerUnavailable:
            log.warning(
                "retry of %s not scheduled (broker away); the stale sweep will publish it again",
                envelope.message_id,
            )
