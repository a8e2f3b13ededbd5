"""The operator API and `lienthong operators|messages` (SPEC §4.3): search, timelines, replay
with a dry run, cancel; operator roles; every action audited."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update

from adapters.broker.rabbitmq import RabbitMQBroker
from adapters.db.models import Delivery, EvidenceEntry, OutboxEntry
from adapters.db.store import SqlStore
from adapters.vxp_client import VxpClient
from gateway.api.app import create_app
from gateway.operators import Role, new_token, token_matches
from gateway.runtime import build_store
from gateway.services.audit import verify_log
from tests.support.cli import run
from tests.support.exchange import send
from tests.support.nodes import Backing, Node
from tests.support.operators import SETUP, add_operator
from tests.support.polling import deliveries, poll_until, settle

T = TypeVar("T")
API = "/api/v1/operator"
SENDER, OTHER_SENDER = "000.00.01.H53", "000.00.03.H53"
R1, R2 = "000.00.02.H53", "000.00.04.H53"


# -- helpers -----------------------------------------------------------------------------


class Agencies:
    """Two senders and two recipients, each its own system."""

    def __init__(self, sender: VxpClient, other: VxpClient, r1: VxpClient, r2: VxpClient) -> None:
        self.sender, self.other, self.r1, self.r2 = sender, other, r1, r2

    @classmethod
    async def register(cls, node: Node) -> Agencies:
        return cls(
            await node.add_system("sys.sender", SENDER),
            await node.add_system("sys.other", OTHER_SENDER),
            await node.add_system("sys.r1", R1),
            await node.add_system("sys.r2", R2),
        )


async def force_state(store: SqlStore, delivery_id: str, state: str) -> None:
    """Test setup: put a delivery in a state as if it had got stuck there."""
    async with store.transaction() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.public_id == delivery_id)
            .values(state=state, available_at=None)
        )


async def outbox_rows(store: SqlStore, delivery_id: str) -> int:
    async with store.transaction(read_only=True) as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .join(Delivery, Delivery.id == OutboxEntry.delivery_id)
                .where(Delivery.public_id == delivery_id)
            )
            or 0
        )


async def evidence(store: SqlStore, event: str) -> list[EvidenceEntry]:
    await store.flush_evidence()  # entries are chained by the sequencer: in order, now
    async with store.transaction(read_only=True) as session:
        return list(
            (
                await session.scalars(
                    select(EvidenceEntry)
                    .where(EvidenceEntry.event == event)
                    .order_by(EvidenceEntry.seq)
                )
            ).all()
        )


async def inbox_count(node: Node, client: VxpClient) -> int:
    response = await node.http.get("/api/v1/inbox", headers=node.rest_headers(client))
    assert response.status_code == 200, response.text
    return len(response.json()["items"])


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


# -- authentication and roles ------------------------------------------------------------


async def test_operators_authenticate_with_their_own_credentials(node: Node) -> None:
    agencies = await Agencies.register(node)
    auditor = await add_operator(node, "audrey", "auditor")
    operator = await add_operator(node, "olga", "operator")
    for headers in (
        {},
        {"Authorization": "Basic x"},
        {"Authorization": "Bearer olga"},
        {"Authorization": "Bearer nobody:" + new_token()},
        {"Authorization": "Bearer olga:" + new_token()},
        node.rest_headers(agencies.sender),
    ):
        assert_problem(await node.http.get(f"{API}/messages", headers=headers), 401, "AUTH_FAILED")
    who = await node.http.get(f"{API}/whoami", headers=auditor)
    assert who.json() == {"name": "audrey", "role": "auditor", "permissions": ["read"]}
    assert (await node.http.get(f"{API}/messages", headers=auditor)).status_code == 200
    body = {"filter": {"state": "dead"}, "reason": "check"}
    assert_problem(
        await node.http.post(f"{API}/replay", json=body, headers=auditor), 403, "PERMISSION_DENIED"
    )
    assert_problem(
        await node.http.post(
            f"{API}/cancel", headers=auditor, json={"message_id": "x", "reason": "r"}
        ),
        403,
        "PERMISSION_DENIED",
    )
    allowed = await node.http.post(f"{API}/replay", json=body, headers=operator)
    assert allowed.status_code == 200 and allowed.json()["dry_run"] is True
    # The token is stored only as a hash; a disabled operator is refused.
    found = await node.runtime.store.get_operator("olga")
    assert found is not None and len(found.token_sha256) == 64
    assert token_matches(operator["Authorization"].split(":", 1)[1], found.token_sha256)
    await node.runtime.store.set_operator_enabled("olga", False, SETUP)
    assert_problem(await node.http.get(f"{API}/messages", headers=operator), 401, "AUTH_FAILED")


# -- search and timelines ----------------------------------------------------------------


async def test_list_filters_and_cursor_pagination(node: Node) -> None:
    store = node.runtime.store
    agencies = await Agencies.register(node)
    headers = await add_operator(node, "audrey", "auditor")
    first = await send(agencies.sender, SENDER, [R1, R2])
    second = await send(agencies.other, OTHER_SENDER, [R1])
    third = await send(agencies.sender, SENDER, [R2], f"{SENDER},2026/11/24,42/UBND")
    ids = {m: await settle(store, m) for m in (first, second, third)}
    await force_state(store, ids[first][R2], "dead")

    async def listed(**params: Any) -> list[dict[str, Any]]:
        response = await node.http.get(f"{API}/messages", params=params, headers=headers)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    everything = await listed()
    assert len(everything) == 4
    assert [r["delivery_id"] for r in everything] == [
        ids[first][R1],
        ids[first][R2],
        ids[second][R1],
        ids[third][R2],
    ]
    dead = await listed(state="dead")
    assert [(r["message_id"], r["to_code"], r["from_code"]) for r in dead] == [(first, R2, SENDER)]
    assert dead[0]["fail_count"] == 0 and dead[0]["state_age_seconds"] >= 0
    assert dead[0]["subject"] and dead[0]["document_id"]
    assert len(await listed(state=["dead", "available"])) == 4
    assert len(await listed(state="dead,available")) == 4
    assert {r["message_id"] for r in await listed(sender=SENDER)} == {first, third}
    assert {r["message_id"] for r in await listed(recipient=R2)} == {first, third}
    assert [r["message_id"] for r in await listed(document_id=f"{SENDER},2026/11/24,42/UBND")] == [
        third
    ]
    assert len(await listed(code="fass")) == 4 and len(await listed(code="VPCP-TT")) == 4
    assert len(await listed(code="74fass22/VPCP")) == 4
    assert await listed(code="no-such-code") == []
    today = datetime.now(UTC)
    assert (
        len(
            await listed(
                since=(today - timedelta(days=1)).date().isoformat(),
                until=(today + timedelta(days=1)).date().isoformat(),
            )
        )
        == 4
    )
    assert await listed(since=(today + timedelta(hours=1)).isoformat()) == []
    assert await listed(until=(today - timedelta(hours=1)).isoformat()) == []
    assert await listed(older_than_seconds=3600) == []
    assert len(await listed(older_than_seconds=0)) == 4
    assert [
        r["delivery_id"] for r in await listed(state="available", recipient=R1, sender=OTHER_SENDER)
    ] == [ids[second][R1]]

    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await node.http.get(f"{API}/messages", params=params, headers=headers)).json()
        pages += [r["delivery_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [r["delivery_id"] for r in everything]

    for bad in (
        {"state": "stuck"},
        {"cursor": "abc"},
        {"limit": 501},
        {"since": "yesterday"},
        {"older_than_seconds": -1},
    ):
        assert_problem(
            await node.http.get(f"{API}/messages", params=bad, headers=headers),
            400,
            "INVALID_REQUEST",
        )


async def test_show_gives_every_recipients_timeline(node: Node) -> None:
    store = node.runtime.store
    agencies = await Agencies.register(node)
    headers = await add_operator(node, "audrey", "auditor")
    message = await send(agencies.sender, SENDER, [R1, R2])
    await settle(store, message)
    shown = await node.http.get(f"{API}/messages/{message}", headers=headers)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["message_id"] == message and body["from_code"] == SENDER
    assert body["code_number"] == "74fass22" and body["sender_system_id"] == "sys.sender"
    assert [d["to_code"] for d in body["deliveries"]] == [R1, R2]
    for delivery in body["deliveries"]:
        states = [(t["from_state"], t["to_state"]) for t in delivery["timeline"]]
        assert states[0] == (None, "accepted") and states[-1][1] == "available"
        assert ("accepted", "queued") in states
        assert delivery["timeline"][0]["actor"] == "system:sys.sender"
    assert_problem(
        await node.http.get(f"{API}/messages/no-such-id", headers=headers), 404, "NOT_FOUND"
    )


# -- replay ------------------------------------------------------------------------------


async def test_replay_of_a_dead_delivery_dry_run_then_execute(node: Node) -> None:
    store = node.runtime.store
    agencies = await Agencies.register(node)
    headers = await add_operator(node, "olga", "operator")
    message = await send(agencies.sender, SENDER, [R1, R2])
    ids = await settle(store, message)
    for delivery in ids.values():
        await force_state(store, delivery, "dead")
    rows_before = {d: await outbox_rows(store, d) for d in ids.values()}

    dry = await node.http.post(
        f"{API}/replay",
        headers=headers,
        json={"filter": {"state": ["dead"], "recipient": R2}, "reason": "R2's system was down"},
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True and "replayed" not in dry.json()
    assert dry.json()["would_replay"] == [
        {"delivery_id": ids[R2], "message_id": message, "to": R2, "state": "dead"}
    ]
    assert dry.json()["skipped"] == []
    assert await deliveries(store, message) == {R1: (ids[R1], "dead"), R2: (ids[R2], "dead")}
    assert {d: await outbox_rows(store, d) for d in ids.values()} == rows_before
    assert await evidence(store, "replayed") == []

    done = await node.http.post(
        f"{API}/replay",
        headers=headers,
        json={
            "filter": {"state": "dead", "sender": SENDER},
            "reason": "systems are back",
            "dry_run": False,
        },
    )
    assert done.status_code == 200, done.text
    assert done.json()["dry_run"] is False and "would_replay" not in done.json()
    assert {(r["delivery_id"], r["message_id"], r["state"]) for r in done.json()["replayed"]} == {
        (ids[R1], message, "queued"),
        (ids[R2], message, "queued"),
    }
    assert await settle(store, message) == ids  # same message id, same delivery ids
    assert {d: await outbox_rows(store, d) for d in ids.values()} == {
        d: n + 1 for d, n in rows_before.items()
    }

    # Each recipient gets the item once, under its original id.
    for client, code in ((agencies.r1, R1), (agencies.r2, R2)):
        [item] = await poll_until(client, 1)
        assert item["docId"] == ids[code]
        assert (await client.get_received())["data"] == []
        assert await inbox_count(node, client) == 1

    detail = await store.message_detail(message)
    for delivery in detail.deliveries:
        replayed = [t for t in delivery.timeline if t.from_state == "dead"]
        assert [(t.to_state, t.actor, t.reason) for t in replayed] == [
            ("queued", "operator:olga", "replay: systems are back")
        ]
    entries = await evidence(store, "replayed")
    assert {(e.message_id, e.delivery_id, e.actor) for e in entries} == {
        (message, ids[R1], "operator:olga"),
        (message, ids[R2], "operator:olga"),
    }
    assert all(e.details["reason"] == "systems are back" for e in entries)
    assert (await verify_log(store)).ok

    actions = (
        await node.http.get(f"{API}/actions", params={"operator": "olga"}, headers=headers)
    ).json()["items"]
    assert [
        (a["operator"], a["role"], a["action"], a["dry_run"], a["reason"]) for a in actions
    ] == [
        ("olga", "operator", "replay", True, "R2's system was down"),
        ("olga", "operator", "replay", False, "systems are back"),
    ]
    assert actions[0]["details"]["would_replay"][0]["delivery_id"] == ids[R2]
    assert len(actions[1]["details"]["replay"]) == 2
    assert all(e.details["action"] == actions[1]["id"] for e in entries)


async def test_replay_of_a_stuck_queued_delivery_by_id(node: Node) -> None:
    store = node.runtime.store
    agencies = await Agencies.register(node)
    headers = await add_operator(node, "adam", "admin")
    message = await send(agencies.sender, SENDER, [R1])
    [delivery] = (await settle(store, message)).values()
    await force_state(store, delivery, "queued")  # published, but never made available
    answer = await node.http.post(
        f"{API}/replay",
        headers=headers,
        json={
            "delivery_ids": [delivery, "no-such-delivery"],
            "reason": "lost by the broker",
            "dry_run": False,
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["replayed"] == [
        {"delivery_id": delivery, "message_id": message, "to": R1, "state": "queued"}
    ]
    assert answer.json()["skipped"] == [
        {"delivery_id": "no-such-delivery", "why": "no such delivery"}
    ]
    await settle(store, message)
    [item] = await poll_until(agencies.r1, 1)
    assert item["docId"] == delivery
    timeline = (await store.message_detail(message)).deliveries[0].timeline
    assert [(t.from_state, t.to_state) for t in timeline][-2:] == [
        ("queued", "queued"),
        ("queued", "available"),
    ]


async def test_replay_skips_what_is_already_in_an_inbox(node: Node) -> None:
    store = node.runtime.store
    agencies = await Agencies.register(node)
    headers = await add_operator(node, "olga", "operator")
    message = await send(agencies.sender, SENDER, [R1, R2])
    ids = await settle(store, message)
    [item] = await poll_until(agencies.r1, 1)
    assert (await agencies.r1.get_edoc(item["docId"]))["status"] == "OK"  # downloaded
    rows_before = {d: await outbox_rows(store, d) for d in ids.values()}

    for dry_run in (True, False):
        answer = await node.http.post(
            f"{API}/replay",
            headers=headers,
            json={
                "message_id": message,
                "reason": "recipient says it never got it",
                "dry_run": dry_run,
            },
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["would_replay" if dry_run else "replayed"] == []
        assert {s["delivery_id"]: s["why"].split(":")[0] for s in body["skipped"]} == {
            ids[R1]: "downloaded",
            ids[R2]: "available",
        }
    assert await deliveries(store, message) == {
        R1: (ids[R1], "downloaded"),
        R2: (ids[R2], "available"),
    }
    assert {d: await outbox_rows(store, d) for d in ids.values()} == rows_before
    await asyncio.sleep(0.3)  # a wrongly queued copy would have arrived by now
    assert await inbox_count(node, agencies.r1) == 1
    assert await inbox_count(node, agencies.r2) == 1
    assert len(await poll_until(agencies.r2, 1)) == 1
    assert await evidence(store, "replayed") == []
    actions = (
        await node.http.get(f"{API}/actions", params={"operator": "olga"}, headers=headers)
    ).json()["items"]
    assert [a["dry_run"] for a in actions] == [True, False]


async def test_replay_refuses_bad_requests(node: Node) -> None:
    headers = await add_operator(node, "olga", "operator")
    for body in (
        {"reason": "no selection"},
        {"message_id": "m", "delivery_ids": ["d"], "reason": "two selections"},
        {"filter": {}, "reason": "empty filter"},
        {"filter": {"state": "stuck"}, "reason": "unknown state"},
        {"filter": {"colour": "red"}, "reason": "unknown criterion"},
        {"message_id": "m"},
        {"message_id": "m", "reason": ""},
        {"message_id": "m", "reason": "   "},
    ):
        assert_problem(
            await node.http.post(f"{API}/replay", json=body, headers=headers),
            400,
            "INVALID_REQUEST",
        )
    assert_problem(
        await node.http.post(
            f"{API}/replay", headers=headers, json={"message_id": "no-such-message", "reason": "r"}
        ),
        404,
        "NOT_FOUND",
    )


# -- cancel ------------------------------------------------------------------------------


async def test_cancel_with_a_reason(node: Node) -> None:
    store = node.runtime.store
    agencies = await Agencies.register(node)
    headers = await add_operator(node, "olga", "operator")
    message = await send(agencies.sender, SENDER, [R1, R2])
    ids = await settle(store, message)
    [item] = await poll_until(agencies.r1, 1)
    assert (await agencies.r1.get_edoc(item["docId"]))["status"] == "OK"
    assert (await agencies.r1.update_status(item["docId"], "done"))["status"] == "OK"

    assert_problem(
        await node.http.post(
            f"{API}/cancel", headers=headers, json={"message_id": message, "reason": " "}
        ),
        400,
        "INVALID_REQUEST",
    )
    preview = await node.http.post(
        f"{API}/cancel",
        headers=headers,
        json={"message_id": message, "reason": "sent to the wrong agency", "dry_run": True},
    )
    assert preview.json()["would_cancel"] == [
        {"delivery_id": ids[R2], "message_id": message, "to": R2, "state": "available"}
    ]
    assert (await deliveries(store, message))[R2] == (ids[R2], "available")

    answer = await node.http.post(
        f"{API}/cancel",
        headers=headers,
        json={"message_id": message, "reason": "sent to the wrong agency"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["cancelled"] == [
        {"delivery_id": ids[R2], "message_id": message, "to": R2, "state": "cancelled"}
    ]
    assert answer.json()["skipped"] == [
        {"delivery_id": ids[R1], "why": "done: cannot be cancelled"}
    ]
    assert await deliveries(store, message) == {R1: (ids[R1], "done"), R2: (ids[R2], "cancelled")}
    assert await inbox_count(node, agencies.r2) == 0
    timeline = (await store.message_detail(message)).deliveries[1].timeline
    assert (timeline[-1].to_state, timeline[-1].actor, timeline[-1].reason) == (
        "cancelled",
        "operator:olga",
        "cancel: sent to the wrong agency",
    )
    [entry] = [e for e in await evidence(store, "cancelled") if e.delivery_id == ids[R2]]
    assert entry.actor == "operator:olga" and entry.details["reason"] == "sent to the wrong agency"

    # Cancelled stays cancelled: replay skips it, a second cancel skips it.
    again = await node.http.post(
        f"{API}/replay",
        headers=headers,
        json={"delivery_ids": [ids[R2]], "reason": "undo?", "dry_run": False},
    )
    assert again.json()["replayed"] == [] and again.json()["skipped"][0]["why"].startswith(
        "cancelled"
    )
    twice = await node.http.post(
        f"{API}/cancel", headers=headers, json={"delivery_ids": [ids[R2]], "reason": "again"}
    )
    assert twice.json()["cancelled"] == [] and len(twice.json()["skipped"]) == 1
    assert (await verify_log(store)).ok
    actions = (
        await node.http.get(f"{API}/actions", params={"operator": "olga"}, headers=headers)
    ).json()["items"]
    assert [(a["action"], a["dry_run"]) for a in actions] == [
        ("cancel", True),
        ("cancel", False),
        ("replay", False),
        ("cancel", False),
    ]


# -- the CLI -----------------------------------------------------------------------------


def on_node(backing: Backing, work: Callable[[Node], Awaitable[T]]) -> T:
    """Run `work` against a node of its own, outside the CLI's runs."""

    async def run_node() -> T:
        app = create_app(backing.settings())
        async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30) as manager:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app),
                base_url="http://gateway.test",
                timeout=30,
            ) as http:
                broker = app.state.runtime.broker
                if isinstance(broker, RabbitMQBroker):
                    await broker.wait_connected(timeout=30)
                return await work(Node(backing, app, http))

    return asyncio.run(run_node())


