"""Peer nodes in the store (SPEC §3.5): their credentials (secret sealed like a system's),
what `peers list` shows of each, the poll lease that lets one process at a time poll a
peer, and the items polled from it. Routing reads peers from the configuration snapshot;
every change bumps its version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.db.models import Delivery, Peer, PeerItem, utcnow
from adapters.db.store.base import SqlBase
from adapters.db.store.config import bump_config
from gateway.codes import ServePattern
from gateway.delivery_states import DELIVERABLE, DeliveryState
from gateway.errors import InvalidRequest, NotFound
from gateway.peers import PeerRecord, PeerStatus, check_peer_name
from gateway.types import RouteKind


class SqlPeers(SqlBase):
    async def add_peer(
        self,
        name: str,
        url: str,
        system_id: str,
        secret: str,
        prefixes: Sequence[str],
        is_default: bool = False,
    ) -> PeerRecord:
        try:
            check_peer_name(name)
            patterns = [ServePattern.parse(p).text for p in prefixes]
        except ValueError as error:
            raise InvalidRequest(str(error)) from error
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"peer url {url!r} must be the peer's http(s) /vxp base")
        if not patterns and not is_default:
            raise InvalidRequest("a peer needs at least one --prefix, or --default")
        async with self.transaction() as session:
            if await session.scalar(select(Peer.id).where(Peer.name == name)) is not None:
                raise InvalidRequest(f"peer {name} already exists")
            if is_default:
                await session.execute(update(Peer).values(is_default=False))
            session.add(
                Peer(
                    name=name,
                    url=url.rstrip("/"),
                    system_id=system_id,
                    secret_ciphertext=self._box.seal(secret),
                    prefixes=patterns,
                    is_default=is_default,
                    enabled=True,
                    created_at=utcnow(),
                )
            )
            await bump_config(session)
        return PeerRecord(
            name,
            url.rstrip("/"),
            system_id,
            tuple(ServePattern(p) for p in patterns),
            is_default,
        )

    async def remove_peer(self, name: str) -> None:
        """Forget a peer: nothing is routed to it again; what still waits to be forwarded to
        it is dead at its next attempt (an operator replays it once a route exists)."""
        async with self.transaction() as session:
            row = await session.scalar(select(Peer).where(Peer.name == name))
            if row is None:
                raise NotFound(f"no peer {name}")
            await session.delete(row)
            await bump_config(session)

    async def list_peers(self) -> list[PeerRecord]:
        return (await self.config()).list_peers()

    async def get_peer(self, name: str) -> PeerRecord | None:
        return (await self.config()).peers.get(name)

    async def peer_secret(self, name: str) -> str | None:
        async with self.transaction(read_only=True) as session:
            sealed = await session.scalar(select(Peer.secret_ciphertext).where(Peer.name == name))
        return None if sealed is None else self._box.open(sealed)

    async def peer_statuses(self) -> list[PeerStatus]:
        """Every peer with its reachability, last poll and backlog (grouped counts: one
        statement per figure, whatever the number of peers)."""
        peers = (await self.config()).peers
        async with self.transaction(read_only=True) as session:
            rows = {row.name: row for row in (await session.scalars(select(Peer))).all()}
            counts = await _delivery_counts(session)
            refused = dict(
                (
                    await session.execute(
                        select(PeerItem.peer, func.count())
                        .where(PeerItem.outcome == "refused")
                        .group_by(PeerItem.peer)
                    )
                ).all()
            )
        statuses = []
        for name in sorted(rows):
            row, record = rows[name], peers.get(name)
            if record is None:
                continue  # added after this snapshot: shown at the next call
            by_state = counts.get(name, {})
            statuses.append(
                PeerStatus(
                    peer=record,
                    last_contact_at=row.last_contact_at,
                    last_error_at=row.last_error_at,
                    last_poll_at=row.last_poll_at,
                    last_poll_error=row.last_poll_error,
                    backlog=sum(by_state.get(s.value, 0) for s in DELIVERABLE),
                    dead=by_state.get(DeliveryState.DEAD.value, 0),
                    forwarded=by_state.get(DeliveryState.FORWARDED.value, 0),
                    refused_items=int(refused.get(name, 0)),
                    directory_version=row.directory_version,
                )
            )
        return statuses

    async def note_peer_contact(self, name: str, error: str | None = None) -> None:
        """The peer answered (error None) or could not be reached: its reachability."""
        now = utcnow()
        values: dict[str, object] = (
            {"last_contact_at": now} if error is None else {"last_error_at": now}
        )
        async with self.transaction() as session:
            await session.execute(update(Peer).where(Peer.name == name).values(**values))

    # -- polling ----------------------------------------------------------------------------

    async def claim_peer_poll(self, name: str, owner: str, seconds: float) -> bool:
        """The poll lease: true for the one process that may poll `name` now. A process
        that dies holding it is replaced when the lease runs out."""
        now = utcnow()
        async with self.transaction() as session:
            result = await session.execute(
                update(Peer)
                .where(
                    Peer.name == name,
                    or_(Peer.poll_until.is_(None), Peer.poll_until < now, Peer.poll_owner == owner),
                )
                .values(poll_owner=owner, poll_until=now + timedelta(seconds=seconds))
                .execution_options(synchronize_session=False)
            )
        return bool(getattr(result, "rowcount", 0))

    async def finish_peer_poll(self, name: str, owner: str, error: str | None) -> None:
        now = utcnow()
        async with self.transaction() as session:
            await session.execute(
                update(Peer)
                .where(Peer.name == name, Peer.poll_owner == owner)
                .values(
                    poll_owner=None,
                    poll_until=None,
                    last_poll_at=now,
                    last_poll_error=error,
                    **({"last_contact_at": now} if error is None else {"last_error_at": now}),
                )
                .execution_options(synchronize_session=False)
            )

    async def peer_item_outcome(self, peer: str, kind: str, item_id: str) -> str | None:
        """What this node made of a peer's item before (accepted, duplicate, refused)."""
        async with self.transaction(read_only=True) as session:
            return await session.scalar(
                select(PeerItem.outcome).where(
                    PeerItem.peer == peer, PeerItem.kind == kind, PeerItem.item_id == item_id
                )
            )

    async def refuse_peer_item(
        self, peer: str, kind: str, item_id: str, recipient: str | None, reason: str
    ) -> None:
        """A polled item that failed validation: kept with its reason for operators."""
        async with self.transaction() as session:
            exists = await session.scalar(
                select(PeerItem.id).where(
                    PeerItem.peer == peer, PeerItem.kind == kind, PeerItem.item_id == item_id
                )
            )
            if exists is None:
                session.add(
                    PeerItem(
                        peer=peer,
                        kind=kind,
                        item_id=item_id,
                        recipient_code=recipient,
                        outcome="refused",
                        reason=reason[:4000],
                        seen_at=utcnow(),
                    )
                )

    async def peer_item_acknowledged(self, peer: str, kind: str, item_id: str) -> None:
        async with self.transaction() as session:
            await session.execute(
                update(PeerItem)
                .where(PeerItem.peer == peer, PeerItem.kind == kind, PeerItem.item_id == item_id)
                .values(acknowledged_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    async def refused_peer_items(
        self, peer: str | None = None, limit: int = 100
    ) -> list[dict[str, object]]:
        """The items polled from peers that this node refused, newest first."""
        query = select(PeerItem).where(PeerItem.outcome == "refused")
        if peer is not None:
            query = query.where(PeerItem.peer == peer)
        async with self.transaction(read_only=True) as session:
            rows = (await session.scalars(query.order_by(PeerItem.id.desc()).limit(limit))).all()
        return [
            {
                "peer": r.peer,
                "kind": r.kind,
                "item": r.item_id,
                "recipient": r.recipient_code,
                "reason": r.reason,
                "seenAt": _iso(r.seen_at),
                "acknowledgedAt": _iso(r.acknowledged_at),
            }
            for r in rows
        ]


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


async def _delivery_counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    rows = await session.execute(
        select(Delivery.peer, Delivery.state, func.count())
        .where(Delivery.route == RouteKind.PEER.value)
        .group_by(Delivery.peer, Delivery.state)
    )
    counts: dict[str, dict[str, int]] = {}
    for peer, state, count in rows.all():
        counts.setdefault(peer or "", {})[state] = int(count)
    return counts
