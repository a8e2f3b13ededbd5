"""Hypothesis-driven fuzzing of the `/vxp` headers, for every operation (SPEC §4.1).

Each example is an SDK-style signed request (`tests/support/vxp_requests.py`) with stale
sticky parameters and zero to three mutations: headers missing, two spellings of one name
with different values, non-ASCII values (UTF-8 and the Java SDK's one byte per character),
huge values, a sign-header that is not the JSON the SDK writes but is MACed with the right
secret, wrongly typed and validly signed nonsensical parameters, wrong methods, unknown
operations. Every answer must be:

- never a 5xx (503 only when the database is down, which is not tested here);
- for `downloadEdoc`, the document (200, non-empty) or an error status with an **empty**
  body and the reason in `X-Lienthong-Error-Code` (the SDK saves any non-empty body);
- for every other operation, an answer the SDK parses (`sdk_parse`: every field present with
  its type), its `ErrorDesc` ASCII (the SDK's users see nothing else);
- 15 when a mutation made authentication impossible;

and nothing may be logged at ERROR while the node answers.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.api.vxp_answers import OPERATION_FIELDS
from tests.support.fuzzing import error_log, fuzz, record
from tests.support.nodes import Node
from tests.support.polling import poll_until
from tests.support.sdk import ENVELOPE, SdkParseError, StickySdkClient, sdk_parse
from tests.support.vxp_requests import (
    OPERATIONS,
    VxpRequest,
    World,
    mutated_request,
    small_document,
)

EXAMPLES = 500
SENDER, RECEIVER = "000.00.01.H53", "000.00.02.H53"


@pytest.fixture
async def world(node: Node) -> World:
    """Two systems and one package delivered from one to the other, so that signed ids in
    the fuzzed requests can name things that exist (made once for all examples)."""
    sender = await node.add_system("fuzz.sender", SENDER)
    receiver = await node.add_system("fuzz.receiver", RECEIVER)
    sent = await sender.send_edoc(small_document(SENDER, [RECEIVER]), SENDER)
    assert sent["status"] == "OK", sent
    [item] = await poll_until(receiver, 1)
    return World(
        sender.system_id,
        sender._secret,
        receiver.system_id,
        receiver._secret,
        SENDER,
        RECEIVER,
        message_ids=[str(sent["DocId"])],
        delivery_ids=[item["docId"]],
    )


async def send(node: Node, request: VxpRequest) -> httpx.Response:
    built = node.http.build_request(
        request.method, f"/vxp/{request.operation}", content=request.body
    )
    built.headers = httpx.Headers(request.headers())
    built.headers["Content-Length"] = str(len(request.body))
    return await node.http.send(built)


def routed(request: VxpRequest) -> bool:
    """The request reaches an operation's handler (not the router's 404/405)."""
    if request.operation not in OPERATIONS:
        return False
    method = OPERATIONS[request.operation][0]
    return request.method == method or (
        request.operation == "getEdoc" and request.method in ("GET", "POST")
    )


def check_answer(request: VxpRequest, response: httpx.Response) -> str:
    """The properties of every answer; returns its ErrorCode."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if request.operation == "downloadEdoc":
        if response.status_code == 200:
            assert response.content, "a 200 downloadEdoc with an empty body"
            return "0"
        assert response.content == b"", (
            f"downloadEdoc refused with a body the SDK would save: {response.content[:200]!r}"
        )
        code = response.headers.get("x-lienthong-error-code", "")
        assert code, response.headers
        return code
    body = response.json()
    operation = request.operation if request.operation in OPERATION_FIELDS else None
    try:
        if operation is not None:
            sdk_parse(operation, body)
        else:
            sdk_parse("updateStatus", {**body})  # an unknown operation: the envelope
    except SdkParseError as error:
        raise AssertionError(f"{error} (request changes: {request.changes})") from None
    assert set(ENVELOPE) <= set(body)
    assert body["ErrorDesc"].isascii(), body["ErrorDesc"]
    assert (body["status"] == "OK") == (body["ErrorCode"] == "0"), body
    return str(body["ErrorCode"])


