"""Contract: every `/vxp` answer parses the way the SDK parses it, OK and FAIL alike.

The SDK reads each field of its method's answer without a null check (SPEC §4.1); a missing or
null field turns a precise refusal into a result whose status, code and description are all
null. Each test makes a real request and parses the answer with `tests.support.sdk`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re

import pytest

from gateway.records import AgencyRecord
from gateway.services.directory import add_system
from gateway.types import AgencyCode
from tests.support.nodes import Node
from tests.support.samples import document, status
from tests.support.sdk import READS, StickySdkClient, sdk_parse
from tests.support.systems import sdk

SENDER, RECIPIENT = "000.00.13.H53", "000.00.14.H53"
OPERATIONS = sorted(READS)


async def delivered_item(sender: StickySdkClient, receiver: StickySdkClient) -> tuple[str, str]:
    """Send one document and poll until the receiver sees it: (message id, its docId)."""
    sent = await sender.send_edoc(document(SENDER, [RECIPIENT]), SENDER)
    assert sent["status"] == "OK", sent
    for _ in range(400):
        listed = await receiver.parsed("getReceivedEdocList", {"messagetype": "edoc"})
        if listed["data"]:
            return sent["DocId"], listed["data"][0]["docId"]
        await asyncio.sleep(0.05)
    raise AssertionError("the document never became available")


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_wrong_secret_is_a_complete_fail_answer(node: Node, operation: str) -> None:
    await add_system(node.runtime.store, "00.53.W00", [SENDER])
    stranger = StickySdkClient(node.http, "00.53.W00", "not-the-secret")
    answer = sdk_parse(operation, (await stranger.call(operation)).json())
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "15")
    assert "Sai systemId hoac secret" in answer["ErrorDesc"]


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_unknown_system_reads_like_a_wrong_secret(node: Node, operation: str) -> None:
    answer = sdk_parse(
        operation, (await StickySdkClient(node.http, "99.99.W99", "x").call(operation)).json()
    )
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "15")


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_a_disabled_system_gets_its_own_complete_fail_answer(
    node: Node, operation: str
) -> None:
    """29, not 15: the credentials are right, the system is switched off here."""
    client = await sdk(node, "00.53.W00", SENDER)
    await node.runtime.store.set_system_enabled("00.53.W00", False)
    if operation == "sendEdoc":  # signed for a package body, as the SDK sends it
        answer = await client.send_edoc(document(SENDER, [RECIPIENT]), SENDER)
    else:
        answer = sdk_parse(operation, (await client.call(operation)).json())
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "29")
    assert answer["ErrorDesc"].startswith("He thong da bi khoa: ")
    stranger = StickySdkClient(node.http, "00.53.W00", "not-the-secret")
    assert (await stranger.parsed(operation))["ErrorCode"] == "15"  # nothing told to a stranger


async def test_a_disabled_system_downloads_nothing_and_reads_why_in_headers(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W01", RECIPIENT)
    _, doc_id = await delivered_item(sender, receiver)
    await node.runtime.store.set_system_enabled("00.53.W01", False)
    response = await receiver.call("downloadEdoc", {"docId": doc_id}, method="GET")
    assert (response.status_code, response.content) == (403, b"")
    assert response.headers["x-lienthong-error-code"] == "29"
    await node.runtime.store.set_system_enabled("00.53.W01", True)
    response = await receiver.call("downloadEdoc", {"docId": doc_id}, method="GET")
    assert response.status_code == 200 and response.content.startswith(b"<?xml")


async def test_a_recipient_whose_system_is_disabled_is_locked_23(node: Node) -> None:
    client = await sdk(node, "00.53.W00", SENDER)
    await sdk(node, "00.53.W01", RECIPIENT)
    await node.runtime.store.set_system_enabled("00.53.W01", False)
    answer = await client.send_edoc(document(SENDER, [RECIPIENT]), SENDER)
    assert (answer["status"], answer["ErrorCode"], answer["DocId"]) == ("FAIL", "23", "")
    assert RECIPIENT in answer["ErrorDesc"] and "RECIPIENT_LOCKED" in answer["ErrorDesc"]


async def test_send_refusals_carry_an_empty_doc_id(node: Node) -> None:
    client = await sdk(node, "00.53.W00", SENDER)
    await sdk(node, "00.53.W01", RECIPIENT)
    cases = {
        "18": (document(SENDER, ["000.00.99.H99"]), SENDER),  # nobody serves it
        "19": (document("000.00.77.H53", [RECIPIENT]), "000.00.77.H53"),  # not served
        "22": (b"<edXML xmlns='http://www.mic.gov.vn/TBT/QCVN_102_2016'/>", SENDER),
    }
    for code, (package, sender) in cases.items():
        answer = await client.send_edoc(package, sender)
        assert (answer["status"], answer["ErrorCode"], answer["DocId"]) == ("FAIL", code, ""), (
            answer
        )
        assert answer["ErrorDesc"]
    wrong_hash = await client.parsed(
        "sendEdoc",
        {"from": SENDER, "messagetype": "edoc", "hash-file": "0" * 64},
        document(SENDER, [RECIPIENT]) + b"\r\n",
        "application/octet-stream",
    )
    assert (wrong_hash["ErrorCode"], wrong_hash["DocId"]) == ("10", "")
    missing = await client.parsed("sendEdoc", {"messagetype": "edoc"}, b"x")
    assert missing["status"] == "FAIL" and missing["DocId"] == ""


async def test_duplicate_send_returns_the_original_doc_id(node: Node) -> None:
    client = await sdk(node, "00.53.W00", SENDER)
    await sdk(node, "00.53.W01", RECIPIENT)
    package = document(SENDER, [RECIPIENT])
    first = await client.send_edoc(package, SENDER)
    again = await client.send_edoc(package, SENDER)
    assert first["status"] == "OK" and first["DocId"]
    assert (again["status"], again["ErrorCode"], again["DocId"]) == ("FAIL", "24", first["DocId"])


async def test_refused_package_names_every_problem_in_error_desc(node: Node) -> None:
    client = await sdk(node, "00.53.W00", SENDER)
    package = re.sub(
        rb"<edXML:Subject>.*?</edXML:Subject>",
        b"<edXML:Subject/>",
        document(SENDER, [RECIPIENT]),
        count=1,
        flags=re.S,
    )
    package = re.sub(
        rb"<edXML:CodeNotation>.*?</edXML:CodeNotation>",
        b"<edXML:CodeNotation/>",
        package,
        count=1,
        flags=re.S,
    )
    answer = await client.send_edoc(package, SENDER)
    assert answer["ErrorCode"] == "22", answer
    problems = [p for p in answer["errors"] if p["severity"] == "error"]
    assert len(problems) >= 2
    for problem in problems:  # every error's element path is in what the SDK user sees
        assert problem["path"] in answer["ErrorDesc"], (problem, answer["ErrorDesc"])


async def test_error_desc_is_bounded_and_counts_what_it_leaves_out(node: Node) -> None:
    client = await sdk(node, "00.53.W00", SENDER)
    recipients = [f"000.00.{n:02d}.H53" for n in range(1, 80)]
    package = document(SENDER, recipients)
    for code in recipients:  # 79 recipients, none served: one problem each is too long
        package = package.replace(f"<edXML:OrganId>{code}<".encode(), b"<edXML:OrganId>bad code<")
    answer = await client.send_edoc(package, SENDER)
    assert answer["status"] == "FAIL"
    assert len(answer["ErrorDesc"]) <= 1100
    assert answer["ErrorDesc"].endswith("more"), answer["ErrorDesc"][-200:]
    assert answer["ErrorDesc"].isascii()


async def test_every_operation_answers_completely_on_success(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W01", RECIPIENT)
    await node.runtime.store.upsert_agencies(
        [
            AgencyRecord(AgencyCode("000.00.00.H53"), "UBND tinh"),  # a root: pid is ""
            AgencyRecord(AgencyCode(RECIPIENT), "So", parent_code="000.00.00.H53"),
        ]
    )
    message_id, doc_id = await delivered_item(sender, receiver)
    assert (await receiver.parsed("countReceiveEdoc"))["count"] == 1
    assert (await receiver.parsed("countReceiveStatus"))["count"] == 0
    got = await receiver.parsed("getEdoc", {"docId": doc_id, "filePath": "xml"})
    assert base64.b64decode(got["data"]).startswith(b"<?xml")
    assert (await receiver.parsed("updateStatus", {"docid": doc_id, "status": "done"}))[
        "status"
    ] == "OK"
    sent = await sender.parsed("getSentEdocList", {"docId": message_id})
    assert [(e["senderDocId"], e["receiverDocId"]) for e in sent["data"]] == [(message_id, doc_id)]
    agencies = await sender.parsed("getAgenciesList")
    roots = [a for a in agencies["data"] if a["code"] == "000.00.00.H53"]
    assert roots and roots[0]["pid"] == ""
    child = next(a for a in agencies["data"] if a["code"] == RECIPIENT)
    assert child["pid"] == roots[0]["id"]
    for operation in ("getAgenciesListQD20", "getSynchronizeUnit"):
        assert {a["code"] for a in (await sender.parsed(operation))["data"]} >= {RECIPIENT}


@pytest.mark.parametrize(
    "operation,params,code",
    [
        ("getEdoc", {"docId": "no-such-doc", "filePath": "xml"}, "26"),
        ("getEdoc", {}, "27"),
        ("updateStatus", {"docid": "no-such-doc", "status": "done"}, "26"),
        ("updateStatus", {"docid": "x", "status": "read"}, "27"),
        ("getReceivedEdocList", {"messagetype": "letter"}, "27"),
        ("getReceivedEdocList", {"pageSize": "ten"}, "27"),
        ("getReceivedEdocList", {"fromDate": "yesterday"}, "27"),
        ("countReceiveEdoc", {"messagetype": "letter"}, None),
    ],
)
async def test_parameter_refusals_are_complete(
    node: Node, operation: str, params: dict[str, str], code: str | None
) -> None:
    client = await sdk(node, "00.53.W00", SENDER)
    answer = await client.parsed(operation, params)
    if code is None:  # a stale messagetype does not matter to a counter
        assert answer["status"] == "OK"
    else:
        assert (answer["status"], answer["ErrorCode"]) == ("FAIL", code), answer


async def test_unknown_operation_answers_in_the_sdk_envelope(node: Node) -> None:
    client = await sdk(node, "00.53.W00", SENDER)
    response = await client.call("getEverything")
    body = response.json()
    assert (body["status"], body["ErrorCode"]) == ("FAIL", "27") and body["ErrorDesc"]


async def test_download_edoc_returns_the_raw_package(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W01", RECIPIENT)
    _, doc_id = await delivered_item(sender, receiver)
    response = await receiver.call(
        "downloadEdoc", {"docId": doc_id, "filePath": "D:/vb"}, method="GET"
    )
    assert response.status_code == 200
    assert response.content.startswith(b"<?xml") and b"<edXML:TraceHeader>" in response.content
    assert response.headers["content-length"] == str(len(response.content))
    got = await receiver.parsed("getEdoc", {"docId": doc_id, "filePath": "xml"})
    copies = base64.b64decode(got["data"])
    assert copies.count(b"<edXML:TraceHeader>") == response.content.count(b"<edXML:TraceHeader>")


@pytest.mark.parametrize("case", ["unknown", "wrong-secret", "not-mine", "missing"])
async def test_download_edoc_errors_have_an_empty_body(node: Node, case: str) -> None:
    """The SDK saves any non-empty body as the document: errors must not have one."""
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W01", RECIPIENT)
    _, doc_id = await delivered_item(sender, receiver)
    client, params = {
        "unknown": (receiver, {"docId": "no-such-doc"}),
        "wrong-secret": (StickySdkClient(node.http, "00.53.W01", "wrong"), {"docId": doc_id}),
        "not-mine": (sender, {"docId": doc_id}),
        "missing": (receiver, {}),
    }[case]
    response = await client.call("downloadEdoc", params, method="GET")
    assert response.status_code >= 400
    assert response.content == b""
    assert response.headers["x-lienthong-error-code"] in {"15", "26", "27"}
    assert response.headers["x-lienthong-error"]


async def test_status_answers_parse_on_the_status_path(node: Node) -> None:
    sender = await sdk(node, "00.53.W00", SENDER)
    receiver = await sdk(node, "00.53.W01", RECIPIENT)
    await delivered_item(sender, receiver)
    answer = await receiver.send_edoc(status(RECIPIENT, SENDER, "unknown-doc"), RECIPIENT, "status")
    assert (answer["status"], answer["DocId"]) == ("FAIL", ""), answer
    assert "STATUS_UNKNOWN_DOCUMENT" in json.dumps(answer["errors"])
