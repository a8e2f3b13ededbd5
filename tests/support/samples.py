"""The sample packages of ../shared/samples and builders of fresh packages from them."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared"
SAMPLES = SHARED / "samples" / "vpcp-sdk"
WIRE = SHARED / "samples" / "vxp-wire"

_MESSAGE_DOCUMENT_ID = re.compile(
    rb"(<edXML:MessageHeader>.*?<edXML:DocumentId>)(.*?)(</edXML:DocumentId>)", re.S)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def document(sender: str, recipients: list[str], document_id: str | None = None) -> bytes:
    """A new document built from edoc_new.edxml (its 360 KB attachment included), with the
    given sender, recipients and a fresh DocumentId unless one is given."""
    package = sample("edoc_new.edxml").replace(b"000.00.00.A80", sender.encode())
    to_block = re.search(rb"\s*<edXML:To>.*?</edXML:To>", package, re.S)
    assert to_block is not None
    blocks = b"".join(to_block.group(0).replace(b"28.22.H17", code.encode())
                      for code in recipients)
    package = package.replace(to_block.group(0), blocks)
    new_id = (document_id or f"{sender},2026/11/20,{uuid.uuid4().hex[:8]}/TEST").encode()
    return _MESSAGE_DOCUMENT_ID.sub(lambda m: m.group(1) + new_id + m.group(3), package, 1)


def status(sender: str, original_sender: str, document_id: str, code: str = "01") -> bytes:
    """A status package answering `document_id` from status_inbox_01.edxml."""
    package = sample("status_inbox_01.edxml")
    package = package.replace(b"000.00.00.H41", sender.encode())
    package = package.replace(b"000.00.00.G22,2015/09/30,7816/VPCP-TT\xc4\x90T",
                              document_id.encode())
    package = package.replace(b"000.00.00.G22", original_sender.encode())
    return package.replace(b"<edXML:StatusCode>01<", f"<edXML:StatusCode>{code}<".encode())
