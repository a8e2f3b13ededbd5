"""Serving attachments: exact bytes, and the file inside a zipped one (SPEC §2.1 convention).

Files other than pdf/doc/docx/xls/zip are zipped before encoding and declared
`application/zip` while AttachmentName keeps the original name: the unzipped copy is offered
under that name. Zips come from senders, so the member's size is capped (zip bombs).
"""

from __future__ import annotations

import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from gateway.errors import InvalidRequest

CHUNK = 1 << 20


def is_zipped_original(content_type: str | None, name: str | None) -> bool:
    return (content_type or "").lower() == "application/zip" and PurePosixPath(
        name or ""
    ).suffix.lower() != ".zip"


MAX_SERVED_NAME = 200


def safe_file_name(name: str) -> str:
    """A sender's AttachmentName as a header may carry it: control characters (CR/LF would
    split the header) and path separators removed, length capped, never empty."""
    cleaned = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in "/\\")
    cleaned = cleaned.strip().strip(".")[:MAX_SERVED_NAME]
    return cleaned or "attachment"


def disposition(name: str) -> dict[str, str]:
    """RFC 6266/5987: long Vietnamese names survive as `filename*`, ASCII as `filename`."""
    name = safe_file_name(name)
    fallback = name.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    value = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
    return {"Content-Disposition": value}


def single_member(path: Path, limit: int) -> str:
    """The one file a zipped original holds, refusing archives that are not that shape or
    whose member would inflate past `limit`."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
    except zipfile.BadZipFile:
        raise InvalidRequest("the attachment is not a readable zip archive") from None
    if len(members) != 1:
        raise InvalidRequest(
            f"the zip holds {len(members)} files, not one: download it as it is (without unzip)"
        )
    if members[0].file_size > limit:
        raise InvalidRequest(
            f"the file inside is {members[0].file_size} bytes, over the "
            f"limit of {limit} (LIENTHONG_MAX_UNZIPPED_BYTES)"
        )
    return members[0].filename


def unzipped_chunks(path: Path, member: str) -> Iterator[bytes]:
    with zipfile.ZipFile(path) as archive, archive.open(member) as handle:
        while piece := handle.read(CHUNK):
            yield piece
