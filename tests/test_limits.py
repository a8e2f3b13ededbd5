"""Issue 9, memory before authentication and the small holes of bodies: request heads are
limited by the server (size, field count) before anything buffers them; JSON bodies are read
only after authentication and capped; a package body's Content-Type and Content-Length are
checked before a byte of it is read."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.vxp_client import sdk_hex
from gateway.runtime import build_store
from gateway.services.directory import add_system
from tests.support.nodes import Backing, Node
from tests.support.operators import add_operator
from tests.support.processes import serving
from tests.support.raw_http import RawConnection, head, rss_bytes
from tests.support.samples import document

MIB = 1 << 20
SENDER, RECEIVER = "000.00.01.H57", "000.00.02.H57"
OPERATOR_API = "/api/v1/operator"


class CountingBody:
    """A request body produced on demand; `pulled` says how much the server asked for."""

    def __init__(self, chunk: bytes, chunks: int) -> None:
        self.chunk, self.chunks, self.pulled = chunk, chunks, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += len(self.chunk)
            yield self.chunk


async def register(backing: Backing, system_id: str, *serves: str) -> str:
    store = build_store(backing.settings())
    try:
        return await add_system(store, system_id, serves)
    finally:
        await store.close()


# -- request heads, at the server ------------------------------------------------------------


@pytest.mark.backends("embedded")  # the HTTP protocol layer: the same on every backend
async def test_huge_headers_are_refused_at_once_and_memory_stays_flat(backing: Backing) -> None:
    """The attack: eight requests with a 32 MiB XroadVnpt-sign-header took the process from
    127 to 752 MiB. Now each is refused after the first 64 KiB, and RSS does not move."""
    async with serving(backing.environment(), backing.data_dir / "gateway.log") as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            for _ in range(5):
                assert (await http.get("/healthz")).status_code == 200
            baseline = peak = rss_bytes(gateway.process.pid)
            sampling = True

            async def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, rss_bytes(gateway.process.pid))
                    await asyncio.sleep(0.02)

            async def attack() -> tuple[int, int | None]:
                connection = await RawConnection.open(gateway.port)
                try:
                    ok = await connection.send(
                        b"POST /vxp/sendEdoc HTTP/1.1\r\nHost: x\r\n"
                        b"XroadVnpt-systemid: x\r\n"
                        b"XroadVnpt-sign-header: "
                    )
                    for _ in range(32):
                        ok = ok and await connection.send(b"a" * MIB)
                    if ok:
                        await connection.send(b"\r\n\r\n")
                    status = None
                    with contextlib.suppress(
                        ConnectionError, asyncio.IncompleteReadError, TimeoutError
                    ):
                        status = (await connection.answer(timeout=10)).status
                    return connection.sent, status
                finally:
                    connection.close()

            sampler = asyncio.create_task(sample())
            started = asyncio.get_running_loop().time()
            results = await asyncio.wait_for(asyncio.gather(*(attack() for _ in range(8))), 60)
            elapsed = asyncio.get_running_loop().time() - started
            sampling = False
            await sampler
            assert (await http.get("/healthz")).status_code == 200
        growth = peak - baseline
        assert growth < 48 * MIB, f"RSS grew by {growth / MIB:.0f} MiB"
        for sent, status in results:
            # 431, or (usually: the client is still sending when the server closes) reset
            assert status in (None, 431), results
            assert sent < 32 * MIB, "the server read the whole 32 MiB header"
        assert elapsed < 30, f"refusing took {elapsed:.1f} s"


@pytest.mark.backends("embedded")
async def test_head_limits_answer_in_each_apis_shape(backing: Backing) -> None:
    secret = await register(backing, "sys.limits.sender", SENDER)
    env = backing.environment(max_header_bytes=32 * 1024, max_header_count=40)
    async with serving(env, backing.data_dir / "gateway.log") as gateway:
        # Too large, on /api/v1: problem+json, connection closed.
        connection = await RawConnection.open(gateway.port)
        await connection.send(head("GET", "/api/v1/inbox", {"X-Big": "a" * 40_000}))
        answer = await connection.answer()
        assert answer.status == 431 and answer.closed
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "HEADERS_TOO_LARGE"
        assert "32768 bytes (LIENTHONG_MAX_HEADER_BYTES)" in answer.json()["detail"]
        assert await connection.closed_by_server(5)

        # Too many fields, on /vxp: the operation's envelope, every field present.
        connection = await RawConnection.open(gateway.port)
        await connection.send(
            head("POST", "/vxp/sendEdoc", [(f"X-Field-{n}", "1") for n in range(41)])
        )
        answer = await connection.answer()
        assert answer.status == 431 and answer.closed
        assert answer.json() == {
            "status": "FAIL",
            "ErrorCode": "27",
            "DocId": "",
            "ErrorDesc": answer.json()["ErrorDesc"],
        }
        assert "more than 40 header fields" in answer.json()["ErrorDesc"]

        # The limit is exact, however the head is cut into reads.
        for extra, status in ((0, 200), (1, 431)):
            pad = 32 * 1024 - len(head("GET", "/healthz", {"X-Pad": ""})) + extra
            request = head("GET", "/healthz", {"X-Pad": "p" * pad})
            connection = await RawConnection.open(gateway.port)
            for cut in range(0, len(request), 10_000):
                await connection.send(request[cut : cut + 10_000])
                await asyncio.sleep(0.01)
            assert (await connection.answer()).status == status, extra
            connection.close()

        # Just under both limits: a normal request (the SDK's sign-header repeats every
        # XroadVnpt header, so heads of several KiB are ordinary).
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as http:
            near = {f"X-Field-{n}": "b" * 700 for n in range(30)}
            assert (await http.get("/healthz", headers=near)).status_code == 200

            # Framing that is not body inside a body (a 1 MiB chunked trailer) is refused
            # like a head, while the upload streams.
            connection = await RawConnection.open(gateway.port)
            await connection.send(
                head(
                    "POST",
                    "/api/v1/packages",
                    {
                        "Authorization": f"Bearer sys.limits.sender:{secret}",
                        "Content-Type": "application/xml",
                        "Transfer-Encoding": "chunked",
                    },
                )
            )
            await connection.send(b"5\r\n<edXM\r\n0\r\nX-Trailer: ")
            for _ in range(8):
                if not await connection.send(b"t" * (128 * 1024)):
                    break
            with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
                answer = await connection.answer()
                assert answer.status == 431, answer
            assert await connection.closed_by_server(5)
            connection.close()
            assert (await http.get("/healthz")).status_code == 200


# -- JSON bodies: authentication first, then a capped read ----------------------------------


async def test_strangers_json_bodies_are_refused_without_reading_them(node: Node) -> None:
    """The attack: a 400 MiB body to /inbox/{id}/ack was read whole (1.1 GiB RSS) and
    answered 400; operator replay and cancel alike. Now 401 (403 for a role that may not)
    comes first and the body is never asked for."""
    auditor = await add_operator(node, "aud.limits", "auditor")
    cases = [
        ("/api/v1/inbox/d-1/ack", {}, 401),
        (f"{OPERATOR_API}/replay", {}, 401),
        (f"{OPERATOR_API}/cancel", {"Authorization": "Bearer nobody:x"}, 401),
        (f"{OPERATOR_API}/replay", auditor, 403),
        (f"{OPERATOR_API}/cancel", auditor, 403),
    ]
    for path, headers, status in cases:
        body = CountingBody(b"x" * (256 * 1024), 256)  # 64 MiB if anyone reads it
        answer = await node.http.post(
            path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert body.pulled <= 256 * 1024, f"{path}: read {body.pulled} bytes of a refused body"


async def test_json_bodies_are_capped_and_typed(node: Node) -> None:
    receiver = await node.add_system("sys.limits.receiver", RECEIVER)
    auth = node.rest_headers(receiver)
    limit = 65_536  # LIENTHONG_MAX_JSON_BODY_BYTES's default
    # Declared too large: refused from the Content-Length, nothing read.
    declared = CountingBody(b" " * 65_536, 32)
    answer = await node.http.post(
        "/api/v1/inbox/d-1/ack",
        content=declared,
        headers={**auth, "Content-Type": "application/json", "Content-Length": str(2 * MIB)},
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["code"] == "REQUEST_TOO_LARGE" and str(limit) in answer.json()["detail"]
    assert declared.pulled == 0
    # Streamed (chunked) past the limit: refused as soon as it is exceeded.
    streamed = CountingBody(b" " * 16_384, 64)
    answer = await node.http.post(
        "/api/v1/inbox/d-1/ack",
        content=streamed,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413 and answer.json()["code"] == "REQUEST_TOO_LARGE"
    assert streamed.pulled <= limit + 16_384
    # Not JSON: the accepted type is named. Wrong JSON: every field's problem.
    answer = await node.http.post(
        "/api/v1/inbox/d-1/ack",
        content=b"status=done",
        headers={**auth, "Content-Type": "text/plain"},
    )
    assert answer.status_code == 415 and answer.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/json" in answer.json()["detail"]
    answer = await node.http.post("/api/v1/inbox/d-1/ack", json={"status": "maybe"}, headers=auth)
    assert answer.status_code == 400 and "body/status" in answer.json()["detail"]
    answer = await node.http.post("/api/v1/inbox/d-1/ack", json={"status": "done"}, headers=auth)
    assert answer.status_code == 404, answer.text  # well-formed: on to the delivery itself
    # The body stays documented.
    schema = (await node.http.get("/openapi.json")).json()
    ack = schema["paths"]["/api/v1/inbox/{delivery_id}/ack"]["post"]["requestBody"]
    assert ack["content"]["application/json"]["schema"]["required"] == ["status"]
    replay = schema["paths"][f"{OPERATOR_API}/replay"]["post"]["requestBody"]
    assert "reason" in replay["content"]["application/json"]["schema"]["properties"]


# -- package bodies: media type and declared length, before reading --------------------------


async def test_package_media_types_are_checked_and_named(node: Node) -> None:
    sender = await node.add_system("sys.limits.sender", SENDER)
    await node.add_system("sys.limits.receiver", RECEIVER)
    auth = node.rest_headers(sender)
    multipart = "multipart/form-data; boundary=xyz"
    answer = await node.http.post(
        "/api/v1/packages",
        content=document(SENDER, [RECEIVER]),
        headers={**auth, "Content-Type": multipart},
    )
    assert answer.status_code == 415, answer.text
    problem = answer.json()
    assert problem["code"] == "UNSUPPORTED_MEDIA_TYPE"
    for named in (
        "multipart/form-data",
        "application/octet-stream",
        "application/xml",
        "text/xml",
        "multipart form upload is not accepted",
    ):
        assert named in problem["detail"], problem["detail"]
    package = document(SENDER, [RECEIVER])
    refused = await sender.call(
        "sendEdoc",
        {
            "messagetype": "edoc",
            "from": SENDER,
            "hash-file": sdk_hex(hashlib.sha256(package).digest()),
        },
        package + b"\r\n",
        multipart,
    )
    assert refused["status"] == "FAIL" and refused["ErrorCode"] == "10", refused
    assert refused["DocId"] == "" and "application/octet-stream" in refused["ErrorDesc"]
    # What real clients send is accepted: the SDK's octet-stream, XML types, or nothing.
    for content_type in (
        "application/octet-stream",
        "application/xml",
        "text/xml; charset=utf-8",
        None,
    ):
        headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
        answer = await node.http.post(
            "/api/v1/packages", headers=headers, content=document(SENDER, [RECEIVER])
        )
        assert answer.status_code == 201, (content_type, answer.text)
    assert (await sender.send_edoc(document(SENDER, [RECEIVER]), SENDER))["status"] == "OK"


async def test_a_declared_length_over_the_limit_is_refused_before_reading(make_node: Any) -> None:
    """The attack: a body announcing more than LIENTHONG_MAX_PACKAGE_BYTES was refused only
    after ~108 MB had been read. Now its Content-Length refuses it."""
    node = await make_node(max_package_bytes=MIB)
    sender = await node.add_system("sys.limits.sender", SENDER)
    body = CountingBody(b"x" * 65_536, 64)
    answer = await node.http.post(
        "/api/v1/packages",
        content=body,
        headers={
            **node.rest_headers(sender),
            "Content-Type": "application/xml",
            "Content-Length": str(108 * 1000 * 1000),
        },
    )
    assert answer.status_code == 413 and answer.json()["code"] == "PACKAGE_TOO_LARGE"
    assert body.pulled == 0
    body = CountingBody(b"x" * 65_536, 64)
    headers = sender.signed_headers(
        {"messagetype": "edoc", "from": SENDER, "hash-file": "0" * 64}, "application/octet-stream"
    )
    response = await node.http.post(
        "/vxp/sendEdoc", content=body, headers={**headers, "Content-Length": str(108 * 1000 * 1000)}
    )
    answer = response.json()
    assert answer["status"] == "FAIL" and answer["ErrorCode"] == "10", answer
    assert answer["DocId"] == "" and str(MIB) in answer["ErrorDesc"]
    assert body.pulled == 0
