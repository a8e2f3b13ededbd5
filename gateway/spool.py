"""Receiving a body: streamed to a spool file, hashed on the way, size-limited (SPEC §3.1.1).

The VNPT SDK appends a CRLF to the file it sends and declares `hash-file` over the file without
it, written byte by byte without leading zeros (`0d` → `d`). Both digests are computed in one
pass by holding back the last two bytes, so the body is never read twice nor held in memory.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import BodyEmpty, BodyIntegrityFailed, PackageTooLarge, Problem
from gateway.types import Sha256Hex

CRLF = b"\r\n"


def sdk_hex(digest: bytes) -> str:
    """The SDK's `%x`-per-byte rendering of a digest."""
    return "".join(f"{byte:x}" for byte in digest)


@dataclass
class SpooledBody:
    path: Path
    size: int
    sha256: Sha256Hex
    digest: bytes
    digest_without_crlf: bytes | None
    """Digest of the body minus its final CRLF, when it ends with one."""
    limit: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def keep_matching(self, declared: str) -> None:
        """Keep the bytes `declared` (SDK or plain hex) describes: the body without its final
        CRLF when that is what matches, else the body as sent; refuse anything else."""
        declared = declared.strip().lower()
        if self.digest_without_crlf is not None and declared in (
            sdk_hex(self.digest_without_crlf),
            self.digest_without_crlf.hex(),
        ):
            os.truncate(self.path, self.size - len(CRLF))
            self.size -= len(CRLF)
            self.digest = self.digest_without_crlf
            self.sha256 = Sha256Hex(self.digest.hex())
            self.digest_without_crlf = None
            return
        if declared in (sdk_hex(self.digest), self.digest.hex()):
            if self.size > self.limit:  # the CRLF slack is for the SDK's CRLF only
                raise too_large(self.limit)
            return
        raise BodyIntegrityFailed(
            "XroadVnpt-hash-file does not match the SHA-256 of the body (with or without the "
            "trailing CRLF): the file was altered or truncated in transit"
        )


def too_large(limit: int) -> PackageTooLarge:
    return PackageTooLarge(
        f"the package exceeds the limit of {limit} bytes (LIENTHONG_MAX_PACKAGE_BYTES)",
        limit=limit,
        extra={"limit": limit},
    )


async def spool_body(
    chunks: AsyncIterator[bytes], spool_dir: Path, limit: int, slack: int = len(CRLF)
) -> SpooledBody:
    """Write the stream to a file, refusing it as soon as it exceeds `limit` (+ the SDK's CRLF)."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix="in-", suffix=".edxml")
    path = Path(name)
    hasher = hashlib.sha256()
    tail = b""
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit + slack:
                    raise too_large(limit)
                handle.write(chunk)
                data = tail + chunk
                hasher.update(data[: -len(CRLF)])
                tail = data[-len(CRLF) :]
        if size == 0:
            raise BodyEmpty(
                "the request body is empty",
                problems=[Problem("EMPTY_BODY", "/", "the body is empty: send the .edxml package")],
            )
        if size > limit and tail != CRLF:
            raise too_large(limit)
        full = hasher.copy()
        full.update(tail)
        digest = full.digest()
        return SpooledBody(
            path=path,
            size=size,
            sha256=Sha256Hex(digest.hex()),
            digest=digest,
            digest_without_crlf=hasher.digest() if tail == CRLF else None,
            limit=limit,
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
