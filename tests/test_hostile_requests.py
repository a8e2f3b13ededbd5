"""Contract: requests an attacker made that once got an HTTP 500 or leaked something get a
precise refusal instead (issue #9): cursors, dates and ages, attachment names, replayed
`/vxp` requests."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from adapters.vxp_client import VxpClient, sdk_hex
from tests.support.nodes import Node
from tests.support.operators import add_operator
from tests.support.polling import poll_until
from tests.support.samples import document

SENDER, A = "000.00.01.H53", "000.00.21.H53"


def assert_refused(response: httpx.Response, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("cursor", ["²", "9" * 20, "-1", "abc", "gAAAAA" + "x" * 100, "x" * 5000])
async def test_cursors_this_api_never_issued_are_refused(node: Node, cursor: str) -> None:
    receiver = await node.add_system("sys.receiver", A)
    operator = await add_operator(node, "olga", "auditor")
    assert_refused(
        await node.http.get(
            "/api/v1/inbox", params={"cursor": cursor}, headers=node.rest_headers(receiver)
        )
    )
    for path in ("/api/v1/operator/messages", "/api/v1/operator/actions"):
        assert_refused(await node.http.get(path, params={"cursor": cursor}, headers=operator))


async def test_cursors_reveal_no_row_id_and_work_only_for_their_caller(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", A)
    other = await node.add_system("sys.other", "000.00.22.H53")
    for _ in range(3):
        assert (await sender.send_edoc(document(SENDER, [A]), SENDER))["status"] == "OK"
    await poll_until(receiver, 3)
    page = (
        await node.http.get(
            "/api/v1/inbox", params={"limit": 1}, headers=node.rest_headers(receiver)
        )
    ).json()
    cursor = page["next_cursor"]
    assert not cursor.isdigit() and len(cursor) > 40
    following = (
        await node.http.get(
            "/api/v1/inbox",
            params={"limit": 1, "cursor": cursor},
            headers=node.rest_headers(receiver),
        )
    ).json()
    assert following["items"][0]["delivery_id"] != page["items"][0]["delivery_id"]
    # Another system cannot use it; neither can the same system for status packages.
    assert_refused(
        await node.http.get(
            "/api/v1/inbox", params={"cursor": cursor}, headers=node.rest_headers(other)
        )
    )
    assert_refused(
        await node.http.get(
            "/api/v1/inbox",
            params={"cursor": cursor, "type": "status"},
            headers=node.rest_headers(receiver),
        )
    )


@pytest.mark.parametrize(
    "params",
    [
        {"until": "9999-12-31"},
        {"since": "0001-01-01"},
        {"until": "9999-12-31T23:59:59"},
        {"older_than_seconds": "inf"},
        {"older_than_seconds": "1e308"},
        {"older_than_seconds": "nan"},
    ],
)
async def test_extreme_dates_and_ages_are_refused(node: Node, params: dict[str, str]) -> None:
    operator = await add_operator(node, "olga", "operator")
    response = await node.http.get("/api/v1/operator/messages", params=params, headers=operator)
    assert response.status_code in (400, 422), response.text
    key, value = next(iter(params.items()))
    literal = value if key == "older_than_seconds" else f'"{value}"'
    replay = await node.http.post(
        "/api/v1/operator/replay",
        headers={**operator, "Content-Type": "application/json"},
        content=f'{{"filter": {{"{key}": {literal}}}, "reason": "test"}}',
    )
    assert replay.status_code in (400, 422), replay.text


async def test_attachment_names_are_made_safe_for_headers(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    receiver = await node.add_system("sys.receiver", A)
    package = document(SENDER, [A]).replace(
        b"1896_QD-TTg_m_294779.doc", "Tờ trình&#13;&#10;Set-Cookie: x=1&#9;.doc".encode()
    )
    message_id = (await sender.send_edoc(package, SENDER))["DocId"]
    assert message_id
    await poll_until(receiver, 1)
    for unzip in ("false", "true"):
        response = await node.http.get(
            f"/api/v1/packages/{message_id}/attachments/1",
            params={"unzip": unzip},
            headers=node.rest_headers(receiver),
        )
        assert response.status_code == 200, response.text
        disposition = response.headers["content-disposition"]
        assert "\r" not in disposition and "\n" not in disposition and "\t" not in disposition
        assert "filename*=UTF-8''T%E1%BB%9D%20tr%C3%ACnhSet-Cookie" in disposition
        assert "set-cookie" not in response.headers


def captured(client: VxpClient, params: dict[str, str], content_type: str) -> dict[str, str]:
    return client.signed_headers(params, content_type)


async def test_a_captured_request_replayed_to_another_operation_is_refused(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.receiver", A)
    package = document(SENDER, [A])
    send_headers = captured(
        sender,
        {
            "messagetype": "edoc",
            "from": SENDER,
            "hash-file": sdk_hex(hashlib.sha256(package).digest()),
        },
        "application/octet-stream",
    )
    sent = (
        await node.http.post("/vxp/sendEdoc", content=package + b"\r\n", headers=send_headers)
    ).json()
    assert sent["status"] == "OK", sent
    for operation in ("getReceivedEdocList", "getSentEdocList", "updateStatus", "countReceiveEdoc"):
        replayed = (
            await node.http.post(f"/vxp/{operation}", content=b"{}", headers=send_headers)
        ).json()
        assert (replayed["status"], replayed["ErrorCode"]) == ("FAIL", "15"), (operation, replayed)
    list_headers = captured(
        sender,
        {
            "messagetype": "edoc",
            "from": SENDER,
            "hash-file": sdk_hex(hashlib.sha256(package).digest()),
        },
        "application/json",
    )
    replayed = (
        await node.http.post("/vxp/sendEdoc", content=package + b"\r\n", headers=list_headers)
    ).json()
    assert (replayed["ErrorCode"], replayed["DocId"]) == ("15", "")


async def test_a_timestamp_far_in_the_future_is_refused(node: Node) -> None:
    client = await node.add_system("sys.sender", SENDER)
    client._timestamp = "01012099T000000+0000"
    answer = await client.get_received()
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "15")
    assert "future" in answer["ErrorDesc"]
    client._timestamp = "not a timestamp"  # real clients' oddities pass without freshness
    assert (await client.get_received())["status"] == "OK"
