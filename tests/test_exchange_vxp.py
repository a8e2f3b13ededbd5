"""Contract: agency systems exchange packages through `/vxp` exactly as the VNPT SDK does."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from gateway.edxml.model import VIETNAM
from gateway.edxml.parser import parse_package
from tests.support.exchange import receive
from tests.support.nodes import Node
from tests.support.polling import poll_until
from tests.support.samples import SAMPLE_DOCUMENTS, document, sample, status

VALID_FLOW = [
    "status_inbox_01.edxml",
    "status_acceptance_03.edxml",
    "status_assignment_04.edxml",
    "status_processing_05.edxml",
    "status_processing_05.edxml",
    "status_finish_06.edxml",
]


async def test_sample_packages_travel_between_two_systems(node: Node) -> None:
    ministry = await node.add_system("01.02.G22", "000.00.00.G22", "000.00.00.A80")
    provinces = await node.add_system(
        "00.41.W00", "000.00.00.H41", "000.00.00.H14", "000.00.00.G17", "28.22.H17"
    )
    # The kit's samples carry signatures nobody can check (the kit's misspelt transform URI,
    # a truncated certificate): under the default policy (verify-if-present) they travel as
    # they are, stored as unverifiable with a warning.
    sent: dict[str, str] = {}
    for name in SAMPLE_DOCUMENTS:
        package = sample(name)
        answer = await ministry.send_edoc(package, parse_package(package).from_code)
        assert answer["status"] == "OK" and answer["ErrorCode"] == "0", (name, answer)
        sent[answer["DocId"]] = name
        view = (
            await node.http.get(
                f"/api/v1/packages/{answer['DocId']}", headers=node.rest_headers(ministry)
            )
        ).json()
        assert view["signature"]["outcome"] == "unverifiable", (name, view["signature"])
        assert "SIGNATURE_UNSUPPORTED_TRANSFORM" in {w["code"] for w in view["warnings"]}
    # edoc_new goes to one agency, each business package to three.
    items = await poll_until(provinces, 1 + 3 * 3)
    assert len({item["docId"] for item in items}) == len(items)
    assert all(item["status"] == "new" for item in items)
    for item in items:
        delivered = await receive(provinces, item)
        parsed = parse_package(delivered)
        assert parsed.trace_organs[-1] == node.runtime.settings.node_code
        assert item["to"] in parsed.to_codes
    listing = await ministry.get_sent()
    assert {row["senderDocId"] for row in listing["data"]} == set(sent)
    assert {row["sendStatus"] for row in listing["data"]} == {"done"}
    assert (await provinces.get_received())["data"] == []

    # The statuses answer G22's document 7816/VPCP-TTĐT to H41: the kit's edoc_new carries
    # that DocumentId; sent by G22 to H41, it is the document the statuses follow.
    original = (
        sample("edoc_new.edxml")
        .replace(b"000.00.00.A80", b"000.00.00.G22")
        .replace(b"28.22.H17", b"000.00.00.H41")
    )
    document_answer = await ministry.send_edoc(original, "000.00.00.G22")
    assert document_answer["status"] == "OK", document_answer
    await poll_until(provinces, 1)
    for name in VALID_FLOW:
        answer = await provinces.send_edoc(sample(name), "000.00.00.H41", "status")
        assert answer["status"] == "OK", (name, answer)
    duplicate = await provinces.send_edoc(sample("status.edxml"), "000.00.00.H41", "status")
    assert (duplicate["status"], duplicate["ErrorCode"]) == ("FAIL", "24")  # a second 01
    late = await provinces.send_edoc(sample("status_rejection_02.edxml"), "000.00.00.H41", "status")
    assert (late["ErrorCode"], late["errors"][0]["code"]) == ("22", "STATUS_FLOW")
    recall = await ministry.send_edoc(
        sample("status_cancellation_13.edxml"), "000.00.00.G22", "status"
    )
    assert recall["status"] == "OK", recall
    agreed = await provinces.send_edoc(
        sample("status_change-acceptance_15.edxml"), "000.00.00.H41", "status"
    )
    assert agreed["status"] == "OK", agreed
    refused = await provinces.send_edoc(
        sample("status_change-rejection_16.edxml"), "000.00.00.H41", "status"
    )
    assert refused["errors"][0]["code"] == "STATUS_FLOW"  # the recall was already answered
    statuses = await poll_until(ministry, len(VALID_FLOW) + 1, "status")
    assert {s["from"] for s in statuses} == {"000.00.00.H41"}
    assert all(s["messageType"] == "status" for s in statuses)
    assert len(await poll_until(provinces, 1, "status")) == 1
    assert (await ministry.get_received("edoc"))["data"] == []
    [row] = (await ministry.get_sent(document_answer["DocId"]))["data"]
    assert row["receiveStatus"] == "15"


async def test_delivered_copy_keeps_original_bytes_and_adds_one_trace_header(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    receiver = await node.add_system("sys.b", "000.00.02.H53")
    package = document("000.00.01.H53", ["000.00.02.H53"])
    assert (await sender.send_edoc(package, "000.00.01.H53"))["status"] == "OK"
    [item] = await poll_until(receiver, 1)
    delivered = await receive(receiver, item)
    start = delivered.index(b"<TraceHeader xmlns=")
    end = delivered.index(b"</TraceHeader>", start) + len(b"</TraceHeader>")
    assert delivered[:start] + delivered[end:] == package  # CRLFs and attachment included
    assert delivered[:start].endswith(b"</edXML:TraceHeader>")
    assert node.runtime.settings.node_code.encode() in delivered[start:end]


async def test_one_package_to_three_agencies_served_by_two_systems(node: Node) -> None:
    sender = await node.add_system("sys.sender", "000.00.01.H53")
    department = await node.add_system("sys.dept", "*.*.13.H53")
    districts = await node.add_system("sys.districts", "#.H60")
    recipients = ["000.00.13.H53", "000.01.13.H53", "000.00.20.H60"]
    answer = await sender.send_edoc(document("000.00.01.H53", recipients), "000.00.01.H53")
    assert answer["status"] == "OK", answer
    dept_items = await poll_until(department, 2)
    district_items = await poll_until(districts, 1)
    assert sorted(i["to"] for i in dept_items) == recipients[:2]
    assert [i["to"] for i in district_items] == recipients[2:]
    sent = (await sender.get_sent(answer["DocId"]))["data"]
    assert sorted(row["toCode"] for row in sent) == sorted(recipients)
    assert {row["senderDocId"] for row in sent} == {answer["DocId"]}
    assert sorted(row["receiverDocId"] for row in sent) == sorted(
        i["docId"] for i in dept_items + district_items
    )
    # One system cannot read what was delivered to another.
    stolen = await department.get_edoc(district_items[0]["docId"])
    assert (stolen["status"], stolen["ErrorCode"]) == ("FAIL", "26")


async def test_unknown_recipient_is_refused_with_error_18(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    await node.add_system("sys.b", "000.00.02.H53")
    package = document("000.00.01.H53", ["000.00.02.H53", "000.00.99.H99"])
    answer = await sender.send_edoc(package, "000.00.01.H53")
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "18")
    assert "000.00.99.H99" in answer["ErrorDesc"]
    assert answer["errors"][0]["path"] == "MessageHeader/To[2]/OrganId"
    assert (await sender.get_sent())["data"] == []  # nothing half-stored


async def test_sender_must_be_an_agency_the_system_serves(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    await node.add_system("sys.b", "000.00.02.H53")
    spoofed = document("000.00.05.H53", ["000.00.02.H53"])
    answer = await sender.send_edoc(spoofed, "000.00.05.H53")
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "19")
    mismatch = await sender.send_edoc(document("000.00.01.H53", ["000.00.02.H53"]), "000.00.05.H53")
    assert (mismatch["status"], mismatch["ErrorCode"]) == ("FAIL", "19")
    assert "000.00.05.H53" in mismatch["ErrorDesc"]


async def test_duplicate_document_id_from_same_sender_is_refused(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    receiver = await node.add_system("sys.b", "000.00.02.H53")
    package = document("000.00.01.H53", ["000.00.02.H53"])
    first = await sender.send_edoc(package, "000.00.01.H53")
    again = await sender.send_edoc(package, "000.00.01.H53")
    assert first["status"] == "OK"
    assert (again["status"], again["ErrorCode"], again["DocId"]) == ("FAIL", "24", first["DocId"])
    assert len(await poll_until(receiver, 1)) == 1
    await asyncio.sleep(0.3)
    assert (await receiver.get_received())["data"] == []


async def test_status_package_must_be_sent_as_messagetype_status(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    await node.add_system("sys.b", "000.00.02.H53")
    answer = await sender.send_edoc(
        status("000.00.01.H53", "000.00.02.H53", "x,1"), "000.00.01.H53", "edoc"
    )
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "22")
    assert answer["errors"][0]["code"] == "MESSAGETYPE_MISMATCH"


async def test_failed_acknowledgement_offers_the_item_again(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    receiver = await node.add_system("sys.b", "000.00.02.H53")
    await sender.send_edoc(document("000.00.01.H53", ["000.00.02.H53"]), "000.00.01.H53")
    [item] = await poll_until(receiver, 1)
    assert (await receiver.get_edoc(item["docId"]))["status"] == "OK"
    assert (await receiver.update_status(item["docId"], "fail"))["status"] == "OK"
    [again] = await poll_until(receiver, 1)  # after fail_retry_seconds
    assert again["docId"] == item["docId"] and again["status"] == "pending"
    await receive(receiver, again)
    await asyncio.sleep(0.6)
    assert (await receiver.get_received())["data"] == []


async def test_acknowledging_before_downloading_is_refused(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    receiver = await node.add_system("sys.b", "000.00.02.H53")
    await sender.send_edoc(document("000.00.01.H53", ["000.00.02.H53"]), "000.00.01.H53")
    [item] = await poll_until(receiver, 1)
    answer = await receiver.update_status(item["docId"], "done")
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "27")


RELAY_TIME = "<edXML:Timestamp>2026/11/20 11:00:00</edXML:Timestamp>"
MALFORMED_RELAY_TRACES = [
    # (name, the relay's TraceHeader, where Bussiness stands, warned path, message part)
    (
        "OrganId absent (Timestamp only)",
        f"<edXML:TraceHeader>{RELAY_TIME}</edXML:TraceHeader>",
        "after",
        "TraceHeaderList/TraceHeader[2]/OrganId",
        "no OrganId",
    ),
    (
        "OrganId empty",
        f"<edXML:TraceHeader><edXML:OrganId></edXML:OrganId>{RELAY_TIME}</edXML:TraceHeader>",
        "before",
        "TraceHeaderList/TraceHeader[2]/OrganId",
        "OrganId is empty",
    ),
    (
        "OrganId null",
        f"<edXML:TraceHeader><edXML:OrganId>null</edXML:OrganId>{RELAY_TIME}</edXML:TraceHeader>",
        "after",
        "TraceHeaderList/TraceHeader[2]/OrganId",
        "the text 'null'",
    ),
    (
        "empty element",
        "<edXML:TraceHeader/>",
        "after",
        "TraceHeaderList/TraceHeader[2]/OrganId",
        "no OrganId",
    ),
    (
        "timestamp in another format",
        "<edXML:TraceHeader><edXML:OrganId>000.00.00.G22"
        "</edXML:OrganId><edXML:Timestamp>2026-11-20T11:00:00+07:00</edXML:Timestamp>"
        "</edXML:TraceHeader>",
        "before",
        "TraceHeaderList/TraceHeader[2]/Timestamp",
        "read as 2026/11/20 11:00:00",
    ),
]


def relayed(package: bytes, relay_trace: str, business: str) -> bytes:
    """`package` (from `document`) as it arrives after a relay wrote `relay_trace` after
    the sender's TraceHeader, with Bussiness before or after the TraceHeaders."""
    trace_end = package.index(b"</edXML:TraceHeader>") + len(b"</edXML:TraceHeader>")
    package = package[:trace_end] + relay_trace.encode() + package[trace_end:]
    if business == "before":
        start = package.index(b"<edXML:Bussiness>")
        end = package.index(b"</edXML:Bussiness>") + len(b"</edXML:Bussiness>")
        block = package[start:end]
        package = package[:start] + package[end:]
        list_start = package.index(b"<edXML:TraceHeaderList>") + len(b"<edXML:TraceHeaderList>")
        package = package[:list_start] + block + package[list_start:]
    return package


