"""Content-addressed payload files: `<root>/ab/cd/<sha256>`, written once, never modified.

Bytes are evidence (signed PDFs inside, SPEC §2.1): they are stored exactly as received and a
second copy of the same package costs nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from gateway.types import Sha256Hex


class FilePayloadStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: Sha256Hex) -> Path:
        return self._root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: Sha256Hex) -> bool:
        return self.path_of(sha256).exists()

    def put_file(self, path: Path, sha256: Sha256Hex) -> None:
        """Move a spooled, already-hashed file in place; fsync first so a crash right after
        the database commit cannot leave a message whose bytes are gone."""
        target = self.path_of(sha256)
        if target.exists():
            path.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(path, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def check_writable(self) -> None:
        """Write, sync and remove a probe file in the store's root (readiness: a full or
        read-only disk, or a shared mount that went away, fails here)."""
        probe = self._root / f".probe-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"ok")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)

    def read(self, sha256: Sha256Hex) -> bytes:
        return self.path_of(sha256).read_bytes()
