"""Inbound from peers (SPEC §3.5): every peer is polled, as an agency system polls a node.

For each item a peer lists (documents, then statuses) the node downloads the package,
submits it through the same pipeline as any package (validation, signature policy,
evidence) with the peer as its submitter and only the recipient the list entry names, and
acknowledges `done` to the peer only after that commit. The peer's item id is written in
the accepting transaction, so an item handed out again (the acknowledgement was lost, the
process died) is acknowledged again and never makes a second delivery. A package that
fails validation is acknowledged `fail` with the reason and kept for operators
(`lienthong peers refused`). One process polls a peer at a time (a lease in the peers
table), so several gateway processes never take the same item twice.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from gateway.errors import DuplicatePackage, GatewayError, ServiceUnavailable
from gateway.peers import PeerItemRef, PeerRecord, PeerUnreachable
from gateway.ports import PeerCaller, PeerStore
from gateway.records import SystemRecord
from gateway.services.periodic import every
from gateway.services.submission import Submission, SubmitPackage
from gateway.settings import Settings
from gateway.spool import spool_body
from gateway.types import MessageKind, SystemId

log = logging.getLogger(__name__)

KINDS = (MessageKind.EDOC, MessageKind.STATUS)


class ItemRefused(Exception):
    """The peer's item is not a package this node can take: acknowledged `fail`."""


class PeerPoller:
    def __init__(
        self,
        settings: Settings,
        store: PeerStore,
        submit: SubmitPackage,
        peers: PeerCaller,
    ) -> None:
        self._settings = settings
        self._store = store
        self._submit = submit
        self._peers = peers
        self._owner = f"poller-{uuid.uuid4().hex[:12]}"

    async def run(self) -> None:
        await every(self._settings.peer_poll_seconds, self.poll_all, "peer polling")

    async def poll_all(self) -> None:
        for peer in await self._store.list_peers():
            if peer.enabled:
                await self.poll(peer)

    async def poll(self, peer: PeerRecord) -> int:
        """One pass over one peer, if this process holds its lease; the items taken."""
        lease = max(60.0, self._settings.peer_timeout_seconds * 4)
        if not await self._store.claim_peer_poll(peer.name, self._owner, lease):
            return 0
        error: str | None = None
        taken = 0
        try:
            secret = await self._store.peer_secret(peer.name)
            if secret is None:
                return 0
            for kind in KINDS:
                taken += await self._poll_kind(peer, secret, kind)
        except PeerUnreachable as failure:
            error = str(failure)
            log.warning("peer %s not reachable: %s", peer.name, failure)
        finally:
            with contextlib.suppress(ServiceUnavailable):
                await self._store.finish_peer_poll(peer.name, self._owner, error)
        return taken

    async def _poll_kind(self, peer: PeerRecord, secret: str, kind: MessageKind) -> int:
        answer = await self._peers.call(
            peer,
            secret,
            "getReceivedEdocList",
            {"messagetype": kind.value, "pageSize": str(self._settings.peer_poll_batch)},
        )
        if answer.get("status") != "OK":
            raise PeerUnreachable(
                f"getReceivedEdocList {kind.value}: {answer.get('ErrorCode')} "
                f"{answer.get('ErrorDesc')}"
            )
        items = [i for i in answer.get("data") or [] if isinstance(i, dict) and i.get("docId")]
        for item in items[: self._settings.peer_poll_batch]:
            await self._take(peer, secret, kind, item)
        return len(items)

    async def _take(
        self, peer: PeerRecord, secret: str, kind: MessageKind, item: dict[str, Any]
    ) -> None:
        item_id = str(item["docId"])
        recipient = str(item.get("to") or "") or None
        before = await self._store.peer_item_outcome(peer.name, kind.value, item_id)
        if before == "refused":
            await self._acknowledge(peer, secret, kind, item_id, "fail", "refused before")
            return
        if before is None:
            try:
                await self._accept(peer, secret, kind, item_id, recipient)
            except ItemRefused as refusal:
                await self._store.refuse_peer_item(
                    peer.name, kind.value, item_id, recipient, str(refusal)
                )
                await self._acknowledge(peer, secret, kind, item_id, "fail", str(refusal))
                return
        await self._acknowledge(peer, secret, kind, item_id, "done", None)

    async def _accept(
        self,
        peer: PeerRecord,
        secret: str,
        kind: MessageKind,
        item_id: str,
        recipient: str | None,
    ) -> None:
        """Download and submit; committed (or a duplicate) when it returns, `ItemRefused`
        for a package this node refuses, anything else leaves the item for the next pass."""
        answer = await self._peers.call(
            peer, secret, "getEdoc", {"docId": item_id, "filePath": "edxml"}
        )
        if answer.get("status") != "OK" or not answer.get("data"):
            raise PeerUnreachable(
                f"getEdoc {item_id}: {answer.get('ErrorCode')} {answer.get('ErrorDesc')}"
            )
        try:
            package = base64.b64decode(str(answer["data"]), validate=True)
        except (binascii.Error, ValueError) as error:
            raise ItemRefused(f"getEdoc {item_id}: data is not base64 ({error})") from None
        body = await spool_body(
            _once(package), self._settings.spool_dir, self._settings.max_package_bytes, 0
        )
        submission = Submission(
            # The peer as submitter: it serves no pattern here (its sender is checked
            # against the local systems instead, `check_from_peer`).
            system=SystemRecord(SystemId(peer.actor), ()),
            body=body,
            declared_kind=kind,
            declared_to=(recipient,) if recipient else None,
            peer_item=PeerItemRef(peer.name, kind.value, item_id, recipient or ""),
        )
        try:
            await self._submit(submission)
        except DuplicatePackage:
            return  # already here (another path, or this item before): nothing new
        except ServiceUnavailable:
            raise
        except GatewayError as refusal:
            raise ItemRefused(f"{refusal.code}: {refusal.detail}") from None

    async def _acknowledge(
        self,
        peer: PeerRecord,
        secret: str,
        kind: MessageKind,
        item_id: str,
        status: str,
        description: str | None,
    ) -> None:
        params = {"docId": item_id, "status": status}
        if description:
            # A header value: ASCII only (the SDK's own peers could not read more).
            params["description"] = description[:500].encode("ascii", "replace").decode()
        answer = await self._peers.call(peer, secret, "updateStatus", params)
        if answer.get("status") != "OK":
            log.warning(
                "peer %s refused updateStatus %s for %s: %s %s",
                peer.name,
                status,
                item_id,
                answer.get("ErrorCode"),
                answer.get("ErrorDesc"),
            )
            return
        await self._store.peer_item_acknowledged(peer.name, kind.value, item_id)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
