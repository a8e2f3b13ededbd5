"""Contract: what a recipient may read follows its delivery's state, on every read path of both
APIs (`gateway.delivery_states.RECIPIENT_READS`): after a revocation, an operator's cancel or
an update that removes it, a recipient that never downloaded the package reads nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from adapters.vxp_client import VxpClient
from gateway.delivery_states import RECIPIENT_READS, DeliveryState, Part, may_read
from tests.support.nodes import Node
from tests.support.operators import add_operator
from tests.support.polling import poll_until
from tests.support.samples import business, document, document_id_of

SENDER, A, B = "000.00.01.H53", "000.00.21.H53", "000.00.22.H53"
REVOKE, UPDATE = 1, 2


async def read_paths(
    node: Node, client: VxpClient, message_id: str, delivery_id: str
) -> dict[str, bool]:
    """Every door to the package's content: True where the reader gets it."""
    headers = node.rest_headers(client)
    base = f"/api/v1/packages/{message_id}"
    answers = {
        "metadata": await node.http.get(base, headers=headers),
        "original": await node.http.get(f"{base}/original", headers=headers),
        "attachment": await node.http.get(f"{base}/attachments/1", headers=headers),
        "content": await node.http.get(f"/api/v1/inbox/{delivery_id}/content", headers=headers),
    }
    read = {name: response.status_code == 200 for name, response in answers.items()}
    for name, response in answers.items():
        assert response.status_code in (200, 404), (name, response.status_code, response.text)
    got = await client.get_edoc(delivery_id)
    read["getEdoc"] = got["status"] == "OK"
    assert got["status"] == "OK" or got["ErrorCode"] == "26", got
    raw = await node.http.get(
        "/vxp/downloadEdoc",
        headers=client.signed_headers({"docId": delivery_id}, "application/json"),
    )
    read["downloadEdoc"] = raw.status_code == 200 and raw.content != b""
    return read


async def cancel_by_operator(
    node: Node, sender: VxpClient, message_id: str, original: bytes
) -> None:
    headers = await add_operator(node, "olga", "operator")
    answer = await node.http.post(
        "/api/v1/operator/cancel",
        headers=headers,
        json={"message_id": message_id, "reason": "sent by mistake"},
    )
    assert answer.status_code == 200, answer.text


async def revoke(node: Node, sender: VxpClient, message_id: str, original: bytes) -> None:
    answer = await sender.send_edoc(business(SENDER, [A], document_id_of(original), REVOKE), SENDER)
    assert answer["status"] == "OK", answer


async def remove_by_update(node: Node, sender: VxpClient, message_id: str, original: bytes) -> None:
    answer = await sender.send_edoc(
        business(SENDER, [A], document_id_of(original), UPDATE, receivers=[(A, 0)]), SENDER
    )
    assert answer["status"] == "OK", answer


Act = Callable[[Node, VxpClient, str, bytes], Awaitable[None]]


@pytest.mark.parametrize(
    "act",
    [revoke, cancel_by_operator, remove_by_update],
    ids=["revoked", "cancelled", "removed-by-update"],
)
async def test_a_recipient_reads_nothing_it_never_received(node: Node, act: Act) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", A)
    original = document(SENDER, [A])
    message_id = (await sender.send_edoc(original, SENDER))["DocId"]
    [item] = await poll_until(receiver, 1)
    await act(node, sender, message_id, original)
    assert await read_paths(node, receiver, message_id, item["docId"]) == dict.fromkeys(
        ["metadata", "original", "attachment", "content", "getEdoc", "downloadEdoc"], False
    )
    # The sender still reads its own package, and sees what happened to the delivery.
    sender_view = await node.http.get(
        f"/api/v1/packages/{message_id}", headers=node.rest_headers(sender)
    )
    assert [d["state"] for d in sender_view.json()["deliveries"]] == ["cancelled"]
    original_bytes = await node.http.get(
        f"/api/v1/packages/{message_id}/original", headers=node.rest_headers(sender)
    )
    assert original_bytes.content == original


async def test_a_recipient_reads_everything_it_received(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", A)
    message_id = (await sender.send_edoc(document(SENDER, [A]), SENDER))["DocId"]
    [item] = await poll_until(receiver, 1)
    assert set((await read_paths(node, receiver, message_id, item["docId"])).values()) == {True}
    assert (await receiver.update_status(item["docId"], "done"))["status"] == "OK"
    assert set((await read_paths(node, receiver, message_id, item["docId"])).values()) == {True}


async def test_another_system_reads_nothing(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", A)
    stranger = await node.add_system("sys.stranger", B)
    message_id = (await sender.send_edoc(document(SENDER, [A]), SENDER))["DocId"]
    [item] = await poll_until(receiver, 1)
    assert set((await read_paths(node, stranger, message_id, item["docId"])).values()) == {False}


def test_the_read_table_covers_every_state() -> None:
    assert set(RECIPIENT_READS) == set(DeliveryState)
    assert not may_read(Part.ORIGINAL, is_sender=False, recipient_states=["cancelled"])
    assert may_read(Part.ORIGINAL, is_sender=False, recipient_states=["cancelled", "done"])
    assert may_read(Part.ORIGINAL, is_sender=True, recipient_states=[])
