"""Stuck detection and the re-offer backoff after `updateStatus fail`."""

from __future__ import annotations

import asyncio

import pytest

from adapters.db.store import MAX_FAIL_BACKOFF_SECONDS, fail_backoff
from tests.support.nodes import NodeFactory
from tests.support.operators import add_operator
from tests.support.polling import poll_until
from tests.support.samples import document

SENDER, RECEIVER = "000.00.01.H53", "000.00.02.H53"


@pytest.mark.parametrize(
    ("fails", "low", "high"),
    [(1, 48, 72), (2, 96, 144), (3, 192, 288), (30, 0.8 * 3600, 1.2 * 3600)],
)
def test_fail_backoff_doubles_with_jitter_and_a_cap(fails: int, low: float, high: float) -> None:
    delays = [fail_backoff(60, fails) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert max(delays) - min(delays) > 0  # jittered
    assert MAX_FAIL_BACKOFF_SECONDS == 3600


async def test_uncollected_items_are_listed_and_counted(make_node: NodeFactory) -> None:
    node = await make_node(stuck_available_seconds=0.3)
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    message_id = (await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER))["DocId"]
    await poll_until(receiver, 1)
    await asyncio.sleep(0.5)
    stuck = await node.runtime.store.stuck(node.runtime.settings.stuck_thresholds)
    assert [(state, view.message_id, view.to_code) for state, view in stuck] == [
        ("available", message_id, RECEIVER)
    ]
    text = (await node.http.get("/metrics")).text
    assert 'lienthong_stuck_deliveries{state="available"} 1' in text
    assert 'lienthong_stuck_deliveries{state="queued"} 0' in text
    auditor = await add_operator(node, "audrey", "auditor")
    listed = (await node.http.get("/api/v1/operator/stuck", headers=auditor)).json()
    assert [(row["state"], row["message_id"]) for row in listed] == [("available", message_id)]
    assert listed[0]["age_seconds"] >= 0.3
    assert (await node.http.get("/api/v1/operator/stuck")).status_code == 401


async def test_fail_count_is_visible_to_the_sender(make_node: NodeFactory) -> None:
    node = await make_node(fail_retry_seconds=0.05)
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    message_id = (await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER))["DocId"]
    for _ in range(2):
        [item] = await poll_until(receiver, 1)
        assert (await receiver.get_edoc(item["docId"]))["status"] == "OK"
        assert (await receiver.update_status(item["docId"], "fail"))["status"] == "OK"
    view = (
        await node.http.get(f"/api/v1/packages/{message_id}", headers=node.rest_headers(sender))
    ).json()
    assert [(d["state"], d["fail_count"]) for d in view["deliveries"]] == [("fail", 2)]
