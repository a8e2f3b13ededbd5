"""What a package's text must fit into before it is stored: the widths of the columns.

The edXML rules leave most lengths to warnings (SPEC §2.1: real traffic exceeds the observed
limits), so a 1 001-character AttachmentName or a 250-character DocumentId passes them. The
columns that hold those values are bounded: PostgreSQL refused such a row like a lost
connection (503, "retry" — forever), while SQLite, which does not enforce widths, stored it.
A value wider than its column is refused here instead, on both backends alike, as a package
problem that names the element (a DocumentId, Code or content id that long is malformed; a
name that long is beyond any real file name), before the transaction starts.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Column

from adapters.db.models import Message, MessageLink, StoredAttachment
from gateway.errors import Problem, ValueTooLong
from gateway.records import NewMessage
from gateway.types import MessageKind


def width(column: Column[str] | object) -> int:
    length = getattr(getattr(column, "type", None), "length", None)
    assert isinstance(length, int), column
    return length


def _too_long(value: str | None, column: object, path: str) -> Iterator[Problem]:
    limit = width(column)
    if value is not None and len(value) > limit:
        yield Problem(
            "EDXML_TOO_LONG_TO_STORE",
            path,
            f"{len(value)} characters; this node stores at most {limit} here",
        )


def _problems(new: NewMessage) -> Iterator[Problem]:
    package = new.package
    status = new.kind is MessageKind.STATUS
    header = "MessageHeader/ResponseFor" if status else "MessageHeader"
    document_path = f"{header}/DocumentId"
    # The duplicate key is `<from>|<DocumentId>[|<type>|<sha256>]`: one element, one problem.
    yield from (
        list(_too_long(package.document_id, Message.__table__.c.document_id, document_path))
        or _too_long(new.dedup_key, Message.__table__.c.dedup_key, document_path)
    )
    code = f"{header}/Code" if status else f"{header}/Code/CodeNumber"
    yield from _too_long(package.code_number, Message.__table__.c.code_number, code)
    notation = f"{header}/Code" if status else f"{header}/Code/CodeNotation"
    yield from _too_long(package.code_notation, Message.__table__.c.code_notation, notation)
    for attachment in new.attachments:
        base = f"AttachmentEncoded/Attachment[{attachment.position}]"
        yield from _too_long(
            attachment.content_id, StoredAttachment.__table__.c.content_id, f"{base}/ContentId"
        )
        yield from _too_long(
            attachment.name, StoredAttachment.__table__.c.name, f"{base}/AttachmentName"
        )
        yield from _too_long(
            attachment.content_type,
            StoredAttachment.__table__.c.content_type,
            f"{base}/ContentType",
        )
    if new.business is not None:
        link = MessageLink.__table__.c.target_document_id
        yield from _too_long(
            new.business.target_document_id, link, "TraceHeaderList/Bussiness/DocumentId"
        )
        for index, key in enumerate(new.business.replaced_keys, start=1):
            yield from _too_long(
                key.partition("|")[2],
                link,
                "TraceHeaderList/Bussiness/"
                f"ReplacementInfoList/ReplacementInfo[{index}]/DocumentId",
            )


def check_fits(new: NewMessage) -> None:
    """Refuse, naming each element, a package with a value wider than its column."""
    problems = list(_problems(new))
    if problems:
        first = problems[0]
        raise ValueTooLong(f"{first.path}: {first.message}", problems=problems)
