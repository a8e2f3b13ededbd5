"""The sample packages of ../shared/samples and builders of fresh packages from them."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

SHARED = Path(__file__).resolve().parents[3] / "shared"
SAMPLES = SHARED / "samples" / "vpcp-sdk"
WIRE = SHARED / "samples" / "vxp-wire"
SAMPLE_DOCUMENTS = [
    "edoc_new.edxml",
    "edoc_revocation.edxml",
    "edoc_update.edxml",
    "edoc_replacement.edxml",
]
"""The kit's document packages: a new document, its revocation, update and replacement."""

_MESSAGE_DOCUMENT_ID = re.compile(
    rb"(<edXML:MessageHeader>.*?<edXML:DocumentId>)(.*?)(</edXML:DocumentId>)", re.S
)


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


_SIGNATURE = re.compile(rb"\s*<Signature>.*?</Signature>", re.S)


def document(sender: str, recipients: list[str], document_id: str | None = None) -> bytes:
    """A new, unsigned document built from edoc_new.edxml (its 360 KB attachment included),
    with the given sender, recipients and a fresh DocumentId unless one is given. The sample's
    own Signature is fake (truncated certificate) and is removed."""
    package = _SIGNATURE.sub(b"", sample("edoc_new.edxml"), count=1)
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%Y/%m/%d %H:%M:%S")
    package = package.replace(
        b"<edXML:Timestamp>2018/09/28 00:00:00</edXML:Timestamp>",
        f"<edXML:Timestamp>{now}</edXML:Timestamp>".encode(),
        1,
    )
    package = package.replace(b"000.00.00.A80", sender.encode())
    to_block = re.search(rb"\s*<edXML:To>.*?</edXML:To>", package, re.S)
    assert to_block is not None
    blocks = b"".join(to_block.group(0).replace(b"28.22.H17", code.encode()) for code in recipients)
    package = package.replace(to_block.group(0), blocks)
    new_id = (document_id or f"{sender},2026/11/20,{uuid.uuid4().hex[:8]}/TEST").encode()
    return _MESSAGE_DOCUMENT_ID.sub(lambda m: m.group(1) + new_id + m.group(3), package, 1)


def status(sender: str, original_sender: str, document_id: str, code: str = "01") -> bytes:
    """A status package answering `document_id` from status_inbox_01.edxml."""
    package = sample("status_inbox_01.edxml")
    package = package.replace(b"000.00.00.H41", sender.encode())
    package = package.replace(
        b"000.00.00.G22,2015/09/30,7816/VPCP-TT\xc4\x90T", document_id.encode()
    )
    package = package.replace(b"000.00.00.G22", original_sender.encode())
    return package.replace(b"<edXML:StatusCode>01<", f"<edXML:StatusCode>{code}<".encode())


def business(
    sender: str,
    recipients: list[str],
    target_document_id: str,
    kind: int,
    receivers: list[tuple[str, int]] | None = None,
    replaced: list[str] | None = None,
) -> bytes:
    """A revoke (1), update (2) or replace (3) package acting on `target_document_id`.

    Like real senders, a revocation or update repeats the original's DocumentId; an update
    lists receiver changes (code, 0 removed / 1 added); a replacement has its own DocumentId
    and names the documents it replaces."""
    own_id = None if kind == 3 else target_document_id
    package = document(sender, recipients, own_id)
    package = package.replace(
        b"<edXML:BussinessDocType>0<", f"<edXML:BussinessDocType>{kind}<".encode()
    )
    package = re.sub(
        rb"(<edXML:Bussiness>\s*<edXML:DocumentId>).*?(</edXML:DocumentId>)",
        lambda m: m.group(1) + target_document_id.encode() + m.group(2),
        package,
        count=1,
        flags=re.S,
    )
    extra = b""
    if receivers:
        extra += (
            b"<edXML:BussinessDocumentInfo><edXML:DocumentInfo>1</edXML:DocumentInfo>"
            b"<edXML:DocumentReceiver>1</edXML:DocumentReceiver><edXML:ReceiverList>"
            + b"".join(
                f"<edXML:Receiver><edXML:OrganId>{code}</edXML:OrganId>"
                f"<edXML:ReceiverType>{kind_}</edXML:ReceiverType>"
                f"</edXML:Receiver>".encode()
                for code, kind_ in receivers
            )
            + b"</edXML:ReceiverList></edXML:BussinessDocumentInfo>"
        )
    if replaced:
        organs = "".join(f"<edXML:OrganId>{code}</edXML:OrganId>" for code in recipients)
        extra += (
            b"<edXML:ReplacementInfoList>"
            + b"".join(
                f"<edXML:ReplacementInfo><edXML:DocumentId>{doc}</edXML:DocumentId>"
                f"<edXML:OrganIdList>{organs}</edXML:OrganIdList></edXML:ReplacementInfo>".encode()
                for doc in replaced
            )
            + b"</edXML:ReplacementInfoList>"
        )
    return package.replace(b"<edXML:StaffInfo>", extra + b"<edXML:StaffInfo>", 1)


def document_id_of(package: bytes) -> str:
    found = _MESSAGE_DOCUMENT_ID.search(package)
    assert found is not None
    return found.group(2).decode()
