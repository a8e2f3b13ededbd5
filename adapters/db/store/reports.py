"""The quarterly report's aggregates (`gateway.reports`): three GROUP BY statements over a
period's messages and deliveries, computed by the database; Python only merges the
per-agency rows they return (hundreds, not the hundreds of thousands of packages).

The period selects messages by `received_at` (when this node accepted the package; its
deliveries are created in the same transaction). Every column the statements read is in
`ix_messages_report` (kind, received_at, from_code, sender_system_id, paper, status_code, id)
and `ix_deliveries_report` (message_id, route, kind, recipient_code, state), migration 0012: the
database reads those narrow entries instead of the message rows, which carry kilobytes of
header JSON each (bench/report_quarter.py measures both).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Integer, and_, case, exists, func, not_, select
from sqlalchemy.sql.elements import ColumnElement

from adapters.db.models import Agency, Delivery, Message
from adapters.db.store.base import SqlBase
from gateway.delivery_states import DeliveryState
from gateway.reports.quarterly import AgencyTraffic, merge_rows
from gateway.types import MessageKind, RouteKind

PEER_SENDER = "peer:"
"""How a package polled from a peer names its sender system (`PeerRecord.actor`)."""
LOCAL_ROUTES = (RouteKind.INBOX.value, RouteKind.PUSH.value)
NAME_BATCH = 500


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0).cast(Integer)


class SqlReports(SqlBase):
    async def traffic_by_agency(self, start: datetime, end: datetime) -> list[AgencyTraffic]:
        """Per local agency, what it sent, received and answered in [start, end)."""
        in_period = and_(Message.received_at >= start, Message.received_at < end)
        from_local = not_(Message.sender_system_id.startswith(PEER_SENDER, autoescape=True))
        with_paper = Message.paper == 1
        forwarded = exists().where(
            Delivery.message_id == Message.id, Delivery.route == RouteKind.PEER.value
        )
        sent = (
            select(
                Message.from_code,
                func.count(),
                _count_if(with_paper),
                _count_if(forwarded),
            )
            .where(Message.kind == MessageKind.EDOC.value, in_period, from_local)
            .group_by(Message.from_code)
        )
        received = (
            select(
                Delivery.recipient_code,
                func.count(),
                _count_if(with_paper),
                _count_if(not_(from_local)),
            )
            .join(Message, Message.id == Delivery.message_id)
            .where(
                # Both kinds are said, so that either side's index can lead.
                Message.kind == MessageKind.EDOC.value,
                Delivery.kind == MessageKind.EDOC.value,
                Delivery.route.in_(LOCAL_ROUTES),
                # Revoked, cancelled by an operator, or a merged agency's whose successor
                # had its own: never reached the recipient.
                Delivery.state != DeliveryState.CANCELLED.value,
                in_period,
            )
            .group_by(Delivery.recipient_code)
        )
        statuses = (
            select(Message.from_code, Message.status_code, func.count())
            .where(Message.kind == MessageKind.STATUS.value, in_period, from_local)
            .group_by(Message.from_code, Message.status_code)
        )
        async with self.transaction(read_only=True) as session:
            sent_rows = [(c, n, p, v) for c, n, p, v in (await session.execute(sent)).all()]
            received_rows = [(c, n, p, v) for c, n, p, v in (await session.execute(received)).all()]
            status_rows = [
                (c, s, n) for c, s, n in (await session.execute(statuses)).all() if s is not None
            ]
            codes = sorted(
                {r[0] for r in sent_rows}
                | {r[0] for r in received_rows}
                | {r[0] for r in status_rows}
            )
            names: dict[str, str] = {}
            for batch in _batches(codes, NAME_BATCH):
                found = await session.execute(
                    select(Agency.code, Agency.name).where(Agency.code.in_(batch))
                )
                names.update((code, name) for code, name in found.all())
        return merge_rows(sent_rows, received_rows, status_rows, names)


def _batches(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
