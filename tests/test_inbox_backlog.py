"""Polling a backlog bigger than a page, on each backend: the lean inbox statements (and the
partial index `ix_deliveries_inbox_pending` they are written for) hand out the oldest pending
items first, each once per lease, with every field an item carries, and skip what is not
pending or belongs to another system."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import update

from adapters.db.models import Delivery
from adapters.db.store import SqlStore
from gateway.edxml.parser import parse_package
from gateway.records import NewMessage, RecipientPlan
from gateway.runtime import build_store
from gateway.types import AgencyCode, MessageKind, RouteKind, RoutingKey, SystemId
from tests.support.nodes import Backing
from tests.support.samples import document

SENDER = "000.00.01.H53"
MINE, OTHER = "sys.backlog", "sys.other"
MESSAGES, RECIPIENTS = 3, 250  # 750 deliveries, more than a page of 500


@pytest.fixture
async def store(backing: Backing) -> AsyncIterator[SqlStore]:
    store = build_store(backing.settings())
    try:
        yield store
    finally:
        await store.close()


async def backlog(store: SqlStore) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Deliveries, oldest first, all `available`: every fifth one to another system, every
    seventh `done`. The pending ones of MINE in order, and each delivery's (message, code)."""
    package = parse_package(document(SENDER, ["000.00.02.H53"]))
    order: list[tuple[str, str]] = []
    facts: dict[str, tuple[str, str]] = {}
    for m in range(MESSAGES):
        plans = []
        for r in range(RECIPIENTS):
            code = f"{r:03d}.{m:02d}.00.H60"
            system = OTHER if r % 5 == 4 else MINE
            plans.append(
                RecipientPlan(
                    AgencyCode(code),
                    AgencyCode(code),
                    RouteKind.INBOX,
                    SystemId(system),
                    RoutingKey("inbox.H60.00.00.000.s0"),
                )
            )
        accepted = await store.accept(
            NewMessage(
                kind=MessageKind.EDOC,
                sender_system_id=SystemId("sys.sender"),
                package=package,
                payload_sha256=f"{m:064d}",
                payload_size=100 + m,
                recipients=tuple(plans),
                dedup_key=None,
                idempotency_key=None,
            ),
            actor="test",
        )
        for plan, delivery in zip(plans, accepted.deliveries, strict=True):
            order.append((delivery.delivery_id, plan.system_id))
            facts[delivery.delivery_id] = (accepted.message_id, plan.recipient_code)
    done = {d for i, (d, _) in enumerate(order) if i % 7 == 6}
    async with store.transaction() as session:
        await session.execute(update(Delivery).values(state="available"))
        await session.execute(
            update(Delivery).where(Delivery.public_id.in_(done)).values(state="done")
        )
    pending = [d for d, system in order if system == MINE and d not in done]
    return pending, facts


async def test_a_backlog_is_handed_out_oldest_first_page_by_page(store: SqlStore) -> None:
    pending, facts = await backlog(store)
    assert len(pending) > 500
    assert await store.count_inbox(MINE, MessageKind.EDOC) == len(pending)

    first = await store.lease_inbox(MINE, MessageKind.EDOC, 500, 60)
    second = await store.lease_inbox(MINE, MessageKind.EDOC, 500, 60)
    assert [i.delivery_id for i in first] == pending[:500]
    assert [i.delivery_id for i in second] == pending[500:]
    assert await store.lease_inbox(MINE, MessageKind.EDOC, 500, 60) == []  # all leased
    for item in first + second:
        message_id, code = facts[item.delivery_id]
        m = int(item.payload_sha256)
        assert (item.message_id, item.to_code, item.from_code) == (message_id, code, SENDER)
        assert (item.kind, item.state, item.first_handout) == (MessageKind.EDOC, "available", True)
        assert item.payload_size == 100 + m and item.payload_sha256 == f"{m:064d}"
        assert item.document_id and item.subject
        assert item.created_at <= item.updated_at

    # The read-only list: the same items in the same order, none new (all leased now).
    listed, after = [], 0
    while True:
        page, cursor = await store.list_inbox(MINE, MessageKind.EDOC, after, 100)
        listed += page
        if cursor is None:
            break
        after = cursor
    assert [i.delivery_id for i in listed] == pending
    assert not any(i.first_handout for i in listed)
    assert _fields(listed[0]) == _fields(first[0]) | {"first_handout": False}

    # Downloading and acknowledging one still moves it through the states, with timeline rows.
    oldest = pending[0]
    downloaded = await store.download(MINE, oldest, actor="system:sys.backlog")
    assert downloaded.state == "downloaded" and downloaded.updated_at > first[0].updated_at
    assert _fields(downloaded) | {"state": "available", "updated_at": first[0].updated_at} == (
        _fields(first[0]) | {"first_handout": False}
    )
    state = await store.acknowledge(MINE, oldest, "done", None, "system:sys.backlog", 1.0)
    assert state == "done"
    detail = await store.message_detail(facts[oldest][0])
    [row] = [d for d in detail.deliveries if d.delivery_id == oldest]
    assert [(t.from_state, t.to_state) for t in row.timeline][-2:] == [
        ("available", "downloaded"),
        ("downloaded", "done"),
    ]
    assert await store.count_inbox(MINE, MessageKind.EDOC) == len(pending) - 1


def _fields(item: object) -> dict[str, object]:
    return {name: getattr(item, name) for name in item.__slots__}  # type: ignore[attr-defined]
