"""What a parsed package asks of the store, read off its typed model.

Acceptance needs the same few facts of every package — its business or status act, the
recipients it names (and those a `to` header picks), its duplicate key, its attachments, and
when the sender signed — and the command line's `edxml` tools need the signing time too; kept
apart from the submission pipeline so each is read one way everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.edxml.model import BusinessType, DocumentPackage, ReceiverType, StatusPackage
from gateway.edxml.parser import ParsedPackage
from gateway.edxml.trace_list import sender_trace
from gateway.errors import Problem, RecipientNotInPackage
from gateway.records import AttachmentRecord, BusinessAct, StatusAct
from gateway.types import AgencyCode, MessageKind

CLOCK_SKEW = timedelta(minutes=5)
"""How far a sender's clock may run ahead of ours before its signing time is not believed."""


def signing_time(
    package: ParsedPackage,
    received: datetime | None = None,
    tolerance: timedelta = timedelta(days=7),
    set_aside: int = 0,
) -> datetime:
    """When the sender signed: its own TraceHeader's timestamp (SPEC §2.1; which TraceHeader
    is the sender's: `trace_list.sender_trace`, never one without an OrganId). Without one
    that can be read, the check is made at receipt.

    That time is the sender's claim, so a certificate that has expired or was revoked could
    be made to look valid by backdating it: a claim older than `tolerance` before receipt,
    or later than receipt, is not believed and the check is made at receipt instead.

    The last `set_aside` TraceHeaders were appended after signing (the signature verified
    without them): whoever wrote them, their times are no claim of the sender's."""
    received = received or datetime.now(UTC)
    traces = package.model.traces
    trace = sender_trace(traces[: len(traces) - set_aside], package.from_code)
    claimed = trace.timestamp if trace is not None else None
    if claimed is None or not received - tolerance <= claimed <= received + CLOCK_SKEW:
        return received
    return claimed


def status_act(package: ParsedPackage) -> StatusAct | None:
    """Whose flow a status belongs to: the sender's own, or for a recall request (13, sent by
    the original sender) the recipient it names."""
    model = package.model
    if not isinstance(model, StatusPackage):
        return None
    header = model.header
    code = header.status_code.value
    responder, named = header.from_.organ_id, header.response_for.organ_id or ""
    original_sender, recipient = (responder, named) if code == "13" else (named, responder)
    return StatusAct(
        code=code,
        document_id=header.response_for.document_id or "",
        original_sender=original_sender,
        recipient=recipient,
        code_number=package.code_number,
        code_notation=package.code_notation,
    )


def business_act(package: ParsedPackage) -> BusinessAct | None:
    model = package.model
    if not isinstance(model, DocumentPackage) or model.business_type is BusinessType.NEW:
        return None
    sender = model.header.from_.organ_id
    info = model.business.business_document_info if model.business else None
    removed = frozenset(
        r.organ_id
        for r in (info.receivers if info else [])
        if r.receiver_type is ReceiverType.REMOVED
    )
    replaced = tuple(
        f"{sender}|{r.document_id}" for r in (model.business.replacements if model.business else [])
    )
    return BusinessAct(
        kind=model.business_type,
        target_document_id=model.target_document_id,
        target_key=f"{sender}|{model.target_document_id}",
        removed=removed,
        replaced_keys=replaced,
    )


def named_recipients(package: ParsedPackage) -> list[tuple[AgencyCode, str]]:
    """(code, element path) of every recipient the package names: To (or ResponseFor for a
    status) and, for an update, the receivers it adds or removes."""
    model = package.model
    if not isinstance(model, DocumentPackage):
        return [(package.to_codes[0], "MessageHeader/ResponseFor/OrganId")]
    named = [
        (AgencyCode(to.organ_id), f"MessageHeader/To[{i}]/OrganId")
        for i, to in enumerate(model.header.to, start=1)
    ]
    info = model.business.business_document_info if model.business else None
    if model.business_type is BusinessType.UPDATE and info is not None:
        base = "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver"
        named += [
            (AgencyCode(r.organ_id), f"{base}[{i}]/OrganId")
            for i, r in enumerate(info.receivers, start=1)
            if all(r.organ_id != code for code, _ in named)
        ]
    return named


def only_declared(
    named: list[tuple[AgencyCode, str]], declared_to: tuple[str, ...] | None
) -> list[tuple[AgencyCode, str]]:
    """The recipients a `to` header picks out of those the package names; each code it lists
    must be one of them (a node must never deliver to an agency the sender did not name)."""
    if declared_to is None:
        return named
    codes = {code for code, _ in named}
    strangers = [code for code in declared_to if code not in codes]
    if strangers:
        raise RecipientNotInPackage(
            f"header 'to' lists {', '.join(strangers)}, not a recipient of the package",
            problems=[
                Problem(
                    "TO_NOT_IN_PACKAGE", "XroadVnpt-to", f"{code} is not named in MessageHeader/To"
                )
                for code in strangers
            ],
        )
    return [(code, path) for code, path in named if code in declared_to]


def dedup_key(package: ParsedPackage, sha256: str) -> str | None:
    """A new document is a duplicate by DocumentId; a business act by its exact bytes (the
    same revocation sent twice); statuses are checked by their flow (issue #5)."""
    if package.kind is not MessageKind.EDOC:
        return None
    key = f"{package.from_code}|{package.document_id}"
    return key if package.business_type == 0 else f"{key}|{package.business_type}|{sha256}"


def attachment_records(package: ParsedPackage) -> tuple[AttachmentRecord, ...]:
    if not isinstance(package.model, DocumentPackage):
        return ()
    return tuple(
        AttachmentRecord(
            position=scanned.index,
            content_id=declared.content_id,
            name=declared.attachment_name,
            description=declared.description,
            content_type=declared.content_type,
            size=scanned.size,
            sha256=scanned.sha256,
        )
        for scanned, declared in zip(package.attachments, package.model.attachments, strict=True)
    )
