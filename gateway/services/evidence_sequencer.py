"""The evidence sequencer: chains the entries that events wrote unchained (SPEC §3.4).

Events write their evidence entry in their own transaction without taking the chain's head
(`Store.chain_evidence` explains the split); this loop, one per gateway process, chains them
in batches. It is woken by commits that appended evidence (after a short gathering delay, so
that one pass chains many entries) and looks on its own every
`evidence_chain_interval_seconds` for entries that other processes or commands wrote. Any
number may run against one database: each pass locks the head row, which orders them. An
entry a crash left unchained is chained by the first pass after the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from gateway.backoff import relay_backoff
from gateway.errors import ServiceUnavailable
from gateway.ports import Store
from gateway.settings import Settings

log = logging.getLogger(__name__)


class EvidenceSequencer:
    def __init__(self, settings: Settings, store: Store) -> None:
        self._store = store
        self._batch = settings.evidence_chain_batch
        self._interval = settings.evidence_chain_interval_seconds
        self._gather = settings.evidence_chain_gather_seconds
        self._wake = asyncio.Event()
        self._failures = 0

    def notify(self) -> None:
        """Called after a commit that appended evidence."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                chained = await self._store.chain_evidence(self._batch)
                self._failures = 0
            except ServiceUnavailable as error:
                self._failures += 1
                log.warning("evidence sequencer paused: %s", error)
                chained = 0
            except Exception:  # a bug must not silently stop chaining
                self._failures += 1
                log.exception("evidence sequencer pass failed")
                chained = 0
            if chained >= self._batch:
                continue  # a full batch: there is more right behind
            await self._idle()

    async def _idle(self) -> None:
        if self._failures:
            await asyncio.sleep(relay_backoff(self._failures))
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._interval)
        if self._wake.is_set() and self._gather:
            await asyncio.sleep(self._gather)