@pytest.mark.parametrize(
    ("relay_trace", "business", "path", "message"),
    [case[1:] for case in MALFORMED_RELAY_TRACES],
    ids=[case[0] for case in MALFORMED_RELAY_TRACES],
)
async def test_a_package_with_a_malformed_relay_trace_is_accepted_and_delivered(
    node: Node, relay_trace: str, business: str, path: str, message: str
) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    receiver = await node.add_system("sys.b", "000.00.02.H53")
    package = relayed(document("000.00.01.H53", ["000.00.02.H53"]), relay_trace, business)
    answer = await sender.send_edoc(package, "000.00.01.H53")
    assert answer["status"] == "OK", answer

    view = (
        await node.http.get(
            f"/api/v1/packages/{answer['DocId']}", headers=node.rest_headers(sender)
        )
    ).json()
    warnings = {w["path"]: w for w in view["warnings"] if w["code"] == "EDXML_TRACE_MALFORMED"}
    assert message in warnings[path]["message"], warnings
    assert warnings[path]["severity"] == "warning"
    assert len(view["traces"]) == 2 and view["traces"][0]["organ_id"] == "000.00.00.G22"
    assert view["business"]["business_doc_type"] == 0

    [item] = await poll_until(receiver, 1)
    delivered = await receive(receiver, item)
    start = delivered.index(b"<TraceHeader xmlns=")
    end = delivered.index(b"</TraceHeader>", start) + len(b"</TraceHeader>")
    assert delivered[:start] + delivered[end:] == package  # nothing else changed
    assert delivered[:start].endswith(relay_trace.encode())  # right after the last one
    node_code = node.runtime.settings.node_code
    assert f"<OrganId>{node_code}</OrganId>".encode() in delivered[start:end]
    parsed = parse_package(delivered)
    assert parsed.trace_organs[-1] == node_code and len(parsed.model.traces) == 3
    assert parsed.model.traces[-1].timestamp is not None


