"""Replay selects what `messages stuck` calls stuck (`--stuck`, `stuck=true`): the same
deliveries, of which replay re-sends those that never reached the recipient's inbox and skips,
naming why, the uncollected ones (in the inbox for longer than a day: the recipient has to
collect them, a replay would not help)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from click.testing import Result
from sqlalchemy import update

from adapters.db.models import Delivery, utcnow
from tests.support.cli import run
from tests.support.exchange import send
from tests.support.nodes import Backing, Node
from tests.support.operators import add_operator
from tests.support.polling import settle

SENDER = "000.00.01.H53"
DEAD, OLD_QUEUED, FRESH_QUEUED, UNCOLLECTED = (
    "000.00.11.H53",
    "000.00.12.H53",
    "000.00.13.H53",
    "000.00.14.H53",
)


async def cli(backing: Backing, *args: str) -> Result:
    return await asyncio.to_thread(run, backing, *args)


async def put(node: Node, delivery_id: str, state: str, age: timedelta) -> None:
    async with node.runtime.store.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.public_id == delivery_id)
            .values(state=state, state_changed_at=utcnow() - age)
        )


async def test_replay_stuck_selects_what_messages_stuck_lists(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    for n, code in enumerate((DEAD, OLD_QUEUED, FRESH_QUEUED, UNCOLLECTED)):
        await node.add_system(f"sys.r{n}", code)
    message = await send(sender, SENDER, [DEAD, OLD_QUEUED, FRESH_QUEUED, UNCOLLECTED])
    ids = await settle(node.runtime.store, message)
    await put(node, ids[DEAD], "dead", timedelta(minutes=5))
    await put(node, ids[OLD_QUEUED], "queued", timedelta(hours=1))  # > 10 min: stuck
    await put(node, ids[FRESH_QUEUED], "queued", timedelta(seconds=5))  # on its way
    await put(node, ids[UNCOLLECTED], "available", timedelta(days=2))  # > a day: stuck

    stuck = await cli(node.backing, "messages", "stuck")
    assert stuck.exit_code == 0, stuck.output
    listed = {ids[c] for c in (DEAD, OLD_QUEUED, UNCOLLECTED)}
    assert {d for d in ids.values() if d in stuck.output} == listed
    assert "3 stuck" in stuck.output

    found = await cli(node.backing, "messages", "list", "--stuck")
    assert {d for d in ids.values() if d in found.output} == listed

    dry = await cli(node.backing, "messages", "replay", "--stuck", "--reason", "daily check")
    assert dry.exit_code == 0, dry.output
    assert "DRY RUN: would re-send 2 deliveries" in dry.output
    assert f"{ids[DEAD]}\tmessage {message}\tto {DEAD}\tdead" in dry.output
    assert f"{ids[OLD_QUEUED]}\tmessage {message}\tto {OLD_QUEUED}\tqueued" in dry.output
    assert f"{ids[UNCOLLECTED]}\tavailable: already in the recipient's inbox" in dry.output
    assert ids[FRESH_QUEUED] not in dry.output  # not stuck: not selected at all

    # The operator API selects the same.
    auditor = await add_operator(node, "audrey", "auditor")
    operator = await add_operator(node, "olga", "operator")
    page = await node.http.get("/api/v1/operator/messages?stuck=true", headers=auditor)
    assert {row["delivery_id"] for row in page.json()["items"]} == listed
    replay = await node.http.post(
        "/api/v1/operator/replay",
        json={"filter": {"stuck": True}, "reason": "daily check"},
        headers=operator,
    )
    assert replay.status_code == 200, replay.text
    answer = replay.json()
    assert {r["delivery_id"] for r in answer["would_replay"]} == {ids[DEAD], ids[OLD_QUEUED]}
    assert [s["delivery_id"] for s in answer["skipped"]] == [ids[UNCOLLECTED]]
    actions = (await node.http.get("/api/v1/operator/actions", headers=auditor)).json()["items"]
    assert actions[-1]["target"] == "filter stuck=True"
