"""Whether a node under test has anything left in flight — the condition a test waits for
before asserting that nothing more arrives (instead of sleeping "long enough").

A node is quiet when no task is inside its broker handler and its broker holds no message:
none queued, none delayed (a push retry), none about to be redelivered. A message handled
after that would have to come from a new publish, which only a new event (a submission, an
operator's replay) makes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import CodeType
from typing import Any

import aio_pika

from adapters.broker.embedded import EmbeddedBroker
from adapters.broker.topology import Topology
from gateway.runtime import RouteDispatcher
from gateway.settings import Settings
from gateway.types import BrokerEnvelope

# Nodes under test run in the test's own event loop, so their tasks can be read from it.
_IN_FLIGHT = {RouteDispatcher.__call__.__code__, EmbeddedBroker._redeliver.__code__}


def handling_nothing() -> bool:
    """No task of this process is inside a node's broker handler or waiting to redeliver."""
    return not any(
        code in _IN_FLIGHT for task in asyncio.all_tasks() for code in _awaiting(task.get_coro())
    )


def _awaiting(awaitable: object) -> Iterator[CodeType]:
    """The code of each coroutine in a suspended task's chain of awaits."""
    while awaitable is not None:
        code = getattr(awaitable, "cr_code", None)
        if code is not None:
            yield code
        awaitable = getattr(awaitable, "cr_await", None)


class DelayWatch:
    """Records when the last delayed publish of an embedded broker comes due: its delays are
    timers that the broker does not list."""

    def __init__(self, broker: EmbeddedBroker) -> None:
        self._broker = broker
        self._due = 0.0
        publish_delayed = broker.publish_delayed

        async def watched(envelope: BrokerEnvelope, delay_seconds: float) -> None:
            self._due = max(self._due, asyncio.get_running_loop().time() + delay_seconds)
            await publish_delayed(envelope, delay_seconds)

        broker.publish_delayed = watched  # type: ignore[method-assign]

    def holds_nothing(self) -> bool:
        # The queues are the broker's own state: nothing public tells their length.
        queued = sum(queue.qsize() for queue in self._broker._queues.values())
        return queued == 0 and asyncio.get_running_loop().time() > self._due


async def rabbitmq_holds_nothing(url: str, settings: Settings) -> bool:
    """No ready message in the node's shard and delay queues (a passive declare reads the
    queue's own count; delivered messages are in a handler, which `handling_nothing` sees)."""
    topology = Topology(
        settings.broker_namespace, settings.broker_shards, settings.push_retry_tiers_seconds
    )
    names = [name for name, _ in topology.queues()] + [
        topology.retry_queue(tier, shard)
        for tier in topology.retry_tiers
        for shard in range(topology.shards)
    ]
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for name in names:
            queue = await channel.declare_queue(name, passive=True)
            declared: Any = queue.declaration_result
            if declared.message_count:
                return False
    return True
