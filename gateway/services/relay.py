"""The outbox relay: publishes committed work to the broker, and marks it only once confirmed.

Any number of relays may run (one per gateway process): rows are claimed atomically, and a
relay that dies mid-batch releases its claim when it expires. A publish that is confirmed but
not yet marked is published again later: consumers are idempotent, so that is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime, timedelta

from gateway.backoff import relay_backoff
from gateway.errors import BrokerUnavailable, ServiceUnavailable
from gateway.logs import body_ids, correlated
from gateway.ports import Broker, Store
from gateway.records import OutboxWork
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from gateway.types import BrokerEnvelope, RoutingKey

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self, settings: Settings, store: Store, broker: Broker, telemetry: Telemetry
    ) -> None:
        self._settings = settings
        self._store = store
        self._broker = broker
        self._telemetry = telemetry
        self._owner = f"relay-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._failures = 0
        self._last_sweep = 0.0

    def notify(self) -> None:
        """Called after an accepting commit, so the package moves without waiting a tick."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                published = await self.run_once()
                await self._sweep_stale()
                self._failures = 0
            except (ServiceUnavailable, BrokerUnavailable) as error:
                self._failures += 1
                log.warning("relay paused: %s", error)
                published = 0
            except Exception:  # a bug must not silently stop all publishing
                self._failures += 1
                log.exception("relay iteration failed")
                published = 0
            if published:
                continue  # there may be more right behind
            await self._idle()

    async def _idle(self) -> None:
        if self._failures:
            # Backing off: new packages must not wake us into another full pass over the
            # backlog against a broker that is away (each accept would cost one).
            await asyncio.sleep(relay_backoff(self._failures))
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._settings.relay_interval_seconds)

    async def run_once(self) -> int:
        """Claim a batch, publish it concurrently, record what the broker confirmed."""
        work = await self._store.claim_outbox(
            self._owner, self._settings.relay_batch, self._settings.relay_claim_seconds
        )
        if not work:
            return 0
        results = await asyncio.gather(
            *(self._publish(item) for item in work), return_exceptions=True
        )
        confirmed = [w.outbox_id for w, r in zip(work, results, strict=True) if r is None]
        failed = [(w.outbox_id, r) for w, r in zip(work, results, strict=True) if r is not None]
        for w, r in zip(work, results, strict=True):
            route = w.routing_key.partition(".")[0]
            counter = self._telemetry.published if r is None else self._telemetry.publish_failures
            counter.labels(route).inc()
        await self._store.mark_published(confirmed, actor="relay")
        if failed:
            await self._store.release_outbox([i for i, _ in failed], str(failed[0][1]))
            raise BrokerUnavailable(
                f"{len(failed)} of {len(work)} publishes not confirmed: {failed[0][1]}"
            )
        return len(confirmed)

    async def _publish(self, item: OutboxWork) -> None:
        delivery, message = body_ids(item.payload)
        with correlated(message):
            await self._broker.publish(
                BrokerEnvelope(
                    RoutingKey(item.routing_key), item.payload.encode(), str(item.outbox_id)
                )
            )
            log.info(
                "published to the broker",
                extra={"delivery": delivery, "routing_key": item.routing_key},
            )

    async def _sweep_stale(self) -> None:
        loop = asyncio.get_running_loop()
        period = max(1.0, self._settings.requeue_after_seconds / 4)
        if loop.time() - self._last_sweep < period:
            return
        self._last_sweep = loop.time()
        count = await self.republish_stale(self._settings.requeue_after_seconds)
        if count:
            log.warning("published %d stale deliveries again", count)
            self.notify()

    async def republish_stale(self, older_than_seconds: float) -> int:
        return await self._store.republish_stale(
            datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        )
