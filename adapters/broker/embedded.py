"""The in-process broker of the embedded default: same routing, same at-least-once contract.

It keeps nothing on disk, and needs not: a message is published only after the database
committed the delivery, and whatever was in memory when the process stopped is published again
from the outbox at the next start (`SqlStore.republish_stale`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from adapters.broker.topology import Topology, topic_matches
from gateway.errors import BrokerUnavailable
from gateway.types import BrokerEnvelope, BrokerHandler

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(
        self,
        topology: Topology,
        prefetch: int = 32,
        redelivery_delay: float = 1.0,
        delivery_limit: int = 50,
    ) -> None:
        self._topology = topology
        self._prefetch = prefetch
        self._redelivery_delay = redelivery_delay
        self._delivery_limit = delivery_limit
        self._queues: dict[str, asyncio.Queue[tuple[BrokerEnvelope, int]]] = {}
        self._bindings = topology.queues()
        self._tasks: set[asyncio.Task[None]] = set()
        self._online = False
        self.dead_letters: list[BrokerEnvelope] = []

    async def start(self) -> None:
        self._queues = {name: asyncio.Queue() for name, _ in self._bindings}
        self._online = True

    async def close(self) -> None:
        self._online = False
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def healthy(self) -> bool:
        return self._online

    async def publish(self, envelope: BrokerEnvelope) -> None:
        if not self._online:
            raise BrokerUnavailable("embedded broker is stopped")
        self._route(envelope)

    def _route(self, envelope: BrokerEnvelope) -> None:
        targets = [
            name for name, pattern in self._bindings if topic_matches(pattern, envelope.routing_key)
        ]
        if not targets:
            raise BrokerUnavailable(f"no queue is bound for {envelope.routing_key} (NO_ROUTE)")
        for name in targets:
            self._queues[name].put_nowait((envelope, 1))

    async def publish_delayed(self, envelope: BrokerEnvelope, delay_seconds: float) -> None:
        """The in-process equivalent of a delay queue: a timer, lost with the process like
        everything in this broker, and recovered the same way (the store republishes
        deliveries whose retry time has long passed)."""
        if not self._online:
            raise BrokerUnavailable("embedded broker is stopped")
        loop = asyncio.get_running_loop()
        loop.call_later(max(0.0, delay_seconds), self._deliver_later, envelope)

    def _deliver_later(self, envelope: BrokerEnvelope) -> None:
        if self._online:
            with contextlib.suppress(BrokerUnavailable):
                self._route(envelope)

    async def consume(self, handler: BrokerHandler) -> None:
        for name in self._queues:
            for _ in range(self._prefetch):
                self._spawn(self._worker(name, handler))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _worker(self, name: str, handler: BrokerHandler) -> None:
        while True:
            envelope, attempt = await self._queues[name].get()
            try:
                await handler(envelope)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler failed for %s (attempt %d)", envelope.message_id, attempt)
                self._spawn(self._redeliver(name, envelope, attempt))

    async def _redeliver(self, name: str, envelope: BrokerEnvelope, attempt: int) -> None:
        await asyncio.sleep(self._redelivery_delay)
        if attempt >= self._delivery_limit:
            self.dead_letters.append(envelope)
        elif self._online:
            self._queues[name].put_nowait((envelope, attempt + 1))

    # Fault injection for tests: the embedded equivalent of `rabbitmqctl stop_app`, which loses
    # what was only in memory, exactly what a crash of the embedded node would lose.
    def stop_accepting(self) -> None:
        self._online = False
        for queue in self._queues.values():
            while not queue.empty():
                queue.get_nowait()

    def resume_accepting(self) -> None:
        self._online = True
