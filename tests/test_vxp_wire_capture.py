"""Contract: the SDK's own requests (../shared/samples/vxp-wire) authenticate unchanged, and
no signed header, HMAC or body byte can be altered without the node noticing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.services.directory import add_system
from tests.support.nodes import Node
from tests.support.samples import WIRE

SYSTEM_ID, SECRET = "00.53.W00", "s3cr3t-key"
TRANSPORT_HEADERS = {"host", "content-length", "connection", "accept-encoding"}


def captured() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (WIRE / "requests.jsonl").read_text().splitlines()]


def request_parts(record: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    body = (WIRE / record["body_file"]).read_bytes() if record["body_file"] else b""
    headers = [(k, v) for k, v in record["headers"] if k.lower() not in TRANSPORT_HEADERS]
    return record["path"], headers, body


async def replay(
    node: Node, path: str, headers: list[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    response = await node.http.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture
async def sdk_node(node: Node) -> Node:
    await add_system(node.runtime.store, SYSTEM_ID, ["000.00.13.H53", "000.00.01.H53"], SECRET)
    return node


# What each captured call must answer once authenticated: the capture was made against a stub,
# so `from` does not match the packages' senders and `d1` does not exist here.
EXPECTED = {
    1: ("FAIL", "19"),
    2: ("OK", "0"),
    3: ("FAIL", "26"),
    4: ("FAIL", "26"),
    5: ("OK", "0"),
    6: ("OK", "0"),
    7: ("FAIL", "19"),
}


@pytest.mark.parametrize("record", captured(), ids=lambda r: f"{r['seq']}-{r['path']}")
async def test_captured_sdk_request_authenticates(sdk_node: Node, record: dict[str, Any]) -> None:
    answer = await replay(sdk_node, *request_parts(record))
    assert (answer["status"], answer["ErrorCode"]) == EXPECTED[record["seq"]], answer
    if record["seq"] in (1, 7):  # authenticated and hash-checked, refused on the sender
        assert "from" in answer["ErrorDesc"] and "MessageHeader/From/OrganId" in answer["ErrorDesc"]


@pytest.mark.parametrize("record", captured(), ids=lambda r: f"{r['seq']}-{r['path']}")
async def test_changing_one_byte_of_any_signed_header_is_refused(
    sdk_node: Node, record: dict[str, Any]
) -> None:
    path, headers, body = request_parts(record)
    signed = json.loads(dict(headers)["XroadVnpt-sign-header"])
    for name in signed:
        tampered = [
            (k, (v[:-1] + ("0" if v[-1] != "0" else "1")) if k == name else v) for k, v in headers
        ]
        answer = await replay(sdk_node, path, tampered, body)
        assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "15"), (name, answer)


@pytest.mark.parametrize("header", ["XroadVnpt-hash-header", "XroadVnpt-sign-header"])
async def test_forged_hmac_or_sign_header_is_refused(sdk_node: Node, header: str) -> None:
    path, headers, body = request_parts(captured()[1])
    forged = [(k, v.replace("0", "1", 1) if k == header else v) for k, v in headers]
    answer = await replay(sdk_node, path, forged, body)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "15")


async def test_wrong_secret_is_refused(node: Node) -> None:
    await add_system(node.runtime.store, SYSTEM_ID, ["000.00.13.H53"], "another-secret")
    answer = await replay(node, *request_parts(captured()[1]))
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "15")


async def test_body_altered_in_transit_is_refused_before_parsing(sdk_node: Node) -> None:
    path, headers, body = request_parts(captured()[0])
    altered = body.replace(b"V/v", b"V/x", 1)
    answer = await replay(sdk_node, path, headers, altered)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "10"), answer
    assert "hash-file" in answer["ErrorDesc"]


async def test_unsigned_parameter_is_not_used(sdk_node: Node) -> None:
    """getEdoc's docId must be signed: one only added as a plain header is ignored."""
    path, headers, body = request_parts(captured()[1])  # getReceivedEdocList: no docId signed
    headers.append(("XroadVnpt-docId", "d1"))
    answer = await replay(sdk_node, "/vxp/getEdoc", headers, body)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "27")
    assert "docId" in answer["ErrorDesc"]
