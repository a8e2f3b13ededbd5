"""What recipients do: receive from the broker into the inbox, poll, download, acknowledge."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.edxml.trace import with_trace_header
from gateway.ports import Store
from gateway.records import InboxItem, SystemRecord
from gateway.settings import Settings
from gateway.types import BrokerEnvelope, MessageKind, PayloadStore, Sha256Hex

log = logging.getLogger(__name__)


class InboxDeliverer:
    """Broker consumer for the `inbox` route: queued → available, idempotently."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def __call__(self, envelope: BrokerEnvelope) -> None:
        try:
            delivery_id = json.loads(envelope.body)["delivery"]
        except (ValueError, KeyError, TypeError):
            log.error("dropping malformed broker message %r", envelope.body[:200])
            return
        await self._store.make_available(str(delivery_id), actor="consumer")


class Inbox:
    def __init__(self, settings: Settings, store: Store, payloads: PayloadStore) -> None:
        self._settings = settings
        self._store = store
        self._payloads = payloads
        self._zone = ZoneInfo(settings.timezone)

    async def lease(self, system: SystemRecord, kind: MessageKind, limit: int = 500
                    ) -> list[InboxItem]:
        return await self._store.lease_inbox(system.system_id, kind, limit,
                                             self._settings.inbox_lease_seconds)

    async def page(self, system: SystemRecord, kind: MessageKind, after: int, limit: int
                   ) -> tuple[list[InboxItem], int | None]:
        return await self._store.list_inbox(system.system_id, kind, after, limit)

    async def download(self, system: SystemRecord, delivery_id: str) -> tuple[InboxItem, bytes]:
        """The delivered copy: the original bytes plus this node's TraceHeader (documents)."""
        item = await self._store.download(system.system_id, delivery_id,
                                          actor=f"system:{system.system_id}")
        original = await asyncio.to_thread(self._payloads.read, Sha256Hex(item.payload_sha256))
        if item.kind is not MessageKind.EDOC:
            return item, original
        copy = await asyncio.to_thread(with_trace_header, original, self._settings.node_code,
                                       datetime.now(self._zone))
        return item, copy

    async def acknowledge(self, system: SystemRecord, delivery_id: str, outcome: str,
                          reason: str | None = None) -> str:
        return await self._store.acknowledge(system.system_id, delivery_id, outcome, reason,
                                             actor=f"system:{system.system_id}",
                                             retry_after=self._settings.fail_retry_seconds)
