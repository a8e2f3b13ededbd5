"""Cut the small envelope document out of a scanned package, without reading its base64.

The scanner notes where the root start tag, the envelope and its end tag lie; this module reads
only those bytes back from the spool and adds a skeleton of each attachment (its small fields,
and an empty ContentTransferEncoded where the content was decoded to disk). lxml, the XSD and
the typed model then see a document of kilobytes whatever the package's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from gateway.edxml.attachment_files import ScannedAttachment
from gateway.edxml.namespaces import QCVN_NS
from gateway.edxml.trace import end_of_tag
from gateway.errors import PackageMalformed, Problem

ATTACHMENT_FIELDS = ("ContentId", "AttachmentName", "Description", "ContentType")
"""The small fields of an Attachment that the envelope document keeps."""


def envelope_document(
    source: Path,
    root: tuple[int, str],
    envelope: tuple[int, int],
    attachments: Sequence[ScannedAttachment],
    *,
    cap: int,
) -> bytes:
    """The root's start tag (for its namespace declarations), the envelope bytes as sent, and
    a skeleton of the attachments. `root` is (offset, qualified name) of the root start tag,
    `envelope` (start, offset of its end tag); no tag is read past `cap` bytes."""
    root_offset, root_qname = root
    start, end_tag = envelope
    # A tag is as long as expat let it be (the token watchdog): read each one until it ends
    # rather than guessing a window (a 64 KiB root tag, or an end tag padded with kilobytes of
    # spaces, is well-formed).
    with open(source, "rb") as handle:
        root_tag = _read_tag(handle, root_offset, cap)
        if root_tag.endswith(b"/>"):
            root_tag = root_tag[:-2] + b">"
        handle.seek(start)
        body = handle.read(end_tag - start) + _read_tag(handle, end_tag, cap)
    skeleton = b"".join(_attachment_skeleton(a) for a in attachments)
    if attachments:
        skeleton = (
            f'<AttachmentEncoded xmlns="{QCVN_NS}">'.encode() + skeleton + b"</AttachmentEncoded>"
        )
    return root_tag + body + skeleton + f"</{root_qname}>".encode()


def _attachment_skeleton(attachment: ScannedAttachment) -> bytes:
    parts = [
        f"<{name}>{_escape(attachment.fields[name])}</{name}>"
        for name in ATTACHMENT_FIELDS
        if name in attachment.fields
    ]
    if attachment.path is not None:
        parts.append("<ContentTransferEncoded/>")
    return ("<Attachment>" + "".join(parts) + "</Attachment>").encode()


def _read_tag(handle: BinaryIO, offset: int, cap: int) -> bytes:
    """The tag that starts at `offset`, read in pieces until it ends (at most `cap` bytes)."""
    handle.seek(offset)
    data = b""
    while len(data) < cap:
        piece = handle.read(1 << 16)
        if not piece:
            break
        data += piece
        try:
            return data[: end_of_tag(data, 0)]
        except ValueError:
            continue
    problem = Problem("XML_MALFORMED", "/", "a tag does not end")
    raise PackageMalformed(problem.message, problems=[problem])


def _escape(text: str) -> str:
    """Escape for element text; a CR is written as a reference or parsing would turn it into
    a line feed (XML end-of-line handling)."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )
