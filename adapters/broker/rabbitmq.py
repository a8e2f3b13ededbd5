"""RabbitMQ through aio-pika: durable topology, publisher confirms, manual acks.

The node must start, and keep accepting packages, while RabbitMQ is down: the outbox holds the
work. So the connection is made in the background and `publish` raises `BrokerUnavailable`
until it exists; after that, `connect_robust` restores channels, topology and consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

from adapters.broker.topology import Topology
from gateway.errors import BrokerUnavailable
from gateway.types import BrokerEnvelope, BrokerHandler, RoutingKey

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_SECONDS = 5.0
DELIVERY_LIMIT = 50  # a poison message goes to the dead-letter queue after this many tries
FAILED_HANDLER_PAUSE_SECONDS = 1.0


class RabbitMQBroker:
    def __init__(
        self, url: str, topology: Topology, prefetch: int = 32, reconnect_interval: float = 2.0
    ) -> None:
        self._url = url
        self._topology = topology
        self._prefetch = prefetch
        self._reconnect_interval = reconnect_interval
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._handler: BrokerHandler | None = None
        self._connected = asyncio.Event()
        self._connector: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_forever())

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def _connect_forever(self) -> None:
        while True:
            try:
                connection = await aio_pika.connect_robust(
                    self._url,
                    timeout=10,
                    reconnect_interval=self._reconnect_interval,
                    client_properties={
                        "connection_name": f"lienthong@{socket.gethostname()}:{os.getpid()}"
                    },
                )
                await self._declare(connection)
                self._connection = connection
                if self._handler is not None:
                    await self._start_consumers(connection, self._handler)
                self._connected.set()
                log.info("connected to RabbitMQ")
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("RabbitMQ not reachable (%s); retrying", error)
                await asyncio.sleep(self._reconnect_interval)

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        topology = self._topology
        # on_return_raises: an unroutable message must fail the publish, not vanish.
        self._publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
        channel = self._publisher
        self._exchange = await channel.declare_exchange(
            topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        dead = await channel.declare_exchange(
            topology.dead_letter_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dead_queue = await channel.declare_queue(
            topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead)
        for name, binding in topology.queues():
            queue = await channel.declare_queue(
                name, durable=True, arguments=self._shard_arguments()
            )
            await queue.bind(self._exchange, binding)
        for tier in topology.retry_tiers:
            for shard in range(topology.shards):
                await channel.declare_queue(
                    topology.retry_queue(tier, shard),
                    durable=True,
                    arguments={
                        "x-message-ttl": int(tier * 1000),
                        "x-dead-letter-exchange": topology.exchange,
                        "x-dead-letter-routing-key": topology.retry_routing_key(shard),
                    },
                )

    def _shard_arguments(self) -> dict[str, object]:
        return {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": self._topology.dead_letter_exchange,
        }

    async def publish(self, envelope: BrokerEnvelope) -> None:
        if self._exchange is None or self._connection is None or self._connection.is_closed:
            raise BrokerUnavailable("RabbitMQ is not connected")
        message = aio_pika.Message(
            envelope.body,
            message_id=envelope.message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await self._exchange.publish(
                message, envelope.routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT_SECONDS
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # confirm timeout, NO_ROUTE, nack, closed channel
            raise BrokerUnavailable(f"publish not confirmed: {error!r}") from error

    async def publish_delayed(self, envelope: BrokerEnvelope, delay_seconds: float) -> None:
        """Into the delay queue of the right tier and shard; when it expires there the broker
        routes it back to the shard's push queue. A per-message expiration below the tier
        carries the jitter (it only ever shortens the wait)."""
        if self._publisher is None or self._connection is None or self._connection.is_closed:
            raise BrokerUnavailable("RabbitMQ is not connected")
        topology = self._topology
        tier = topology.tier_for(delay_seconds)
        queue = topology.retry_queue(tier, topology.shard_of_key(envelope.routing_key))
        message = aio_pika.Message(
            envelope.body,
            message_id=envelope.message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=max(0.001, min(delay_seconds, tier)),
        )
        try:
            await self._publisher.default_exchange.publish(
                message, queue, mandatory=True, timeout=PUBLISH_TIMEOUT_SECONDS
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            raise BrokerUnavailable(f"delayed publish not confirmed: {error!r}") from error

    async def consume(self, handler: BrokerHandler) -> None:
        self._handler = handler
        if self._connection is not None:
            await self._start_consumers(self._connection, handler)

    async def _start_consumers(
        self, connection: AbstractRobustConnection, handler: BrokerHandler
    ) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)

        async def on_message(message: AbstractIncomingMessage) -> None:
            envelope = BrokerEnvelope(
                RoutingKey(message.routing_key or ""), message.body, message.message_id or ""
            )
            try:
                await handler(envelope)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("handler failed for %s; it will be redelivered", envelope.message_id)
                await asyncio.sleep(FAILED_HANDLER_PAUSE_SECONDS)
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)
                return
            # After a reconnect the ack may fail: the broker redelivers, the handler is
            # idempotent, nothing is lost.
            with contextlib.suppress(Exception):
                await message.ack()

        for name, _ in self._topology.queues():
            # Declared (idempotently) on this channel so that connect_robust restores the
            # consumer after a reconnect.
            queue = await channel.declare_queue(
                name, durable=True, arguments=self._shard_arguments()
            )
            await queue.consume(on_message)

    async def healthy(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
        self._connection = None
        self._exchange = None

    async def delete_topology(self) -> None:
        """Remove this namespace's queues and exchanges (tests, decommissioning)."""
        connection = await aio_pika.connect(self._url, timeout=10)
        async with connection:
            channel = await connection.channel()
            retry = [
                self._topology.retry_queue(tier, shard)
                for tier in self._topology.retry_tiers
                for shard in range(self._topology.shards)
            ]
            for name in (
                [q for q, _ in self._topology.queues()] + retry + [self._topology.dead_letter_queue]
            ):
                await channel.queue_delete(name)
            for exchange in (self._topology.exchange, self._topology.dead_letter_exchange):
                await channel.exchange_delete(exchange)