def on_store(backing: Backing, work: Callable[[SqlStore], Awaitable[T]]) -> T:
    async def run_store() -> T:
        store = build_store(backing.settings())
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run_store())


def test_cli_operators_add_list_disable(backing: Backing) -> None:
    added = run(backing, "operators", "add", "olga", "--role", "operator")
    assert added.exit_code == 0, added.output
    token = added.output.strip()
    assert len(token) >= 32
    found = on_store(backing, lambda store: store.get_operator("olga"))
    assert found is not None and found.record.role is Role.OPERATOR
    assert token_matches(token, found.token_sha256) and token not in found.token_sha256
    listing = run(backing, "operators", "list").output
    assert "olga\toperator\tenabled" in listing and token not in listing
    again = run(backing, "operators", "add", "olga", "--role", "admin")
    assert again.exit_code == 1 and "already exists" in again.output
    assert run(backing, "operators", "add", "a:b", "--role", "admin").exit_code == 1
    assert run(backing, "operators", "add", "bob", "--role", "root").exit_code == 2
    assert run(backing, "operators", "disable", "olga").exit_code == 0
    assert "olga\toperator\tdisabled" in run(backing, "operators", "list").output
    actions = run(backing, "operators", "actions").output
    assert "operator.add" in actions and "operator.disable" in actions
    assert "\tcli:" in actions and token not in actions


