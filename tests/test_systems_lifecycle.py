"""A system after `add` (SPEC §4.3 "Systems"): disable, enable, rotate its secret with or
without a grace period, remove it — through `lienthong systems …` and the operator API
(`/api/v1/operator/systems`), each change recorded in the operator audit trail; and what each
change does on both APIs: a disabled system is refused with its own error (403
`SYSTEM_DISABLED`, `/vxp` 29), its agencies are locked as recipients (23), nothing is pushed
to it; a rotated-out secret works only during its grace; a removed system's history stays."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from click.testing import Result
from sqlalchemy import select

from adapters.db.models import EvidenceEntry
from adapters.vxp_client import VxpClient
from gateway.operators import Operator, Role
from gateway.services import systems as lifecycle
from gateway.services.directory import add_system
from tests.support.cli import run
from tests.support.exchange import send
from tests.support.nodes import Backing, Node, NodeFactory
from tests.support.operators import add_operator
from tests.support.polling import poll_until, settle, until
from tests.support.receiver import Receiver, running
from tests.support.samples import document

API = "/api/v1/operator"
SENDER, RECEIVER = "000.00.01.H53", "000.00.02.H53"
ADMIN = Operator("test-admin", Role.ADMIN)


async def cli(backing: Backing, *args: str) -> Result:
    """`lienthong ARGS` against the test's node database (in a thread: the CLI runs its own
    event loop), while the node under test keeps running."""
    return await asyncio.to_thread(run, backing, *args)


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status, body
    return body


def rest(client: VxpClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.system_id}:{client._secret}"}


async def submit_rest(node: Node, client: VxpClient, package: bytes) -> httpx.Response:
    return await node.http.post(
        "/api/v1/packages",
        content=package,
        headers={**rest(client), "Content-Type": "application/xml"},
    )


# -- disable and enable --------------------------------------------------------------------


async def test_a_disabled_system_is_refused_with_its_own_error_then_enabled_again(
    node: Node,
) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    waiting = await send(sender, SENDER, [RECEIVER])  # in its inbox before it is disabled
    await settle(node.runtime.store, waiting)

    disabled = await cli(node.backing, "systems", "disable", "sys.receiver", "--reason", "audit")
    assert disabled.exit_code == 0 and disabled.output.strip() == "sys.receiver disabled"
    again = await cli(node.backing, "systems", "disable", "sys.receiver")
    assert again.output.strip() == "sys.receiver disabled (it already was)"
    listed = (await cli(node.backing, "systems", "list")).output
    assert "sys.receiver\tpoll\t000.00.02.H53\tdisabled" in listed.splitlines()

    # Its own calls: 403 SYSTEM_DISABLED on REST, 29 on /vxp; a wrong secret still reads
    # like any stranger's (nothing is told before the credentials check out).
    body = problem(
        await node.http.get("/api/v1/inbox", headers=rest(receiver)), 403, "SYSTEM_DISABLED"
    )
    assert "sys.receiver" in body["detail"]
    wrong = {"Authorization": "Bearer sys.receiver:not-the-secret"}
    problem(await node.http.get("/api/v1/inbox", headers=wrong), 401, "AUTH_FAILED")
    listed_vxp = await receiver.get_received()
    assert (listed_vxp["status"], listed_vxp["ErrorCode"], listed_vxp["data"]) == ("FAIL", "29", [])

    # As a recipient: locked (23 / RECIPIENT_LOCKED), not handed to anyone else.
    refused = await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER)
    assert (refused["ErrorCode"], refused["DocId"]) == ("23", "")
    locked = problem(
        await submit_rest(node, sender, document(SENDER, [RECEIVER])), 422, "RECIPIENT_LOCKED"
    )
    assert [e["code"] for e in locked["errors"]] == ["RECIPIENT_LOCKED"]
    assert locked["errors"][0]["path"] == "MessageHeader/To[1]/OrganId"

    enabled = await cli(node.backing, "systems", "enable", "sys.receiver")
    assert enabled.output.strip() == "sys.receiver enabled"
    assert (await node.http.get("/api/v1/inbox", headers=rest(receiver))).status_code == 200
    sent = await send(sender, SENDER, [RECEIVER])
    items = await poll_until(receiver, 2)  # what waited in its inbox, and the new one
    assert {i["docId"] for i in items} == {
        (await settle(node.runtime.store, m))[RECEIVER] for m in (waiting, sent)
    }

    actions = (await cli(node.backing, "operators", "actions")).output
    assert actions.count("system.disable") == 2 and "system.enable" in actions
    assert "audit" in actions and "\tcli:" in actions


async def test_nothing_is_pushed_to_a_disabled_system(make_node: NodeFactory) -> None:
    """Deliveries accepted before it was disabled are retried within the push budget
    without a POST, and pushed once it is enabled."""
    node = await make_node(
        push_retry_tiers_seconds=(0.2, 0.4), push_max_attempts=50, push_timeout_seconds=5.0
    )
    sender = await node.add_system("sys.sender", SENDER)
    async with running(Receiver(always_fail=True)) as endpoint:
        await add_system(node.runtime.store, "sys.push", [RECEIVER], push_url=endpoint.url)
        message = await send(sender, SENDER, [RECEIVER])

        async def attempted() -> bool:
            return endpoint.attempts >= 1

        await until(attempted)
        await lifecycle.disable_system(node.runtime.store, "sys.push", ADMIN, "endpoint moves")
        endpoint.always_fail = False
        attempts = endpoint.attempts
        detail = await node.runtime.store.message_detail(message)

        async def held() -> bool:
            timeline = (await node.runtime.store.message_detail(message)).deliveries[0].timeline
            return any("disabled: not pushed" in (t.reason or "") for t in timeline)

        await until(held)
        assert endpoint.attempts <= attempts + 1  # at most one POST was already on its way
        await lifecycle.enable_system(node.runtime.store, "sys.push", ADMIN)

        async def pushed() -> bool:
            detail = await node.runtime.store.message_detail(message)
            return detail.deliveries[0].state == "done"

        await until(pushed)
        await until(node.quiet)
    assert len(endpoint.accepted) == 1 and detail.deliveries[0].to_code == RECEIVER


# -- rotation --------------------------------------------------------------------------------


async def test_rotation_without_grace_refuses_the_old_secret_at_once(node: Node) -> None:
    old = await node.add_system("sys.a", SENDER)
    rotated = await cli(node.backing, "systems", "rotate-secret", "sys.a", "--reason", "leaked")
    assert rotated.exit_code == 0, rotated.output
    secret = rotated.stdout.strip()
    assert len(secret) >= 32 and "no longer works" in rotated.stderr
    new = VxpClient(node.http, "sys.a", secret)
    assert (await old.get_received())["ErrorCode"] == "15"
    problem(await node.http.get("/api/v1/inbox", headers=rest(old)), 401, "AUTH_FAILED")
    assert (await new.get_received())["status"] == "OK"
    assert (await node.http.get("/api/v1/inbox", headers=rest(new))).status_code == 200
    actions = (await cli(node.backing, "operators", "actions")).output
    assert "system.rotate-secret" in actions and secret not in actions
    bad = await cli(node.backing, "systems", "rotate-secret", "sys.a", "--grace", "31d")
    assert bad.exit_code == 1 and "30 days" in bad.output
    missing = await cli(node.backing, "systems", "rotate-secret", "sys.nobody")
    assert missing.exit_code == 1 and "no system sys.nobody" in missing.output


async def test_during_the_grace_both_secrets_work_and_after_it_only_the_new(node: Node) -> None:
    old = await node.add_system("sys.a", SENDER)
    rotated = await cli(node.backing, "systems", "rotate-secret", "sys.a", "--grace", "2h")
    assert rotated.exit_code == 0, rotated.output
    new = VxpClient(node.http, "sys.a", rotated.stdout.strip())
    assert "works until" in rotated.stderr
    for client in (old, new):
        assert (await client.get_received())["status"] == "OK"
        assert (await node.http.get("/api/v1/inbox", headers=rest(client))).status_code == 200
    listed = (await cli(node.backing, "systems", "list")).output
    assert "\tenabled\tprevious secret valid until " in listed

    # A rotation during the grace keeps only the secret it replaces: the first one goes.
    rotation = await lifecycle.rotate_secret(node.runtime.store, "sys.a", ADMIN, 1.0)
    newest = VxpClient(node.http, "sys.a", rotation.secret)
    assert rotation.previous_valid_until is not None
    assert (await old.get_received())["ErrorCode"] == "15"
    assert (await new.get_received())["status"] == "OK"
    assert (await newest.get_received())["status"] == "OK"
    await asyncio.sleep(
        max(0.0, (rotation.previous_valid_until - datetime.now(UTC)).total_seconds()) + 0.1
    )
    assert (await new.get_received())["ErrorCode"] == "15"  # its grace is over
    problem(await node.http.get("/api/v1/inbox", headers=rest(new)), 401, "AUTH_FAILED")
    assert (await newest.get_received())["status"] == "OK"


# -- removal ---------------------------------------------------------------------------------


async def test_remove_is_refused_while_deliveries_are_unfinished_unless_forced(
    node: Node,
) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    message = await send(sender, SENDER, [RECEIVER])
    delivery = (await settle(node.runtime.store, message))[RECEIVER]

    refused = await cli(node.backing, "systems", "remove", "sys.receiver")
    assert refused.exit_code == 1
    assert "1 unfinished delivery" in refused.output and "force" in refused.output
    assert (await receiver.get_received())["status"] == "OK"  # nothing changed

    removed = await cli(
        node.backing, "systems", "remove", "sys.receiver", "--force", "--reason", "retired"
    )
    assert removed.exit_code == 0, removed.output
    assert removed.output.strip() == "sys.receiver removed; 1 unfinished delivery cancelled"

    # Gone: a stranger to both APIs; nobody serves its agency any more.
    assert (await receiver.get_received())["ErrorCode"] == "15"
    unserved = await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER)
    assert unserved["ErrorCode"] == "18"
    # Its history stays: the delivery under its id, cancelled with the removal as reason.
    detail = await node.runtime.store.message_detail(message)
    (row,) = detail.deliveries
    assert (row.delivery_id, row.system_id, row.state) == (delivery, "sys.receiver", "cancelled")
    assert row.timeline[-1].reason == "system sys.receiver removed: retired"
    assert row.timeline[-1].actor.startswith("operator:cli:")
    sent = await sender.get_sent(message)
    assert [e["receiverDocId"] for e in sent["data"]] == [delivery]
    await node.runtime.store.flush_evidence()
    async with node.runtime.store.transaction(read_only=True) as session:
        cancelled = (
            await session.scalars(
                select(EvidenceEntry.delivery_id).where(EvidenceEntry.event == "cancelled")
            )
        ).all()
    assert list(cancelled) == [delivery]

    # The id may be registered again; a system with only finished deliveries goes unforced.
    readded = await cli(node.backing, "systems", "add", "sys.receiver", "--serves", RECEIVER)
    assert readded.exit_code == 0, readded.output
    again = VxpClient(node.http, "sys.receiver", readded.output.strip())
    second = await send(sender, SENDER, [RECEIVER])
    (item,) = await poll_until(again, 1)
    got = await again.get_edoc(item["docId"])
    assert base64.b64decode(got["data"]).startswith(b"<?xml")
    assert (await again.update_status(item["docId"], "done"))["status"] == "OK"
    await settle(node.runtime.store, second, "done")
    assert (await cli(node.backing, "systems", "remove", "sys.receiver")).exit_code == 0
    actions = (await cli(node.backing, "operators", "actions")).output
    assert actions.count("system.remove") == 2 and "system.add" in actions


# -- the operator API ------------------------------------------------------------------------


async def test_the_operator_api_manages_systems_for_admins_only(node: Node) -> None:
    admin = await add_operator(node, "ada", "admin")
    operator = await add_operator(node, "olga", "operator")
    auditor = await add_operator(node, "audrey", "auditor")
    sender = await node.add_system("sys.sender", SENDER)

    added = await node.http.post(
        f"{API}/systems",
        json={"system_id": "sys.new", "serves": [RECEIVER], "reason": "new department"},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    new = VxpClient(node.http, "sys.new", added.json()["secret"])
    assert (await new.get_received())["status"] == "OK"

    for who in (auditor, operator, admin):
        listed = await node.http.get(f"{API}/systems", headers=who)
        assert listed.status_code == 200
        assert {s["system_id"]: s["enabled"] for s in listed.json()} == {
            "sys.new": True,
            "sys.sender": True,
        }
        assert added.json()["secret"] not in listed.text
    for who in (auditor, operator):  # credentials are the admin's (SPEC §4.3 roles)
        for path in ("disable", "enable", "rotate-secret", "remove"):
            response = await node.http.post(f"{API}/systems/sys.new/{path}", json={}, headers=who)
            problem(response, 403, "PERMISSION_DENIED")
        problem(
            await node.http.post(
                f"{API}/systems", json={"system_id": "x", "serves": [SENDER]}, headers=who
            ),
            403,
            "PERMISSION_DENIED",
        )

    off = await node.http.post(
        f"{API}/systems/sys.new/disable", json={"reason": "moving servers"}, headers=admin
    )
    assert off.status_code == 200, off.text
    assert off.json()["changed"] is True and off.json()["system"]["enabled"] is False
    assert (await new.get_received())["ErrorCode"] == "29"
    off_again = await node.http.post(f"{API}/systems/sys.new/disable", json={}, headers=admin)
    assert off_again.json()["changed"] is False
    on = await node.http.post(f"{API}/systems/sys.new/enable", json={}, headers=admin)
    assert on.json() == {"system": on.json()["system"], "changed": True}

    rotated = await node.http.post(
        f"{API}/systems/sys.new/rotate-secret", json={"grace_seconds": 3600}, headers=admin
    )
    assert rotated.status_code == 200, rotated.text
    until_ = datetime.fromisoformat(rotated.json()["previous_secret_valid_until"])
    assert timedelta(minutes=59) < until_ - datetime.now(UTC) <= timedelta(hours=1)
    rotated_client = VxpClient(node.http, "sys.new", rotated.json()["secret"])
    assert (await new.get_received())["status"] == "OK"  # in its grace
    assert (await rotated_client.get_received())["status"] == "OK"
    shown = (await node.http.get(f"{API}/systems", headers=auditor)).json()
    assert next(s for s in shown if s["system_id"] == "sys.new")["previous_secret_valid_until"]
    problem(
        await node.http.post(
            f"{API}/systems/sys.new/rotate-secret", json={"grace_seconds": -1}, headers=admin
        ),
        400,
        "INVALID_REQUEST",
    )

    message = await send(sender, SENDER, [RECEIVER])
    await settle(node.runtime.store, message)
    busy = problem(
        await node.http.post(f"{API}/systems/sys.new/remove", json={}, headers=admin),
        400,
        "INVALID_REQUEST",
    )
    assert busy["unfinished"] == 1
    removed = await node.http.post(
        f"{API}/systems/sys.new/remove", json={"force": True, "reason": "merged"}, headers=admin
    )
    assert removed.status_code == 200, removed.text
    assert len(removed.json()["cancelled"]) == 1
    for path in ("disable", "enable", "rotate-secret", "remove"):
        problem(
            await node.http.post(f"{API}/systems/sys.new/{path}", json={}, headers=admin),
            404,
            "NOT_FOUND",
        )

    trail = (await node.http.get(f"{API}/actions", headers=auditor)).json()["items"]
    mine = [
        (a["operator"], a["action"], a["target"], a["reason"])
        for a in trail
        if a["action"].startswith("system.")
    ]
    assert mine == [
        ("ada", "system.add", "system sys.new", "new department"),
        ("ada", "system.disable", "system sys.new", "moving servers"),
        ("ada", "system.disable", "system sys.new", None),
        ("ada", "system.enable", "system sys.new", None),
        ("ada", "system.rotate-secret", "system sys.new", None),
        ("ada", "system.remove", "system sys.new", "merged"),
    ]
    secrets = (added.json()["secret"], rotated.json()["secret"])
    text = str(trail)
    assert not any(secret in text for secret in secrets)
    assert trail[-1]["details"]["cancelled_count"] == 1
