"""Contract: real SDK client behaviour — sticky headers in both spellings, the `to` header of
sendEdoc, the list filters clients send, non-ASCII header values (SPEC §4.1)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json

import httpx
import pytest

from tests.support.nodes import Node
from tests.support.samples import document, document_id_of
from tests.support.sdk import StickySdkClient, sdk_parse
from tests.support.systems import sdk

SENDER = "000.00.13.H53"
A, B, C = "000.00.21.H53", "000.00.22.H53", "000.00.23.H53"


async def wait_count(
    client: StickySdkClient, count: int, operation: str = "countReceiveEdoc"
) -> None:
    for _ in range(400):
        if (await client.parsed(operation))["count"] >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} items arrived")


async def send_documents(sender: StickySdkClient, count: int, to: list[str]) -> list[str]:
    document_ids = []
    for _ in range(count):
        package = document(SENDER, to)
        answer = await sender.send_edoc(package, SENDER)
        assert answer["status"] == "OK", answer
        document_ids.append(document_id_of(package))
    return document_ids


@pytest.mark.parametrize("style", ["docId-then-docid", "docId-only", "download-all-first"])
async def test_sticky_headers_in_both_spellings(node: Node, style: str) -> None:
    """One client object receives several documents. A provincial axis passes `docId` to
    getEdoc and `docid` to updateStatus, so later calls carry both with different values."""
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W21", A)
    await send_documents(sender, 3, [A])
    await wait_count(receiver, 3)
    items = (await receiver.parsed("getReceivedEdocList", {"messagetype": "edoc"}))["data"]
    ack_name = "docId" if style == "docId-only" else "docid"
    downloaded: dict[str, bytes] = {}
    for item in items:
        got = await receiver.parsed("getEdoc", {"docId": item["docId"], "filePath": "xml"})
        assert got["status"] == "OK", got
        downloaded[item["docId"]] = base64.b64decode(got["data"])
        if style != "download-all-first":
            acked = await receiver.parsed(
                "updateStatus", {ack_name: item["docId"], "status": "done"}
            )
            assert acked["status"] == "OK", acked
    if style == "download-all-first":  # acknowledged later, while docId holds the last one
        for item in items:
            acked = await receiver.parsed(
                "updateStatus", {"docid": item["docId"], "status": "done"}
            )
            assert acked["status"] == "OK", acked
    assert "XroadVnpt-docId" in receiver.headers
    assert len({document_id_of(body) for body in downloaded.values()}) == 3
    states = {
        e["receiverDocId"]: e["sendStatus"]
        for e in (await sender.parsed("getSentEdocList", {"docId": ""}))["data"]
    }
    assert states == {item["docId"]: "done" for item in items}
    assert (await receiver.parsed("countReceiveEdoc"))["count"] == 0


async def test_to_header_picks_recipients_of_the_package(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receivers = {code: await sdk(node, f"00.53.W{code[7:9]}", code) for code in (A, B, C)}
    package = document(SENDER, [A, B, C])
    first = await sender.send_edoc(package, SENDER, to=json.dumps([A, B]))
    assert first["status"] == "OK", first
    await wait_count(receivers[A], 1)
    await wait_count(receivers[B], 1)
    assert (await receivers[C].parsed("countReceiveEdoc"))["count"] == 0
    # The same package for the recipient left out: the same message, one more delivery.
    second = await sender.send_edoc(package, SENDER, to=json.dumps([C]))
    assert (second["status"], second["DocId"]) == ("OK", first["DocId"]), second
    await wait_count(receivers[C], 1)
    again = await sender.send_edoc(package, SENDER, to=json.dumps([C]))
    assert (again["status"], again["ErrorCode"], again["DocId"]) == ("FAIL", "24", first["DocId"])
    sent = (await sender.parsed("getSentEdocList", {"docId": first["DocId"]}))["data"]
    assert sorted(e["toCode"] for e in sent) == [A, B, C]
    for client in receivers.values():
        assert (await client.parsed("countReceiveEdoc"))["count"] == 1


async def test_to_header_naming_a_stranger_is_refused(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    await sdk(node, "00.53.W21", A)
    answer = await sender.send_edoc(document(SENDER, [A]), SENDER, to=json.dumps([A, B]))
    assert (answer["status"], answer["ErrorCode"], answer["DocId"]) == ("FAIL", "22", "")
    assert answer["errors"][0]["code"] == "TO_NOT_IN_PACKAGE"
    assert answer["errors"][0]["path"] == "XroadVnpt-to" and B in answer["ErrorDesc"]
    malformed = await sender.send_edoc(document(SENDER, [A]), SENDER, to='["not a code"')
    assert (malformed["status"], malformed["ErrorCode"]) == ("FAIL", "27")


async def test_without_to_every_recipient_gets_it(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W20", A, B)
    await sender.send_edoc(document(SENDER, [A, B]), SENDER)
    await wait_count(receiver, 2)


async def test_received_list_filters(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W20", A, B)
    await send_documents(sender, 3, [A])
    await send_documents(sender, 2, [B])
    await wait_count(receiver, 5)
    to_b = await receiver.parsed(
        "getReceivedEdocList", {"messagetype": "edoc", "to": B, "pageSize": "1"}
    )
    assert [e["to"] for e in to_b["data"]] == [B]
    far_past = await receiver.parsed(
        "getReceivedEdocList",
        {"to": "", "pageSize": "", "fromDate": "2000-01-01", "toDate": "01/01/2001"},
    )
    assert far_past["data"] == []
    fresh = await receiver.parsed(
        "getReceivedEdocList", {"status": "new", "fromDate": "2000-01-01", "toDate": ""}
    )
    assert len(fresh["data"]) == 4 and all(e["status"] == "new" for e in fresh["data"])
    # Pages count over what is not handed out right now; every item comes round again.
    again = await receiver.parsed("getReceivedEdocList", {"status": "pending"})
    assert again["data"] == []  # everything handed out is under a lease


async def test_stale_acknowledgement_status_does_not_filter_the_list(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W21", A)
    await send_documents(sender, 2, [A])
    await wait_count(receiver, 2)
    first = (await receiver.parsed("getReceivedEdocList", {"pageSize": "1"}))["data"]
    await receiver.parsed("getEdoc", {"docId": first[0]["docId"]})
    await receiver.parsed("updateStatus", {"docid": first[0]["docId"], "status": "done"})
    assert receiver.headers["XroadVnpt-status"] == "done"  # rides along on the next list
    rest = (await receiver.parsed("getReceivedEdocList", {"pageSize": ""}))["data"]
    assert len(rest) == 1 and rest[0]["docId"] != first[0]["docId"]


async def test_stale_to_from_a_send_does_not_hide_items(node: Node) -> None:
    both = await sdk(node, "00.53.W00", SENDER, A, B)  # sends as SENDER, receives for A, B
    await both.send_edoc(document(SENDER, [A]), SENDER, to=json.dumps([A]))
    await both.send_edoc(document(SENDER, [B]), SENDER, to=json.dumps([B]))
    await wait_count(both, 2)
    listed = await both.parsed("getReceivedEdocList", {"messagetype": "edoc"})
    assert sorted(e["to"] for e in listed["data"]) == [A, B]


async def test_update_status_keeps_the_description(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W21", A)
    await send_documents(sender, 1, [A])
    await wait_count(receiver, 1)
    item = (await receiver.parsed("getReceivedEdocList"))["data"][0]
    await receiver.parsed("getEdoc", {"docId": item["docId"], "filePath": "Văn bản đến"})
    reason = "Không mở được tệp đính kèm"
    answer = await receiver.parsed(
        "updateStatus", {"docid": item["docId"], "status": "fail", "description": reason}
    )
    assert answer["status"] == "OK", answer
    views = await node.runtime.store.sent_deliveries("00.53.W00", None, with_timeline=True)
    reasons = [entry.reason for view in views for entry in view.timeline]
    assert reason in reasons


async def test_utf8_header_values_authenticate(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    answer = await sender.parsed("getReceivedEdocList", {"filePath": "D:/Văn bản/Sở TTTT"})
    assert answer["status"] == "OK", answer


def java_low_bytes(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """What the Java SDK puts on the wire: each character's low byte only."""
    return [(name, bytes(ord(c) & 0xFF for c in value.decode())) for name, value in headers]


