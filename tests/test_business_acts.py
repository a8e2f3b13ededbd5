"""Contract: revoke, update and replace packages act on the document they name (SPEC §2.1)."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.vxp_client import VxpClient
from tests.support.nodes import Node
from tests.support.polling import poll_until
from tests.support.samples import business, document, document_id_of

SENDER = "000.00.01.H53"
A, B, C = "000.00.21.H53", "000.00.22.H53", "000.00.23.H53"
REVOKE, UPDATE, REPLACE = 1, 2, 3


async def setup(node: Node) -> tuple[VxpClient, VxpClient]:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", A, B, C)
    return sender, receiver


async def send(client: VxpClient, package: bytes) -> str:
    answer = await client.send_edoc(package, SENDER)
    assert answer["status"] == "OK", answer
    return str(answer["DocId"])


async def package_view(node: Node, client: VxpClient, message_id: str) -> dict[str, Any]:
    response = await node.http.get(
        f"/api/v1/packages/{message_id}", headers=node.rest_headers(client)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def states(node: Node, client: VxpClient, message_id: str) -> dict[str, str]:
    view = await package_view(node, client, message_id)
    return {d["to"]: d["state"] for d in view["deliveries"]}


async def test_revocation_cancels_pending_and_reaches_those_who_have_it(node: Node) -> None:
    sender, receiver = await setup(node)
    original = document(SENDER, [A, B, C])
    original_id = await send(sender, original)
    items = {item["to"]: item for item in await poll_until(receiver, 3)}
    for code in (A, B):  # A and B download, A also acknowledges; C never downloads
        assert (await receiver.get_edoc(items[code]["docId"]))["status"] == "OK"
    assert (await receiver.update_status(items[A]["docId"], "done"))["status"] == "OK"

    revocation = business(SENDER, [A, B, C], document_id_of(original), REVOKE)
    revocation_id = await send(sender, revocation)  # same DocumentId: not a duplicate
    assert await states(node, sender, original_id) == {A: "done", B: "downloaded", C: "cancelled"}
    notices = await poll_until(receiver, 2)
    assert sorted(n["to"] for n in notices) == [A, B]
    assert {n["docId"] for n in notices}.isdisjoint(i["docId"] for i in items.values())
    gone = await receiver.get_edoc(items[C]["docId"])
    assert (gone["status"], gone["ErrorCode"]) == ("FAIL", "26")
    view = await package_view(node, sender, revocation_id)
    assert view["business_type"] == REVOKE
    assert view["links"] == [
        {
            "relation": "revokes",
            "target_document_id": document_id_of(original),
            "target_package_id": original_id,
        }
    ]
    timeline = (
        await node.http.get(
            f"/api/v1/packages/{original_id}/timeline", headers=node.rest_headers(sender)
        )
    ).json()
    cancelled = next(d for d in timeline if d["to"] == C)["timeline"][-1]
    assert cancelled["to_state"] == "cancelled" and revocation_id in cancelled["reason"]


async def test_the_same_revocation_sent_twice_is_a_duplicate(node: Node) -> None:
    sender, receiver = await setup(node)
    original = document(SENDER, [A])
    await send(sender, original)
    revocation = business(SENDER, [A], document_id_of(original), REVOKE)
    first = await send(sender, revocation)
    again = await sender.send_edoc(revocation, SENDER)
    assert (again["status"], again["ErrorCode"], again["DocId"]) == ("FAIL", "24", first)


async def test_update_moves_recipients(node: Node) -> None:
    sender, receiver = await setup(node)
    original = document(SENDER, [A, B])
    original_id = await send(sender, original)
    await poll_until(receiver, 2)  # handed out, not downloaded
    update = business(SENDER, [A], document_id_of(original), UPDATE, receivers=[(B, 0), (C, 1)])
    update_id = await send(sender, update)
    assert await states(node, sender, original_id) == {A: "available", B: "cancelled"}
    assert sorted(await states(node, sender, update_id)) == [A, B, C]  # B gets the notice
    for _ in range(100):
        if set((await states(node, sender, update_id)).values()) == {"available"}:
            break
        await asyncio.sleep(0.05)
    assert set((await states(node, sender, update_id)).values()) == {"available"}


async def test_replacement_is_delivered_and_linked(node: Node) -> None:
    sender, receiver = await setup(node)
    original = document(SENDER, [A])
    original_id = await send(sender, original)
    replacement = business(
        SENDER, [A, B], document_id_of(original), REPLACE, replaced=[document_id_of(original)]
    )
    replacement_id = await send(sender, replacement)
    assert sorted(await states(node, sender, replacement_id)) == [A, B]
    assert (await states(node, sender, original_id))[A] != "cancelled"  # replaced, not revoked
    view = await package_view(node, sender, replacement_id)
    assert view["links"] == [
        {
            "relation": "replaces",
            "target_document_id": document_id_of(original),
            "target_package_id": original_id,
        }
    ]


async def test_revocation_of_a_document_unknown_here_goes_to_its_recipients(node: Node) -> None:
    sender, receiver = await setup(node)
    revocation = business(SENDER, [A, B], f"{SENDER},2020/01/01,1/ELSEWHERE", REVOKE)
    revocation_id = await send(sender, revocation)
    assert sorted(await states(node, sender, revocation_id)) == [A, B]
    view = await package_view(node, sender, revocation_id)
    assert view["links"][0]["target_package_id"] is None