@fuzz(EXAMPLES)
@given(data=st.data())
async def test_vxp_headers(node: Node, world: World, data: st.DataObject) -> None:
    request = data.draw(mutated_request(world), label="request")
    with error_log() as errors:
        response = await send(node, request)
        code = check_answer(request, response)
        logged = errors.take()
    assert not logged, logged
    broken = request.breaks_auth + (
        []
        if request.mac_matches(world.secret_of(request.system_id))
        else ["HMAC not made with the system's secret"]
    )
    if broken and routed(request):
        assert code == "15", (broken, request.changes, response.text[:300])
    record("vxp", request.operation, f"{response.status_code} {code}")


# -- what this fuzzer found, pinned ----------------------------------------------------------


@pytest.mark.parametrize(
    "operation, name, value",
    [
        ("getAgenciesListQD20", "level", "99999999999999999999"),
        ("getAgenciesListQD20", "level", "3000000000"),
        ("getAgenciesListQD20", "level", "9" * 5000),
        ("getSynchronizeUnit", "fromVersion", "99999999999999999999"),
        ("getReceivedEdocList", "toDate", "9999-12-31"),
        ("getReceivedEdocList", "fromDate", "0001-01-01"),
        ("getReceivedEdocList", "toDate", "31/12/9999 23:59:59"),
    ],
)
async def test_out_of_range_parameters_are_refused_with_27(
    node: Node, world: World, operation: str, name: str, value: str
) -> None:
    """Found: an unbounded `level`/`fromVersion` reached the database as a number no column
    holds (SQLite: OverflowError, a 500; PostgreSQL: a 32-bit column failed like a lost
    connection, 503), `toDate: 9999-12-31` as a whole day overflowed Python's dates (500),
    and 5 000 digits overflowed int() (500)."""
    client = StickySdkClient(node.http, world.sender_id, world.sender_secret)
    answer = await client.parsed(operation, {name: value, "messagetype": "edoc"})
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "27"), answer
    assert name in answer["ErrorDesc"]


async def test_a_system_id_no_system_can_have_is_a_stranger(node: Node, world: World) -> None:
    """A NUL in `XroadVnpt-systemid` (or a REST bearer, or an operator name) made the
    credential lookup itself refused as unstorable text (27/400), not as authentication
    (15/401); ids no system can have are now strangers without a database lookup."""
    headers = [
        (b"XroadVnpt-systemid", b"fuzz.sender\x00"),
        (b"XroadVnpt-sign-header", b'{"XroadVnpt-systemid":"fuzz.sender\\u0000"}'),
        (b"XroadVnpt-hash-header", b"00"),
    ]
    built = node.http.build_request("POST", "/vxp/countReceiveEdoc", content=b"{}")
    built.headers = httpx.Headers(headers)
    answer = sdk_parse("countReceiveEdoc", (await node.http.send(built)).json())
    assert answer["ErrorCode"] == "15", answer
    rest = await node.http.get(
        "/api/v1/inbox", headers={"Authorization": f"Bearer a\x00b:{world.sender_secret}"}
    )
    assert rest.status_code == 401, rest.text
    operator = await node.http.get(
        "/api/v1/operator/whoami", headers={"Authorization": "Bearer a\x00b:token"}
    )
    assert operator.status_code == 401, operator.text


@pytest.mark.parametrize("name", ["a\x00b", "a\ud800b"], ids=["nul", "surrogate"])
async def test_register_agency_with_text_no_database_holds_is_27(
    node: Node, world: World, name: str
) -> None:
    """Found with the API fuzzer's strings: registerAgency's JSON body is free text, and a
    `\\u0000` (PostgreSQL: 503) or a lone `\\ud800` (PostgreSQL: 503, SQLite: 500) in it
    failed the insert."""
    client = StickySdkClient(node.http, world.sender_id, world.sender_secret)
    unit = {
        "id": "",
        "pcode": world.sender_id,
        "code": "000.00.01.H53",
        "name": name,
        "mail": "",
        "mobile": "",
        "fax": "",
    }
    answer = await client.parsed("registerAgency", body=json.dumps(unit).encode())
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "27"), answer
