"""What the operator console reads beside the operator API's own reads (issue #13): the
overview's figures and the directory search. Each figure is one aggregate statement, however
much traffic the node holds; the directory search is bounded by its LIMIT.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, case, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from adapters.db.models import Agency, Delivery, Message, utcnow
from adapters.db.store.base import SqlBase
from gateway.codes import is_standard_shape
from gateway.operators.figures import DayTraffic, FeedbackCoverage, StateFigure
from gateway.records import AgencyRecord
from gateway.types import AgencyCode, MessageKind, RouteKind

LOCAL_ROUTES = (RouteKind.INBOX.value, RouteKind.PUSH.value)
"""Deliveries to this node's own recipients (a `peer` route hands the package on)."""


def _per_bucket(
    column: InstrumentedAttribute[datetime], bounds: Sequence[datetime]
) -> list[ColumnElement[int]]:
    """One `sum(case …)` per [bounds[i], bounds[i+1]): every bucket in a single scan."""
    return [
        func.coalesce(
            func.sum(case((column >= start, case((column < end, 1), else_=0)), else_=0)), 0
        ).label(f"b{i}")
        for i, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False))
    ]


class SqlConsoleReads(SqlBase):
    """The overview's figures and the directory search, each call one read-only transaction."""

    async def traffic_by_day(self, bounds: Sequence[datetime]) -> list[DayTraffic]:
        """Documents accepted and deliveries to local recipients per day; `bounds` are the
        days' starts in the node's time zone, and the end of the last one."""
        if len(bounds) < 2:
            return []
        start, end = bounds[0], bounds[-1]
        async with self.transaction(read_only=True) as session:
            sent = (
                await session.execute(
                    select(*_per_bucket(Message.received_at, bounds)).where(
                        Message.kind == MessageKind.EDOC.value,
                        Message.received_at >= start,
                        Message.received_at < end,
                    )
                )
            ).one()
            received = (
                await session.execute(
                    select(*_per_bucket(Message.received_at, bounds))
                    .select_from(Delivery)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(
                        Message.kind == MessageKind.EDOC.value,
                        Message.received_at >= start,
                        Message.received_at < end,
                        Delivery.route.in_(LOCAL_ROUTES),
                    )
                )
            ).one()
        return [
            DayTraffic(day=day.date(), sent=int(sent[i]), received=int(received[i]))
            for i, day in enumerate(bounds[:-1])
        ]

    async def state_figures(self, stuck_thresholds: Mapping[str, float]) -> list[StateFigure]:
        """Every delivery state with its count and oldest change, and for the states that
        can be stuck (`LIENTHONG_STUCK_*_SECONDS`) how many are and since when."""
        now = utcnow()
        stuck_since = case(
            *(
                (
                    Delivery.state == state,
                    literal(now - timedelta(seconds=seconds), Delivery.state_changed_at.type),
                )
                for state, seconds in stuck_thresholds.items()
            ),
            else_=None,
        )
        is_stuck = Delivery.state_changed_at < stuck_since
        async with self.transaction(read_only=True) as session:
            rows = (
                await session.execute(
                    select(
                        Delivery.state,
                        func.count(),
                        func.min(Delivery.state_changed_at),
                        func.coalesce(func.sum(case((is_stuck, 1), else_=0)), 0),
                        func.min(case((is_stuck, Delivery.state_changed_at), else_=None)),
                    ).group_by(Delivery.state)
                )
            ).all()
        return [
            StateFigure(
                state=state,
                count=int(count),
                oldest_changed_at=_aware(oldest),
                stuck=int(stuck),
                oldest_stuck_changed_at=_aware(oldest_stuck),
            )
            for state, count, oldest, stuck, oldest_stuck in sorted(rows, key=lambda r: r[0])
        ]

    async def feedback_coverage(self, since: datetime) -> FeedbackCoverage:
        """The agencies that received documents here since `since`, by the number of
        distinct status codes they sent back in the same window."""
        async with self.transaction(read_only=True) as session:
            recipients = (
                select(Delivery.recipient_code.label("code"))
                .join(Message, Message.id == Delivery.message_id)
                .where(
                    Message.kind == MessageKind.EDOC.value,
                    Message.received_at >= since,
                    Delivery.route.in_(LOCAL_ROUTES),
                )
                .distinct()
                .subquery()
            )
            codes = (
                select(
                    Message.from_code.label("code"),
                    func.count(func.distinct(Message.status_code)).label("n"),
                )
                .where(Message.kind == MessageKind.STATUS.value, Message.received_at >= since)
                .group_by(Message.from_code)
                .subquery()
            )
            n = func.coalesce(codes.c.n, 0)
            row = (
                await session.execute(
                    select(
                        func.count(),
                        *(
                            func.coalesce(func.sum(case((test, 1), else_=0)), 0)
                            for test in (n >= 5, n.between(3, 4), n.between(1, 2), n == 0)
                        ),
                    )
                    .select_from(recipients)
                    .outerjoin(codes, codes.c.code == recipients.c.code)
                )
            ).one()
        total, five, three, one, none = (int(v) for v in row)
        return FeedbackCoverage(since, total, five, three, one, none)

    async def search_agencies(self, query: str, limit: int) -> tuple[list[AgencyRecord], int]:
        """Agencies for the directory page, and how many the directory holds.

        A whole code (`000.00.13.H53`) finds that agency and its sub-units through the
        indexes on `code` and `parent_code`. Anything else is a fragment of a code or a name
        (case-insensitive, `%` and `_` taken literally): one scan that stops at `limit`
        matches (no ORDER BY, which would make it read and sort every match first), the
        page then sorted by code."""
        text = query.strip()
        if not text:
            statement = select(Agency).order_by(Agency.code).limit(limit)
        elif is_standard_shape(text):
            statement = _with_units(text, limit)
        else:
            pattern = f"%{_escape(text)}%"
            statement = (
                select(Agency)
                .where(
                    or_(
                        Agency.code.like(pattern, escape="\\"),
                        Agency.name.ilike(pattern, escape="\\"),
                    )
                )
                .limit(limit)
            )
        async with self.transaction(read_only=True) as session:
            rows = sorted((await session.scalars(statement)).all(), key=_exact_first(text))
            total = int(await session.scalar(select(func.count()).select_from(Agency)) or 0)
        return [_record(r) for r in rows], total

    async def agency_with_units(self, code: str, limit: int) -> list[AgencyRecord]:
        """The agency `code` first (none: an empty list), then its units."""
        async with self.transaction(read_only=True) as session:
            rows = sorted(
                (await session.scalars(_with_units(code, limit))).all(), key=_exact_first(code)
            )
        return [_record(r) for r in rows] if rows and rows[0].code == code else []


def _with_units(code: str, limit: int) -> Select[Agency]:
    return (
        select(Agency)
        .where(or_(Agency.code == code, Agency.parent_code == code))
        .order_by(case((Agency.code == code, 0), else_=1), Agency.code)
        .limit(limit)
    )


def _record(r: Agency) -> AgencyRecord:
    return AgencyRecord(
        code=AgencyCode(r.code),
        name=r.name,
        parent_code=r.parent_code,
        mail=r.mail,
        status=r.status,
        successor_code=r.successor_code,
        old_code=r.old_code,
        id=r.id,
    )


def _exact_first(text: str) -> Callable[[Agency], tuple[bool, str]]:
    return lambda row: (row.code != text, row.code)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _aware(at: datetime | None) -> datetime | None:
    """Aggregates bypass the column type: SQLite hands `min()` back naive (or as text)."""
    if at is None:
        return None
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