async def test_bad_optional_values_are_accepted_with_their_warnings_shown(node: Node) -> None:
    sender = await node.add_system("sys.a", "000.00.01.H53")
    await node.add_system("sys.b", "000.00.02.H53")
    tomorrow = (datetime.now(VIETNAM).date() + timedelta(days=1)).strftime("%Y/%m/%d")
    package = (
        document("000.00.01.H53", ["000.00.02.H53"])
        .replace(b"<edXML:Priority>0<", b"<edXML:Priority>7<")
        .replace(b"<edXML:DueDate>2018/09/28<", b"<edXML:DueDate>28-09-2018<")
        .replace(b"<edXML:SteeringType>1<", b"<edXML:SteeringType>Chi dao<")
        .replace(
            b"<edXML:PromulgationDate>2019/01/16<", f"<edXML:PromulgationDate>{tomorrow}<".encode()
        )
    )
    answer = await sender.send_edoc(package, "000.00.01.H53")
    assert answer["status"] == "OK", answer
    view = (
        await node.http.get(
            f"/api/v1/packages/{answer['DocId']}", headers=node.rest_headers(sender)
        )
    ).json()
    assert {(w["code"], w["path"]) for w in view["warnings"]} == {
        ("EDXML_VALUE_IGNORED", "MessageHeader/OtherInfo/Priority"),
        ("EDXML_VALUE_IGNORED", "MessageHeader/DueDate"),
        ("EDXML_VALUE_IGNORED", "MessageHeader/SteeringType"),
        ("EDXML_FUTURE_DATE", "MessageHeader/PromulgationInfo/PromulgationDate"),
    }
    assert "due_date" not in view["header"] and "priority" not in view["header"]["other_info"]
