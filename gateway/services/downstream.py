"""How far forwarded packages got behind the peer (SPEC §3.5 "End-to-end status").

A forwarded delivery is `forwarded` here for good; what happens next is the peer's. This
reads the peer's `getSentEdocList` for the DocId it gave each forwarded package, as any
sender would, and records its transport state for each recipient (`downstream_state`), so
the original sender sees, per recipient, which peer has it and how far it got there.
States the peer cannot leave (done, dead, cancelled) are not read again.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from gateway.peers import PeerUnreachable
from gateway.ports import PeerCaller, PeerStore
from gateway.services.periodic import every
from gateway.settings import Settings

log = logging.getLogger(__name__)
BATCH = 200


class DownstreamTracker:
    def __init__(self, settings: Settings, store: PeerStore, peers: PeerCaller) -> None:
        self._settings = settings
        self._store = store
        self._peers = peers

    async def run(self) -> None:
        await every(self._settings.peer_downstream_seconds, self.read_once, "downstream tracking")

    async def read_once(self) -> int:
        """One pass; the deliveries whose downstream state was recorded."""
        waiting = await self._store.forwarded_awaiting_downstream(BATCH)
        groups: defaultdict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for peer_name, peer_doc_id, delivery_id, recipient in waiting:
            groups[(peer_name, peer_doc_id)].append((delivery_id, recipient))
        recorded = 0
        for (name, peer_doc_id), ours in groups.items():
            peer = await self._store.get_peer(name)
            secret = await self._store.peer_secret(name)
            if peer is None or secret is None:
                continue
            try:
                answer = await self._peers.call(
                    peer, secret, "getSentEdocList", {"docId": peer_doc_id}
                )
            except PeerUnreachable as error:
                log.info("downstream of %s at %s not read: %s", peer_doc_id, name, error)
                continue
            rows = answer.get("data") if answer.get("status") == "OK" else None
            by_recipient = {
                str(row.get("toCode")): row for row in rows or [] if isinstance(row, dict)
            }
            for delivery_id, recipient in ours:
                row = by_recipient.get(recipient)
                if row is None:
                    continue
                state = str(row.get("sendStatus") or "unknown")
                await self._store.record_downstream(delivery_id, state)
                recorded += 1
        return recorded
