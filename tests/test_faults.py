"""Fault tests: nothing accepted is lost, nothing reaches an inbox twice."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from adapters.db.models import Delivery, DeliveryEvent
from adapters.vxp_client import VxpClient
from gateway.services.audit import verify_log
from tests.support.nodes import Node
from tests.support.polling import poll_until
from tests.support.samples import document

SENDER, RECEIVER = "000.00.01.H53", "000.00.02.H53"


async def send_many(client: VxpClient, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        answer = await client.send_edoc(document(SENDER, [RECEIVER]), SENDER)
        assert answer["status"] == "OK", answer
        ids.append(answer["DocId"])
    return ids


async def test_broker_stopped_during_a_batch_loses_and_doubles_nothing(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    accepted = await send_many(sender, 10)
    await node.stop_broker()
    try:
        accepted += await send_many(sender, 10)  # the node keeps accepting into the outbox
    finally:
        await node.start_broker()
    accepted += await send_many(sender, 10)
    items = await poll_until(receiver, 30, timeout=90)
    assert len({item["docId"] for item in items}) == 30
    assert all(item["status"] == "new" for item in items)
    async with node.runtime.store.transaction() as session:
        available = (
            await session.execute(
                select(DeliveryEvent.delivery_id, func.count())
                .where(DeliveryEvent.to_state == "available")
                .group_by(DeliveryEvent.delivery_id)
            )
        ).all()
        deliveries = await session.scalar(select(func.count()).select_from(Delivery))
    assert deliveries == 30
    assert len(available) == 30 and {count for _, count in available} == {1}
    sent = (await sender.get_sent())["data"]
    assert sorted({row["senderDocId"] for row in sent}) == sorted(accepted)
    report = await verify_log(node.runtime.store)  # one accepted + one delivered per package
    assert report.ok and report.checked == 2 * 30, report


async def test_packages_accepted_while_the_broker_is_down_wait_in_the_outbox(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    await node.stop_broker()
    try:
        await send_many(sender, 3)
        await asyncio.sleep(1.0)
        assert (await receiver.get_received())["data"] == []
        states = {row["sendStatus"] for row in (await sender.get_sent())["data"]}
        assert states <= {"accepted", "queued"}
    finally:
        await node.start_broker()
    assert len(await poll_until(receiver, 3, timeout=90)) == 3
