"""Business status feedback (SPEC §2.2): the flow per (document, recipient), and its routing."""

from __future__ import annotations

import pytest

from gateway.edxml.model import StatusCode
from gateway.status_flow import check
from tests.support.nodes import Node
from tests.support.polling import poll_until
from tests.support.samples import document, document_id_of, status

C = StatusCode
SENDER, A, B = "000.00.01.H53", "000.00.21.H53", "000.00.22.H53"


@pytest.mark.parametrize(
    ("history", "code"),
    [
        ([], C.ARRIVED),
        ([C.ARRIVED], C.ACCEPTED),
        ([C.ARRIVED], C.REJECTED),
        ([C.ARRIVED, C.ACCEPTED], C.ASSIGNED),
        ([C.ARRIVED, C.ACCEPTED, C.ASSIGNED], C.PROCESSING),
        ([C.ARRIVED, C.ACCEPTED, C.ASSIGNED, C.PROCESSING], C.PROCESSING),
        ([C.ARRIVED, C.ACCEPTED, C.ASSIGNED], C.COMPLETED),
        ([C.ARRIVED, C.ACCEPTED, C.ASSIGNED, C.PROCESSING, C.PROCESSING], C.COMPLETED),
        ([], C.RECALL_REQUEST),
        ([C.ARRIVED, C.RECALL_REQUEST], C.RECALL_AGREED),
        ([C.RECALL_REQUEST], C.RECALL_REFUSED),
        ([C.RECALL_REQUEST, C.RECALL_REFUSED], C.RECALL_REQUEST),
    ],
)
def test_legal_steps(history: list[StatusCode], code: StatusCode) -> None:
    assert check(code, history).ok


@pytest.mark.parametrize(
    ("history", "code", "words"),
    [
        ([], C.ACCEPTED, "needs 01"),
        ([C.ARRIVED], C.ASSIGNED, "needs 03"),
        ([C.ARRIVED, C.REJECTED], C.ACCEPTED, "ended with 02"),
        ([C.ARRIVED, C.ACCEPTED], C.PROCESSING, "needs 04"),
        ([C.ARRIVED, C.ACCEPTED, C.ASSIGNED, C.COMPLETED], C.PROCESSING, "ended with 06"),
        ([C.ARRIVED, C.ACCEPTED], C.COMPLETED, "needs 04"),
        ([C.ARRIVED], C.RECALL_AGREED, "none is waiting"),
        ([C.RECALL_REQUEST, C.RECALL_AGREED], C.RECALL_REFUSED, "none is waiting"),
    ],
)
def test_broken_flow_is_named(history: list[StatusCode], code: StatusCode, words: str) -> None:
    verdict = check(code, history)
    assert not verdict.duplicate and verdict.problem is not None and words in verdict.problem


@pytest.mark.parametrize(
    ("history", "code"),
    [
        ([C.ARRIVED], C.ARRIVED),
        ([C.ARRIVED, C.ACCEPTED], C.ACCEPTED),
        ([C.ARRIVED, C.ACCEPTED, C.ASSIGNED, C.COMPLETED], C.COMPLETED),
        ([C.RECALL_REQUEST], C.RECALL_REQUEST),
    ],
)
def test_repeats_are_duplicates_except_processing(
    history: list[StatusCode], code: StatusCode
) -> None:
    assert check(code, history).duplicate


async def test_statuses_are_routed_back_and_shown_per_recipient(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    recipients = await node.add_system("sys.recipients", A, B)
    package = document(SENDER, [A, B])
    message_id = (await sender.send_edoc(package, SENDER))["DocId"]
    await poll_until(recipients, 2)
    doc_id = document_id_of(package)
    for code in ("01", "03"):
        answer = await recipients.send_edoc(status(A, SENDER, doc_id, code), A, "status")
        assert answer["status"] == "OK", answer
    answer = await recipients.send_edoc(status(B, SENDER, doc_id, "01"), B, "status")
    assert answer["status"] == "OK", answer
    assert len(await poll_until(sender, 3, "status")) == 3
    rows = {row["toCode"]: row for row in (await sender.get_sent(message_id))["data"]}
    assert (rows[A]["receiveStatus"], rows[B]["receiveStatus"]) == ("03", "01")
    view = (
        await node.http.get(f"/api/v1/packages/{message_id}", headers=node.rest_headers(sender))
    ).json()
    shown = {d["to"]: d["business_status"]["code"] for d in view["deliveries"]}
    assert shown == {A: "03", B: "01"}
    # B's flow is its own: B may not skip from 01 to 04, A may not send 01 again.
    skip = await recipients.send_edoc(status(B, SENDER, doc_id, "04"), B, "status")
    assert skip["errors"][0]["code"] == "STATUS_FLOW" and "needs 03" in skip["ErrorDesc"]
    again = await recipients.send_edoc(status(A, SENDER, doc_id, "01"), A, "status")
    assert again["ErrorCode"] == "24" and again["errors"][0]["code"] == "STATUS_DUPLICATE"


async def test_a_status_for_an_unknown_document_is_refused(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    recipients = await node.add_system("sys.recipients", A)
    await sender.send_edoc(document(SENDER, [A]), SENDER)
    stray = status(A, SENDER, f"{SENDER},2020/01/01,999/NOWHERE", "01").replace(
        b"7816/VPCP-TT\xc4\x90T", b"999/NOWHERE"
    )
    answer = await recipients.send_edoc(stray, A, "status")
    assert (answer["ErrorCode"], answer["errors"][0]["code"]) == ("22", "STATUS_UNKNOWN_DOCUMENT")
    response = await node.http.post(
        "/api/v1/packages", content=stray, headers=node.rest_headers(recipients)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "STATUS_UNKNOWN_DOCUMENT"


async def test_a_status_is_matched_by_code_when_the_document_id_differs(node: Node) -> None:
    """Some systems send back their own DocumentId: the sender, recipient and Code match."""
    sender = await node.add_system("sys.sender", SENDER)
    recipients = await node.add_system("sys.recipients", A)
    message_id = (await sender.send_edoc(document(SENDER, [A]), SENDER))["DocId"]
    answer = await recipients.send_edoc(
        status(A, SENDER, "a-recipient-side-id", "01").replace(
            b"7816/VPCP-TT\xc4\x90T", "74fass22/VPCP-TTĐT".encode()
        ),
        A,
        "status",
    )
    assert answer["status"] == "OK", answer
    [row] = (await sender.get_sent(message_id))["data"]
    assert row["receiveStatus"] == "01"
