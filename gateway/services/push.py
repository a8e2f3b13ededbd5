"""Push delivery: the node POSTs each package to the recipient system's endpoint.

A 2xx makes the delivery `done`; anything else is retried with exponential backoff and jitter
through the broker's delay queues (never a sleep holding a consumer) until the budget — a
number of attempts and a total age — is spent, and the delivery is `dead` (stuck, for an
operator to replay). Each system has its own small concurrency limit in each process: a slow
or dead endpoint holds only its own slots, and its further deliveries wait in a delay queue
instead of in front of other recipients.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.backoff import push_retry_delay
from gateway.delivery_states import DeliveryState
from gateway.edxml.trace import delivered_copy
from gateway.errors import BrokerUnavailable
from gateway.logs import body_ids, correlated
from gateway.ports import PushSender, PushStore
from gateway.records import PushResult, PushTarget
from gateway.services.inbox import file_chunks
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from gateway.types import Broker, BrokerEnvelope, MessageKind, PayloadStore, Sha256Hex

log = logging.getLogger(__name__)
BUSY_RETRY_SECONDS = 1.0


class PushDeliverer:
    """The broker handler of `push.*` deliveries; `sender` makes the POST (the composition root
    passes `adapters.push_client.PushClient`)."""

    def __init__(
        self,
        settings: Settings,
        store: PushStore,
        payloads: PayloadStore,
        broker: Broker,
        sender: PushSender,
        telemetry: Telemetry,
    ) -> None:
        self._settings = settings
        self._telemetry = telemetry
        self._store = store
        self._payloads = payloads
        self._broker = broker
        self._sender = sender
        self._zone = ZoneInfo(settings.timezone)
        self._slots: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.push_concurrency_per_system)
        )

    async def __call__(self, envelope: BrokerEnvelope) -> None:
        delivery_id, message_id = body_ids(envelope.body)
        if delivery_id is None:
            self._consumed("malformed")
            log.error("dropping malformed push message %r", envelope.body[:200])
            return
        with correlated(message_id):
            target = await self._store.push_target(delivery_id)
        if target is None:
            self._consumed("skipped")
            return  # done, dead, cancelled, or not a push system any more
        with correlated(target.message_id):
            await self._push(envelope, target)

    def _consumed(self, outcome: str) -> None:
        self._telemetry.consumed.labels("push", outcome).inc()

    async def _push(self, envelope: BrokerEnvelope, target: PushTarget) -> None:
        delivery_id = target.delivery_id
        slots = self._slots[target.system_id]
        if slots.locked():
            # This system is slow: its package waits in a delay queue, not in our consumer.
            await self._broker.publish_delayed(envelope, BUSY_RETRY_SECONDS)
            self._telemetry.delayed.labels("push").inc()
            self._consumed("deferred")
            return
        if not target.enabled:
            # Disabled by an operator: an attempt that is not made, retried within the budget
            # like an endpoint that is down (enable it, or replay the dead ones after).
            result = PushResult(False, f"system {target.system_id} is disabled: not pushed")
        else:
            async with slots:
                result = await self._sender.push(
                    target.url,
                    self._store.open_secret(target.secret_ciphertext),
                    await self._body(target),
                    self._headers(target),
                )
        self._consumed("handled")
        if result.ok:
            self._telemetry.pushes.labels("ok").inc()
            if await self._store.push_succeeded(delivery_id, result.detail):
                self._telemetry.since(
                    self._telemetry.submit_to_available, target.created_at, route="push"
                )
            log.info("pushed", extra={"delivery": delivery_id, "system": target.system_id})
            return
        self._telemetry.pushes.labels("failed").inc()
        attempt = target.attempts + 1
        age = (datetime.now(UTC) - target.created_at).total_seconds()
        spent = (
            attempt >= self._settings.push_max_attempts
            or age >= self._settings.push_max_age_seconds
        )
        delay = (
            None if spent else push_retry_delay(attempt, self._settings.push_retry_tiers_seconds)
        )
        state = await self._store.push_failed(delivery_id, result.detail, delay)
        log.warning(
            "push failed",
            extra={
                "delivery": delivery_id,
                "system": target.system_id,
                "attempt": attempt,
                "state": str(state),
                "detail": result.detail,
            },
        )
        if delay is not None and state == DeliveryState.RETRYING:
            try:
                await self._broker.publish_delayed(envelope, delay)
                self._telemetry.delayed.labels("push").inc()
            except BrokerUnavailable:
                log.warning(
                    "retry of %s not scheduled (broker away); the stale sweep will "
                    "publish it again",
                    delivery_id,
                )

    async def _body(self, target: PushTarget) -> Callable[[], Iterator[bytes]]:
        """What to POST, as a re-iterable stream: the same copy a poller downloads."""
        path = self._payloads.path_of(Sha256Hex(target.payload_sha256))
        if target.kind is not MessageKind.EDOC:
            return lambda: file_chunks(path)
        copy = await asyncio.to_thread(
            delivered_copy, path, self._settings.node_code, datetime.now(self._zone)
        )
        return copy.chunks

    @staticmethod
    def _headers(target: PushTarget) -> dict[str, str]:
        return {
            "Content-Type": "application/xml",
            "X-Lienthong-Delivery-Id": target.delivery_id,
            "X-Lienthong-Message-Id": target.message_id,
            "X-Lienthong-Kind": target.kind.value,
            "X-Lienthong-From": target.from_code,
            "X-Lienthong-To": target.to_code,
        }
