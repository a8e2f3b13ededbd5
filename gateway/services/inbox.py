"""What recipients do: receive from the broker into the inbox, poll, download, acknowledge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.edxml.trace import delivered_copy
from gateway.logs import body_ids, correlated
from gateway.ports import PayloadStore, Store
from gateway.records import NO_FILTER, InboxFilter, InboxItem, SystemRecord
from gateway.settings import Settings
from gateway.telemetry import Telemetry
from gateway.types import BrokerEnvelope, MessageKind, Sha256Hex

log = logging.getLogger(__name__)


class InboxDeliverer:
    """Broker consumer for the `inbox` route: queued → available, idempotently."""

    def __init__(self, store: Store, telemetry: Telemetry) -> None:
        self._store = store
        self._telemetry = telemetry
        self._consumed = {
            outcome: telemetry.consumed.labels("inbox", outcome)
            for outcome in ("handled", "skipped", "malformed")
        }

    async def __call__(self, envelope: BrokerEnvelope) -> None:
        delivery_id, message_id = body_ids(envelope.body)
        if delivery_id is None:
            self._consumed["malformed"].inc()
            log.error("dropping malformed broker message %r", envelope.body[:200])
            return
        with correlated(message_id):
            made = await self._store.make_available(delivery_id, actor="consumer")
        if made is None:
            self._consumed["skipped"].inc()
            return
        self._consumed["handled"].inc()
        if made.first_time:
            self._telemetry.since(
                self._telemetry.submit_to_available, made.received_at, route="inbox"
            )
        with correlated(made.message_id):
            log.info("available in the inbox", extra={"delivery": delivery_id})


@dataclass(frozen=True, slots=True)
class Download:
    item: InboxItem
    size: int
    chunks: Iterator[bytes]
    """Read lazily (in a worker thread by the web server): never the whole package at once."""


def file_chunks(path: Path, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while piece := handle.read(chunk_size):
            yield piece


class Inbox:
    def __init__(
        self, settings: Settings, store: Store, payloads: PayloadStore, telemetry: Telemetry
    ) -> None:
        self._settings = settings
        self._store = store
        self._payloads = payloads
        self._telemetry = telemetry
        self._zone = ZoneInfo(settings.timezone)
        self._poll_slots = asyncio.Semaphore(settings.max_concurrent_polls)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A poll's turn (`LIENTHONG_MAX_CONCURRENT_POLLS`): the lease or page and building
        its answer run inside, so a storm of pollers queues here instead of crowding out
        the submits on the event loop."""
        async with self._poll_slots:
            yield

    async def lease(
        self,
        system: SystemRecord,
        kind: MessageKind,
        limit: int = 500,
        only: InboxFilter = NO_FILTER,
    ) -> list[InboxItem]:
        return await self._store.lease_inbox(
            system.system_id, kind, limit, self._settings.inbox_lease_seconds, only
        )

    async def count(self, system: SystemRecord, kind: MessageKind) -> int:
        return await self._store.count_inbox(system.system_id, kind)

    async def page(
        self, system: SystemRecord, kind: MessageKind, after: int, limit: int
    ) -> tuple[list[InboxItem], int | None]:
        return await self._store.list_inbox(system.system_id, kind, after, limit)

    async def download(self, system: SystemRecord, delivery_id: str) -> Download:
        """The delivered copy, streamed: the original bytes plus this node's TraceHeader
        (documents; status packages go as they came)."""
        item = await self._store.download(
            system.system_id, delivery_id, actor=f"system:{system.system_id}"
        )
        if item.available_since is not None:
            self._telemetry.since(self._telemetry.available_to_downloaded, item.available_since)
            with correlated(item.message_id):
                log.info(
                    "downloaded",
                    extra={"delivery": item.delivery_id, "system": system.system_id},
                )
        path = self._payloads.path_of(Sha256Hex(item.payload_sha256))
        if item.kind is not MessageKind.EDOC:
            return Download(item, item.payload_size, file_chunks(path))
        copy = await asyncio.to_thread(
            delivered_copy, path, self._settings.node_code, datetime.now(self._zone)
        )
        return Download(item, copy.size, copy.chunks())

    async def acknowledge(
        self, system: SystemRecord, delivery_id: str, outcome: str, reason: str | None = None
    ) -> str:
        return await self._store.acknowledge(
            system.system_id,
            delivery_id,
            outcome,
            reason,
            actor=f"system:{system.system_id}",
            retry_after=self._settings.fail_retry_seconds,
        )
