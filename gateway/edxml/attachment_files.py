"""An attachment decoded to disk as its base64 streams past (`scanner.py` feeds it).

A 100 MiB package is almost all base64 in `ContentTransferEncoded`: decoding it in batches
into a file, hashed on the way, keeps memory flat whatever the size. A decoding error marks
the attachment broken (reported once, by the scanner) and the rest of its text is skipped.
"""

from __future__ import annotations

import binascii
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

BASE64_BATCH = 1 << 18  # decode this many characters at a time (a multiple of 4)


@dataclass
class ScannedAttachment:
    """One `AttachmentEncoded/Attachment`, its bytes decoded to `path`."""

    index: int
    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    size: int = 0
    sha256: str = ""
    _hasher: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
    _pending: bytearray = field(default_factory=bytearray, repr=False)
    _handle: BinaryIO | None = field(default=None, repr=False)
    _broken: bool = field(default=False, repr=False)

    def open(self, work_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=work_dir, prefix="att-")
        self.path = Path(name)
        self._handle = os.fdopen(fd, "wb")

    def feed(self, text: str) -> str | None:
        """Take more base64 text; the reason it is not base64, the first time it is not."""
        if self._broken:
            return None
        self._pending += text.encode("ascii", "replace").translate(None, b" \t\r\n")
        usable = len(self._pending) // 4 * 4
        return self._decode(usable) if usable >= BASE64_BATCH else None

    def close(self) -> str | None:
        """Decode what is left and close the file; the reason it is broken, if newly so."""
        reason = None
        if not self._broken:
            if len(self._pending) % 4:
                self._broken = True
                reason = "its length is not a multiple of 4 (truncated?)"
            elif self._pending:
                reason = self._decode(len(self._pending))
        assert self._handle is not None
        self._handle.close()
        self._handle = None
        self.sha256 = self._hasher.hexdigest()
        return reason

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _decode(self, usable: int) -> str | None:
        chunk = bytes(self._pending[:usable])
        del self._pending[:usable]
        try:
            decoded = binascii.a2b_base64(chunk, strict_mode=True)
        except binascii.Error as error:
            self._broken = True
            return str(error)
        assert self._handle is not None
        self._handle.write(decoded)
        self._hasher.update(decoded)
        self.size += len(decoded)
        return None
