"""POSTing packages to systems that take pushes (webhooks).

Each request is signed like the national axis signs its headers, with the system's own
secret: `X-Lienthong-Signature` = hex HMAC-SHA256(secret,
"<timestamp>.<delivery id>.<sha256 of the body>"), so the receiver can check origin,
freshness and content before storing anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import httpx

from gateway.records import PushResult


def push_signature(secret: str, timestamp: str, delivery_id: str, body_sha256: str) -> str:
    message = f"{timestamp}.{delivery_id}.{body_sha256}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _sha256(chunks: Callable[[], Iterator[bytes]]) -> tuple[hashlib._Hash, int]:
    """Digest and size of the body, in one pass."""
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks():
        digest.update(chunk)
        size += len(chunk)
    return digest, size


class PushClient:
    def __init__(self, timeout: float) -> None:
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)

    async def close(self) -> None:
        await self._http.aclose()

    async def push(
        self, url: str, secret: str, chunks: Callable[[], Iterator[bytes]], headers: dict[str, str]
    ) -> PushResult:
        """POST the body `chunks()` yields (called twice: once to hash, in a thread, once to
        send, so a 100 MiB package is never held whole). Any 2xx is delivered; the rest is a
        failure.

        The body is streamed with a `Content-Length` (known from the first pass), never
        chunked: a receiver that reads Content-Length bytes, as plain HTTP servers and
        frameworks do, read 0 bytes of a chunked push and still answered 200."""
        digest, size = await asyncio.to_thread(_sha256, chunks)
        timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        signed = {
            **headers,
            "Content-Length": str(size),
            "X-Lienthong-Timestamp": timestamp,
            "X-Lienthong-Content-SHA256": digest.hexdigest(),
            "X-Lienthong-Signature": push_signature(
                secret, timestamp, headers["X-Lienthong-Delivery-Id"], digest.hexdigest()
            ),
        }

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks():
                yield chunk

        try:
            response = await self._http.post(url, content=body(), headers=signed)
        except httpx.HTTPError as error:
            return PushResult(False, f"{type(error).__name__}: {error}"[:500])
        if 200 <= response.status_code < 300:
            return PushResult(True, f"HTTP {response.status_code}")
        return PushResult(False, f"HTTP {response.status_code}: {response.text[:300]}")
