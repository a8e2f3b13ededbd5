"""Contract: the same exchange through `/api/v1` (JSON, problem+json, idempotency, cursors)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.nodes import Node
from tests.support.polling import inbox_until
from tests.support.samples import document

SENDER, RECEIVER, OTHER = "000.00.01.H53", "000.00.02.H53", "000.00.03.H53"


async def systems(node: Node) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", RECEIVER)
    other = await node.add_system("sys.other", OTHER)
    return node.rest_headers(sender), node.rest_headers(receiver), node.rest_headers(other)


async def submit(
    http: httpx.AsyncClient, auth: dict[str, str], package: bytes, key: str | None = None
) -> httpx.Response:
    headers = {**auth, "Content-Type": "application/xml"}
    if key:
        headers["Idempotency-Key"] = key
    return await http.post("/api/v1/packages", content=package, headers=headers)


async def test_submit_download_acknowledge_with_timeline(node: Node) -> None:
    sender, receiver, _ = await systems(node)
    created = await submit(node.http, sender, document(SENDER, [RECEIVER]))
    assert created.status_code == 201, created.text
    package = created.json()
    assert created.headers["Location"] == f"/api/v1/packages/{package['id']}"
    [item] = await inbox_until(node.http, receiver, 1)
    assert item["message_id"] == package["id"] and item["new"] is True
    content = await node.http.get(f"/api/v1/inbox/{item['delivery_id']}/content", headers=receiver)
    assert content.status_code == 200 and b"<TraceHeader xmlns=" in content.content
    ack = await node.http.post(
        f"/api/v1/inbox/{item['delivery_id']}/ack", headers=receiver, json={"status": "done"}
    )
    assert ack.json() == {"delivery_id": item["delivery_id"], "state": "done"}
    timeline = (
        await node.http.get(f"/api/v1/packages/{package['id']}/timeline", headers=sender)
    ).json()
    assert [e["to_state"] for e in timeline[0]["timeline"]] == [
        "accepted",
        "queued",
        "available",
        "downloaded",
        "done",
    ]
    assert (await inbox_until(node.http, receiver, 0)) == []


async def test_idempotency_key_returns_the_original_answer(node: Node) -> None:
    sender, receiver, _ = await systems(node)
    package = document(SENDER, [RECEIVER])
    first = await submit(node.http, sender, package, key="retry-1")
    second = await submit(node.http, sender, package, key="retry-1")
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"] and second.json()["duplicate"] is True
    assert (
        second.json()["recipients"][0]["delivery_id"]
        == first.json()["recipients"][0]["delivery_id"]
    )
    await asyncio.sleep(0.3)
    assert len(await inbox_until(node.http, receiver, 1)) == 1


async def test_same_document_id_without_key_is_a_conflict(node: Node) -> None:
    sender, _, _ = await systems(node)
    package = document(SENDER, [RECEIVER])
    first = await submit(node.http, sender, package)
    conflict = await submit(node.http, sender, package)
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert conflict.json()["code"] == "DUPLICATE_DOCUMENT"
    assert conflict.json()["messageId"] == first.json()["id"]


async def test_invalid_package_lists_every_problem_with_its_path(node: Node) -> None:
    sender, _, _ = await systems(node)
    package = (
        document(SENDER, [RECEIVER, RECEIVER])
        .replace(b"<edXML:Subject>V/v", b"<edXML:Subject></edXML:Subject><edXML:X>", 1)
        .replace(
            b"</edXML:Subject>\r\n        <edXML:Content>", b"</edXML:X>\r\n        <edXML:Content>"
        )
    )
    answer = await submit(node.http, sender, package)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "PACKAGE_INVALID"
    found = {(e["code"], e["path"]) for e in problem["errors"]}
    assert ("EDXML_DUPLICATE_RECIPIENT", "MessageHeader/To[2]/OrganId") in found
    assert ("EDXML_REQUIRED", "MessageHeader/Subject") in found


async def test_unknown_recipient_is_a_problem_naming_it(node: Node) -> None:
    sender, _, _ = await systems(node)
    answer = await submit(node.http, sender, document(SENDER, ["000.00.77.H77"]))
    assert answer.status_code == 422
    assert answer.json()["code"] == "RECIPIENT_UNKNOWN"
    assert answer.json()["errors"][0]["path"] == "MessageHeader/To[1]/OrganId"


async def test_authentication_and_isolation(node: Node) -> None:
    sender, receiver, other = await systems(node)
    assert (await node.http.get("/api/v1/inbox")).status_code == 401
    wrong = {"Authorization": "Bearer sys.receiver:not-the-secret"}
    assert (await node.http.get("/api/v1/inbox", headers=wrong)).status_code == 401
    created = (await submit(node.http, sender, document(SENDER, [RECEIVER]))).json()
    [item] = await inbox_until(node.http, receiver, 1)
    delivery = item["delivery_id"]
    for url in (
        f"/api/v1/inbox/{delivery}/content",
        f"/api/v1/packages/{created['id']}",
        f"/api/v1/packages/{created['id']}/original",
    ):
        answer = await node.http.get(url, headers=other)
        assert answer.status_code == 404, url
    steal = await node.http.post(
        f"/api/v1/inbox/{delivery}/ack", headers=other, json={"status": "done"}
    )
    assert steal.status_code == 404
    original = await node.http.get(f"/api/v1/packages/{created['id']}/original", headers=receiver)
    assert original.status_code == 200 and b"<TraceHeader xmlns=" not in original.content


async def test_inbox_pages_with_a_cursor_and_leases_hand_out_once(node: Node) -> None:
    sender, receiver, _ = await systems(node)
    for _ in range(5):
        assert (await submit(node.http, sender, document(SENDER, [RECEIVER]))).status_code == 201
    await inbox_until(node.http, receiver, 5)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await node.http.get("/api/v1/inbox", headers=receiver, params=params)).json()
        seen += [i["delivery_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5
    first = (await node.http.post("/api/v1/inbox/leases", headers=receiver)).json()
    second = (await node.http.post("/api/v1/inbox/leases", headers=receiver)).json()
    assert len(first) == 5 and second == []
    bad = await node.http.get("/api/v1/inbox", headers=receiver, params={"cursor": "x"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_REQUEST"


async def test_package_over_the_size_limit_is_refused_while_streaming(make_node: Any) -> None:
    node = await make_node(max_package_bytes=100_000)
    sender, _, _ = await systems(node)
    answer = await submit(node.http, sender, document(SENDER, [RECEIVER]))
    assert answer.status_code == 413
    assert answer.json()["code"] == "PACKAGE_TOO_LARGE" and "100000" in answer.json()["detail"]
    spool = node.backing.data_dir / "spool"  # refused from its Content-Length: never spooled
    assert not spool.exists() or list(spool.iterdir()) == []


async def test_openapi_documents_the_api(node: Node) -> None:
    schema = (await node.http.get("/openapi.json")).json()
    assert {"/api/v1/packages", "/api/v1/inbox", "/vxp/sendEdoc"} <= set(schema["paths"])