def test_cli_messages_list_show_replay_cancel(backing: Backing) -> None:
    secrets: dict[str, VxpClient] = {}

    async def setup(node: Node) -> tuple[str, dict[str, str]]:
        agencies = await Agencies.register(node)
        secrets.update(r1=agencies.r1, r2=agencies.r2)
        message = await send(agencies.sender, SENDER, [R1, R2])
        ids = await settle(node.runtime.store, message)
        await force_state(node.runtime.store, ids[R1], "dead")
        return message, ids

    message, ids = on_node(backing, setup)

    dead = run(backing, "messages", "list", "--state", "dead")
    assert dead.exit_code == 0, dead.output
    lines = dead.output.strip().splitlines()
    assert lines[0].startswith("DELIVERY\tMESSAGE") and len(lines) == 2
    assert lines[1].split("\t")[:5] == [ids[R1], message, SENDER, R1, "dead"]
    assert (
        len(
            run(backing, "messages", "list", "--sender", SENDER, "--code", "fass")
            .output.strip()
            .splitlines()
        )
        == 3
    )
    assert (
        len(run(backing, "messages", "list", "--older-than", "2h").output.strip().splitlines()) == 1
    )
    paged = run(backing, "messages", "list", "--limit", "1")
    assert paged.output.strip().splitlines()[-1].startswith("more: --cursor ")
    assert run(backing, "messages", "list", "--since", "not-a-day").exit_code == 1
    assert run(backing, "messages", "list", "--older-than", "2 fortnights").exit_code == 1

    shown = run(backing, "messages", "show", message)
    assert shown.exit_code == 0, shown.output
    assert f"to {R1}: delivery {ids[R1]}, dead" in shown.output
    assert f"to {R2}: delivery {ids[R2]}, available" in shown.output
    assert shown.output.count("system:sys.sender: accepted for") == 2
    assert run(backing, "messages", "show", "no-such-message").exit_code == 1

    dry = run(backing, "messages", "replay", "--message", message, "--reason", "R1 was down")
    assert dry.exit_code == 0, dry.output
    assert "DRY RUN: would re-send 1 delivery" in dry.output
    assert f"{ids[R1]}\tmessage {message}\tto {R1}\tdead" in dry.output
    assert f"{ids[R2]}\tavailable: already in the recipient's inbox" in dry.output
    assert run(backing, "messages", "list", "--state", "dead").output.count(ids[R1]) == 1
    assert run(backing, "messages", "replay", "--reason", "x").exit_code == 1
    assert (
        run(
            backing,
            "messages",
            "replay",
            "--message",
            message,
            "--reason",
            " ",
        ).exit_code
        == 1
    )

    done = run(
        backing,
        "messages",
        "replay",
        "--state",
        "dead",
        "--recipient",
        R1,
        "--reason",
        "R1 is back",
        "--execute",
    )
    assert done.exit_code == 0, done.output
    assert "re-sent 1 delivery" in done.output and f"{ids[R1]}\tmessage {message}" in done.output

    async def receive(node: Node) -> list[str]:
        await settle(node.runtime.store, message)
        r1 = VxpClient(node.http, "sys.r1", secrets["r1"]._secret)
        items = await poll_until(r1, 1)
        assert (await r1.get_received())["data"] == []
        return [item["docId"] for item in items]

    assert on_node(backing, receive) == [ids[R1]]

    cancelled = run(
        backing, "messages", "cancel", "--delivery", ids[R2], "--reason", "wrong recipient"
    )
    assert cancelled.exit_code == 0, cancelled.output
    assert "cancelled 1 delivery" in cancelled.output
    shown = run(backing, "messages", "show", message).output
    assert "cancelled" in shown and "operator:cli:" in shown and "cancel: wrong recipient" in shown
    assert "replay: R1 is back" in shown

    trail = run(backing, "operators", "actions").output.strip().splitlines()
    assert [("(dry run)" in line, line.split("\t")[4].split(" ")[0]) for line in trail] == [
        (True, "replay"),
        (False, "replay"),
        (False, "cancel"),
    ]
    assert "intact" in run(backing, "audit", "verify").output

    async def chain(store: SqlStore) -> tuple[bool, list[str]]:
        entries = await evidence(store, "replayed") + await evidence(store, "cancelled")
        return (await verify_log(store)).ok, [e.delivery_id or "" for e in entries]

    assert on_store(backing, chain) == (True, [ids[R1], ids[R2]])