async def test_header_values_that_cannot_match_are_refused_with_15(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    signed = sender._signed({"filePath": "D:/Văn bản"}, "application/json")
    cases = {
        "java low bytes": java_low_bytes(signed),
        "non-ascii hmac": [(n, v) for n, v in signed if n != "XroadVnpt-hash-header"]
        + [("XroadVnpt-hash-header", "é".encode() * 32)],
        "latin-1 hmac": [(n, v) for n, v in signed if n != "XroadVnpt-hash-header"]
        + [("XroadVnpt-hash-header", b"\xe9" * 64)],
        "invalid utf-8 sign-header": [
            (n, v) for n, v in signed if n not in ("XroadVnpt-sign-header", "XroadVnpt-hash-header")
        ]
        + [
            ("XroadVnpt-sign-header", b'{"a":"\xff"}'),
            (
                "XroadVnpt-hash-header",
                hmac.new(sender._secret.encode(), b'{"a":"\xff"}', hashlib.sha256)
                .hexdigest()
                .encode(),
            ),
        ],
    }
    for case, headers in cases.items():
        request = node.http.build_request("POST", "/vxp/getReceivedEdocList", content=b"{}")
        request.headers = httpx.Headers(headers)
        response = await node.http.send(request)
        assert response.status_code == 200, (case, response.text)
        answer = sdk_parse("getReceivedEdocList", response.json())
        assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "15"), (case, answer)
