"""Spooling a request body: hashing on the way, the SDK's CRLF and hex, the size limit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.errors import BodyIntegrityFailed, InvalidRequest, PackageTooLarge
from gateway.spool import SpooledBody, sdk_hex, spool_body
from tests.support.samples import SAMPLES, WIRE

CRLF = b"\r\n"
LIMIT = 1_000_000

Render = Callable[[bytes], str]
RENDERINGS: list[Render] = [sdk_hex, bytes.hex]


async def chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class Endless:
    """A client that never stops sending; counts how much the server asked for."""

    def __init__(self, chunk: bytes) -> None:
        self.chunk = chunk
        self.served = 0

    def __aiter__(self) -> Endless:
        return self

    async def __anext__(self) -> bytes:
        self.served += 1
        return self.chunk


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def short_hex_file() -> bytes:
    """A small package whose digest has a byte below 0x10, so SDK hex differs from plain hex."""
    for n in range(1000):
        content = f'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">{n}</edXML>'.encode()
        digest = sha256(content)
        if any(byte < 0x10 for byte in digest) and any(byte >= 0x10 for byte in digest):
            return content
    raise AssertionError("no such content among the first 1000 candidates")


FILE = short_hex_file()


async def spool(data: bytes, directory: Path, chunk: int = 4096, limit: int = LIMIT) -> SpooledBody:
    return await spool_body(chunks(data, chunk), directory, limit)


def test_sdk_hex_drops_leading_zeros_per_byte() -> None:
    assert sdk_hex(bytes([0x0D, 0xAB, 0x00, 0x10])) == "dab010"
    assert sdk_hex(sha256(FILE)) != sha256(FILE).hex()
    assert len(sdk_hex(sha256(FILE))) < 64


async def test_wire_capture_body_is_stored_without_the_sdk_crlf(tmp_path: Path) -> None:
    send = json.loads((WIRE / "requests.jsonl").read_text().splitlines()[0])
    declared = dict(send["headers"])["XroadVnpt-hash-file"]
    original = (SAMPLES / "edoc_new.edxml").read_bytes()
    body = await spool((WIRE / send["body_file"]).read_bytes(), tmp_path, chunk=65536)
    body.keep_matching(declared)
    assert body.path.read_bytes() == original
    assert (body.size, body.sha256) == (len(original), hashlib.sha256(original).hexdigest())


@pytest.mark.parametrize("render", RENDERINGS, ids=["sdk-hex", "plain-hex"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 4096])
async def test_sdk_crlf_is_cut_when_the_hash_is_of_the_file(
    tmp_path: Path, render: Render, chunk: int
) -> None:
    body = await spool(FILE + CRLF, tmp_path, chunk)
    assert body.size == len(FILE) + 2
    body.keep_matching(render(sha256(FILE)))
    assert body.path.read_bytes() == FILE
    assert (body.size, body.sha256, body.digest) == (len(FILE), sha256(FILE).hex(), sha256(FILE))


@pytest.mark.parametrize("render", RENDERINGS, ids=["sdk-hex", "plain-hex"])
async def test_body_matching_with_its_crlf_keeps_it(tmp_path: Path, render: Render) -> None:
    sent = FILE + CRLF
    body = await spool(sent, tmp_path, chunk=5)
    body.keep_matching(render(sha256(sent)))
    assert body.path.read_bytes() == sent
    assert (body.size, body.sha256) == (len(sent), sha256(sent).hex())


async def test_body_without_crlf_is_kept_as_sent(tmp_path: Path) -> None:
    body = await spool(FILE, tmp_path)
    assert body.digest_without_crlf is None
    body.keep_matching(sdk_hex(sha256(FILE)))
    assert body.path.read_bytes() == FILE and body.size == len(FILE)


@pytest.mark.parametrize("position", [0, len(FILE) // 2, len(FILE) - 1])
async def test_one_changed_byte_is_refused(tmp_path: Path, position: int) -> None:
    altered = bytearray(FILE)
    altered[position] ^= 0x01
    body = await spool(bytes(altered) + CRLF, tmp_path)
    for declared in (sdk_hex(sha256(FILE)), sha256(FILE).hex()):
        with pytest.raises(BodyIntegrityFailed):
            body.keep_matching(declared)
    assert body.path.read_bytes() == bytes(altered) + CRLF


async def test_oversize_body_is_refused_while_streaming(tmp_path: Path) -> None:
    sender = Endless(b"x" * 1024)
    with pytest.raises(PackageTooLarge) as caught:
        await spool_body(sender, tmp_path / "spool", 10 * 1024)
    assert "10240" in caught.value.detail
    assert caught.value.extra["limit"] == 10 * 1024
    assert sender.served == 11
    assert list((tmp_path / "spool").iterdir()) == []


async def test_limit_leaves_room_for_the_sdk_crlf_only(tmp_path: Path) -> None:
    exact = await spool(b"x" * 100 + CRLF, tmp_path, chunk=7, limit=100)
    exact.keep_matching(sdk_hex(sha256(b"x" * 100)))
    assert exact.size == 100
    with pytest.raises(PackageTooLarge):
        await spool(b"x" * 103, tmp_path, chunk=7, limit=100)


async def test_body_over_the_limit_without_crlf_is_refused(tmp_path: Path) -> None:
    # The two bytes of slack are for the SDK's CRLF; a package of limit + 1 bytes is too large.
    with pytest.raises(PackageTooLarge):
        await spool(b"x" * 101, tmp_path, chunk=7, limit=100)


@pytest.mark.parametrize("empty_chunks", [0, 3])
async def test_empty_body_is_an_invalid_request(tmp_path: Path, empty_chunks: int) -> None:
    async def nothing() -> AsyncIterator[bytes]:
        for _ in range(empty_chunks):
            yield b""

    with pytest.raises(InvalidRequest):
        await spool_body(nothing(), tmp_path / "spool", LIMIT)
    assert list((tmp_path / "spool").iterdir()) == []
