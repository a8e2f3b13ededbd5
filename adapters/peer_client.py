"""A client of a peer node's `/vxp` (SPEC §3.5): this node talks to a peer exactly as an
agency system talks to a node, signed with the systemId and secret the peer gave it.

Sends stream the package (hashed first in a thread, then sent with a Content-Length, as
the push client does); other calls are small JSON answers. Transport failures become
`PeerUnreachable`; an answer is returned as the peer gave it, for the caller to judge.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from adapters.vxp_client import VxpClient, sdk_hex
from gateway.peers import PeerOperationMissing, PeerRecord, PeerUnreachable

Chunks = Callable[[], Iterator[bytes]]


def _digest(chunks: Chunks) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks():
        digest.update(chunk)
        size += len(chunk)
    return sdk_hex(digest.digest()), size


class PeerClient:
    def __init__(self, timeout: float) -> None:
        self._timeout = httpx.Timeout(timeout)
        self._clients: dict[tuple[str, str, str], tuple[httpx.AsyncClient, VxpClient]] = {}
        self._transports: dict[str, httpx.AsyncBaseTransport] = {}

    def attach(self, url: str, transport: httpx.AsyncBaseTransport) -> None:
        """Reach the peer at `url` through `transport` instead of the network: nodes that
        run in one process (the federation tests) talk HTTP to each other's app."""
        self._transports[url.rstrip("/")] = transport

    def _client(self, peer: PeerRecord, secret: str) -> tuple[httpx.AsyncClient, VxpClient]:
        key = (peer.url, peer.system_id, hashlib.sha256(secret.encode()).hexdigest())
        if key not in self._clients:
            http = httpx.AsyncClient(
                base_url=peer.url + "/",
                timeout=self._timeout,
                follow_redirects=False,
                transport=self._transports.get(peer.url),
            )
            self._clients[key] = (http, VxpClient(http, peer.system_id, secret, prefix=""))
        return self._clients[key]

    async def close(self) -> None:
        for http, _ in self._clients.values():
            await http.aclose()
        self._clients.clear()

    async def send_edoc(
        self,
        peer: PeerRecord,
        secret: str,
        chunks: Chunks,
        from_code: str,
        messagetype: str,
        to: list[str],
    ) -> dict[str, Any]:
        """`sendEdoc` as the SDK sends it (the body followed by its CRLF), with `to` naming
        the recipients behind this peer."""
        hash_file, size = await asyncio.to_thread(_digest, chunks)
        http, vxp = self._client(peer, secret)
        headers = vxp.signed_headers(
            {
                "messagetype": messagetype,
                "hash-file": hash_file,
                "from": from_code,
                "to": json.dumps(to),
            },
            "application/octet-stream",
        )
        headers["Content-Length"] = str(size + 2)

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks():
                yield chunk
            yield b"\r\n"

        try:
            response = await http.post("sendEdoc", content=body(), headers=headers)
        except httpx.HTTPError as error:
            raise PeerUnreachable(f"{type(error).__name__}: {error}"[:500]) from error
        return _answer(response)

    async def call(
        self,
        peer: PeerRecord,
        secret: str,
        operation: str,
        params: dict[str, str] | None = None,
        body: bytes = b"{}",
    ) -> dict[str, Any]:
        http, vxp = self._client(peer, secret)
        try:
            response = await http.post(
                operation,
                content=body,
                headers=vxp.signed_headers(params or {}, "application/json"),
            )
        except httpx.HTTPError as error:
            raise PeerUnreachable(f"{type(error).__name__}: {error}"[:500]) from error
        return _answer(response)


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code in (404, 405, 501):
        raise PeerOperationMissing(f"HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise PeerUnreachable(f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        answer = response.json()
    except ValueError as error:
        raise PeerUnreachable(
            f"HTTP {response.status_code}: not a JSON answer: {response.text[:200]!r}"
        ) from error
    if not isinstance(answer, dict):
        raise PeerUnreachable(f"HTTP {response.status_code}: answer is not a JSON object")
    return answer
