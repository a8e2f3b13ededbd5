"""Push delivery: POSTed, signed, retried through the broker's delay queues, dead when the
budget is spent, replayed by an operator, and never delaying other recipients."""

from __future__ import annotations

import hashlib
from typing import Any

from adapters.push_client import push_signature
from gateway.operators import Operator, Role, Selection
from gateway.services.audit import verify_log
from gateway.services.directory import add_system
from tests.support.nodes import Node, NodeFactory
from tests.support.polling import until
from tests.support.receiver import Receiver, running
from tests.support.samples import document

SENDER, PUSHED, OTHER = "000.00.01.H53", "000.00.31.H53", "000.00.32.H53"
FAST_RETRIES: dict[str, Any] = {
    "push_retry_tiers_seconds": (0.2, 0.4, 0.8),
    "push_max_attempts": 10,
    "push_timeout_seconds": 5.0,
}


async def states(node: Node, sender: Any, message_id: str) -> dict[str, tuple[str, int]]:
    view = (
        await node.http.get(
            f"/api/v1/packages/{message_id}?timeline=true", headers=node.rest_headers(sender)
        )
    ).json()
    return {d["to"]: (d["state"], d["fail_count"]) for d in view["deliveries"]}


async def test_a_failing_endpoint_is_retried_then_gets_the_package_once(
    make_node: NodeFactory,
) -> None:
    node = await make_node(**FAST_RETRIES)
    sender = await node.add_system("sys.sender", SENDER)
    async with running(Receiver(failures_left=5)) as receiver:
        secret = await add_system(node.runtime.store, "sys.push", [PUSHED], push_url=receiver.url)
        package = document(SENDER, [PUSHED])
        message_id = (await sender.send_edoc(package, SENDER))["DocId"]

        async def delivered() -> bool:
            return (await states(node, sender, message_id))[PUSHED][0] == "done"

        await until(delivered)
        await until(node.quiet)  # nothing more arrives afterwards
    assert receiver.attempts == 6 and len(receiver.accepted) == 1
    [got] = receiver.accepted
    headers = got.headers
    body_hash = hashlib.sha256(got.body).hexdigest()
    assert headers["x-lienthong-content-sha256"] == body_hash
    assert headers["x-lienthong-signature"] == push_signature(
        secret, headers["x-lienthong-timestamp"], headers["x-lienthong-delivery-id"], body_hash
    )
    assert headers["x-lienthong-message-id"] == message_id
    assert b"<TraceHeader xmlns=" in got.body  # the delivered copy, like a poller gets
    timeline = (
        await node.http.get(
            f"/api/v1/packages/{message_id}/timeline", headers=node.rest_headers(sender)
        )
    ).json()[0]["timeline"]
    assert [e["to_state"] for e in timeline].count("retrying") == 5
    assert timeline[-1]["to_state"] == "done"
    assert (await verify_log(node.runtime.store)).ok


async def test_a_dead_endpoint_ends_dead_and_an_operator_replay_delivers_once(
    make_node: NodeFactory,
) -> None:
    node = await make_node(**{**FAST_RETRIES, "push_max_attempts": 3})
    sender = await node.add_system("sys.sender", SENDER)
    async with running(Receiver(always_fail=True)) as receiver:
        await add_system(node.runtime.store, "sys.push", [PUSHED], push_url=receiver.url)
        message_id = (await sender.send_edoc(document(SENDER, [PUSHED]), SENDER))["DocId"]

        async def dead() -> bool:
            return (await states(node, sender, message_id))[PUSHED][0] == "dead"

        await until(dead)
        assert receiver.attempts == 3 and receiver.accepted == []
        stuck = await node.runtime.store.stuck(node.runtime.settings.stuck_thresholds)
        assert [state for state, _ in stuck] == ["dead"]
        receiver.always_fail = False  # the system's operator fixed its endpoint
        operator = Operator("olga", Role.OPERATOR)
        outcome = await node.runtime.store.replay(
            Selection(message_id=message_id), "endpoint repaired", operator, False
        )
        assert len(outcome.done) == 1 and not outcome.skipped

        async def done() -> bool:
            return (await states(node, sender, message_id))[PUSHED][0] == "done"

        await until(done)
        await until(node.quiet)
    assert len(receiver.accepted) == 1  # replayed once, delivered once
    report = await verify_log(node.runtime.store)  # accepted, replayed, delivered
    assert report.ok and report.checked == 3, report


async def test_a_slow_endpoint_does_not_delay_other_recipients(make_node: NodeFactory) -> None:
    # One shard and two consumer slots: without per-system limits the slow system's
    # deliveries would hold every slot.
    node = await make_node(
        **{
            **FAST_RETRIES,
            "push_concurrency_per_system": 1,
            "broker_shards": 1,
            "broker_prefetch": 2,
        }
    )
    sender = await node.add_system("sys.sender", SENDER)
    async with running(Receiver(delay=4.0)) as slow, running(Receiver()) as fast:
        await add_system(node.runtime.store, "sys.slow", [PUSHED], push_url=slow.url)
        await add_system(node.runtime.store, "sys.fast", [OTHER], push_url=fast.url)
        for _ in range(3):  # the slow system's only slot is taken, two more wait for it
            await sender.send_edoc(document(SENDER, [PUSHED]), SENDER)

        async def slow_is_busy() -> bool:
            return slow.attempts >= 1

        await until(slow_is_busy)
        await sender.send_edoc(document(SENDER, [OTHER]), SENDER)

        async def fast_got_it() -> bool:
            return len(fast.accepted) == 1

        await until(fast_got_it)
        # Ordering, not timing: the fast system had its package before the slow endpoint
        # had answered a single request.
        assert slow.accepted == []
