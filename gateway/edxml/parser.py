"""Reading edXML packages from untrusted bytes (SPEC §2.1–2.2): the whole pipeline.

prolog check (UTF-8, no DOCTYPE) → streaming scan (limits, attachments decoded to disk) →
the envelope into the typed model (any child order, by namespace and local name, never by
prefix) → XSD → the rules an XSD cannot say. All problems of a package are reported
together, each with the element path a clerk can fix.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

from lxml import etree

from gateway.edxml.attachment_files import ScannedAttachment
from gateway.edxml.model import (
    VIETNAM,
    Attachment,
    Business,
    DocumentHeader,
    DocumentPackage,
    ManifestReference,
    StatusHeader,
    StatusPackage,
    TraceHeader,
)
from gateway.edxml.paths import element_path
from gateway.edxml.reader import ModelReader, qcvn_child, qcvn_children
from gateway.edxml.rules import Findings, check_document, check_parties, check_status
from gateway.edxml.scanner import ScanLimits, Scanner
from gateway.edxml.schema import validate_envelope
from gateway.edxml.trace_list import read_traces
from gateway.errors import (
    DtdForbidden,
    EncodingInvalid,
    MessageHeaderMissing,
    PackageNotEdxml,
    PackageRejected,
    Problem,
    bounded,
)
from gateway.types import AgencyCode, MessageKind


def hardened_parser(*, recover: bool = False, huge_tree: bool = False) -> etree.XMLParser:
    """No DTD, no entity expansion, no network: untrusted XML can only be XML.

    `collect_ids` stays on: with it off, libxml2 was seen opening a local file named as the
    external DTD subset, which would let a sender probe the node's file system. `huge_tree`
    lifts libxml2's 10 MB text-node limit, for whole-package work (signatures) on bytes whose
    prolog `check_prolog` has already cleared (no DOCTYPE, so no entity can expand)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
        recover=recover,
    )


PROLOG_BYTES = 65_536
_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def check_prolog(head: bytes) -> None:
    """Refuse, before any parser sees them, what edXML never contains: another encoding than
    UTF-8 (SPEC §2.1) and a document type declaration (entity bombs, external subsets)."""
    if head.startswith(_UTF16_32_BOMS) or b"\x00" in head[:4]:
        raise _encoding_error("the package is not UTF-8 (UTF-16/32 byte order mark or NUL)")
    head = head.removeprefix(b"\xef\xbb\xbf")
    declared = _DECLARED_ENCODING.match(head)
    if declared and declared.group(1).upper().replace(b"_", b"-") not in (b"UTF-8", b"UTF8"):
        raise _encoding_error(
            f"the XML declaration says encoding={declared.group(1).decode()}; edXML must be UTF-8"
        )
    position = 0
    while (start := head.find(b"<", position)) >= 0:
        if head.startswith(b"<?", start):
            end, step = head.find(b"?>", start), 2
        elif head.startswith(b"<!--", start):
            end, step = head.find(b"-->", start), 3
        elif head[start : start + 9].upper() == b"<!DOCTYPE":
            raise DtdForbidden(
                "DTDs and entity declarations are not allowed",
                problems=[Problem("XML_DTD_FORBIDDEN", "/", "remove the DOCTYPE")],
            )
        else:
            return  # the root element: the prolog is over
        if end < 0:
            return  # unterminated prolog item: the parser reports it precisely
        position = end + step


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(PROLOG_BYTES)


def _encoding_error(message: str) -> PackageRejected:
    return EncodingInvalid(message, problems=[Problem("XML_ENCODING", "/", message)])


@dataclass(frozen=True, slots=True)
class ParsedPackage:
    """A package that passed every check, with what routing and storage read from it."""

    model: DocumentPackage | StatusPackage
    attachments: tuple[ScannedAttachment, ...] = ()
    warnings: tuple[Problem, ...] = ()

    @property
    def kind(self) -> MessageKind:
        return MessageKind.STATUS if isinstance(self.model, StatusPackage) else MessageKind.EDOC

    @property
    def from_code(self) -> AgencyCode:
        return AgencyCode(self.model.header.from_.organ_id)

    @property
    def to_codes(self) -> tuple[AgencyCode, ...]:
        if isinstance(self.model, StatusPackage):
            return (AgencyCode(self.model.header.response_for.organ_id or ""),)
        return tuple(AgencyCode(to.organ_id) for to in self.model.header.to)

    @property
    def document_id(self) -> str:
        if isinstance(self.model, StatusPackage):
            return self.model.header.response_for.document_id or ""
        return self.model.header.document_id

    @property
    def code_number(self) -> str | None:
        if isinstance(self.model, StatusPackage):
            return (self.model.header.response_for.code or "").partition("/")[0] or None
        return self.model.header.code.code_number

    @property
    def code_notation(self) -> str | None:
        if isinstance(self.model, StatusPackage):
            return (self.model.header.response_for.code or "").partition("/")[2] or None
        return self.model.header.code.code_notation

    @property
    def subject(self) -> str | None:
        if isinstance(self.model, StatusPackage):
            return self.model.header.description
        return self.model.header.subject

    @property
    def business_type(self) -> int:
        return 0 if isinstance(self.model, StatusPackage) else int(self.model.business_type)

    @property
    def status_code(self) -> str | None:
        if isinstance(self.model, StatusPackage):
            return self.model.header.status_code.value
        return None

    @property
    def trace_organs(self) -> tuple[str, ...]:
        """The organs named by the TraceHeaders, in order (those without one left out)."""
        return tuple(trace.organ_id for trace in self.model.traces if trace.organ_id)


def parse_package(
    source: Path | bytes,
    *,
    work_dir: Path | None = None,
    keep_attachments: bool = False,
    strict_lengths: bool = False,
    today: date | None = None,
    limits: ScanLimits | None = None,
) -> ParsedPackage:
    """Validate a package; raise `PackageRejected` listing every problem.

    With `keep_attachments`, the decoded attachment files stay in `work_dir` for the caller to
    move into the payload store; otherwise only their metadata (size, SHA-256) is kept."""
    scratch = Path(tempfile.mkdtemp(prefix="edxml-")) if work_dir is None else None
    directory = work_dir or scratch
    assert directory is not None
    try:
        if isinstance(source, bytes):
            path = directory / "package.edxml"
            path.write_bytes(source)
        else:
            path = source
        check_prolog(_head(path))
        scan = Scanner(path, directory, limits).scan()
        try:
            model, warnings = read_envelope(
                scan.envelope,
                scan.attachments,
                today or datetime.now(VIETNAM).date(),
                strict_lengths,
            )
        except BaseException:
            scan.discard()
            raise
        if not keep_attachments:
            for attachment in scan.attachments:
                attachment.discard()
        return ParsedPackage(model, tuple(scan.attachments), bounded(scan.warnings + warnings))
    finally:
        if scratch is not None and not keep_attachments:
            shutil.rmtree(scratch, ignore_errors=True)


def read_envelope(
    envelope: bytes, attachments: list[ScannedAttachment], today: date, strict_lengths: bool
) -> tuple[DocumentPackage | StatusPackage, list[Problem]]:
    # Recover mode is safe here: expat has already checked the whole document; what is left
    # to tolerate is an undeclared prefix on an attribute.
    root = etree.fromstring(envelope, hardened_parser(recover=True))
    _drop_undeclared_attributes(root)
    header = qcvn_child(qcvn_child(root, "edXMLEnvelope"), "edXMLHeader")
    message_header = qcvn_child(header, "MessageHeader")
    if header is None or message_header is None:
        raise MessageHeaderMissing(
            "edXMLEnvelope/edXMLHeader/MessageHeader is missing",
            problems=[Problem("EDXML_REQUIRED", "MessageHeader", "element is required")],
        )
    is_status = qcvn_child(message_header, "StatusCode") is not None
    reader = ModelReader()
    _report_repeated(root, reader)
    trace_lists = qcvn_children(header, "TraceHeaderList")
    traces, trace_warnings = read_traces(trace_lists)
    model: DocumentPackage | StatusPackage | None = None
    if is_status:
        status_header = reader.read(message_header, StatusHeader)
        if qcvn_child(qcvn_child(root, "edXMLEnvelope"), "edXMLBody") is not None:
            reader.problem(
                "EDXML_STATUS_WITH_BODY", "edXMLBody", "a status package has no edXMLBody"
            )
        if status_header is not None:
            model = StatusPackage(
                header=status_header, traces=traces, signed=_has_signature_value(header)
            )
    else:
        model = _document(reader, root, header, message_header, trace_lists, traces)
    parties = Findings(strict_lengths)
    check_parties(
        text_at(message_header, "From", "OrganId"),
        [] if is_status else [text_at(to, "OrganId") for to in qcvn_children(message_header, "To")],
        parties,
    )
    problems = _merge(
        reader.problems, parties.errors, validate_envelope(root, "status" if is_status else "edoc")
    )
    if model is None or problems:
        raise _rejected(
            problems or [Problem("EDXML_INVALID", "MessageHeader", "the package could not be read")]
        )
    findings = (
        check_status(model, attachments, strict_lengths)
        if isinstance(model, StatusPackage)
        else check_document(model, attachments, today, strict_lengths)
    )
    if findings.errors:
        raise _rejected(findings.errors)
    return model, trace_warnings + reader.warnings + parties.warnings + findings.warnings


_SINGLE = (
    ("edXMLEnvelope", "edXMLHeader"),
    ("edXMLEnvelope", "edXMLBody"),
    ("edXMLHeader", "MessageHeader"),
    ("edXMLBody", "edXMLManifest"),
)
"""(parent, child) pairs where a second child would be ignored by the node but perhaps read
by a recipient: two headers or two manifests make a package mean two things."""


def _report_repeated(root: etree._Element, reader: ModelReader) -> None:
    parents = {"edXMLEnvelope": qcvn_children(root, "edXMLEnvelope")}
    for parent_name, child_name in _SINGLE:
        children: list[etree._Element] = []
        for parent in parents.get(parent_name, []):
            found = qcvn_children(parent, child_name)
            children += found
            if len(found) > 1:
                reader.problem(
                    "EDXML_DUPLICATE_ELEMENT",
                    element_path(found[1]),
                    f"{child_name} must occur once in {parent_name}",
                )
        parents[child_name] = children[:1]


def _drop_undeclared_attributes(root: etree._Element) -> None:
    """Attributes with an undeclared prefix (tolerated, already reported by the scanner)
    carry no meaning a validator could check: they are left out of validation."""
    for element in root.iter():
        for name in [n for n in element.attrib if ":" in n and not n.startswith("{")]:
            del element.attrib[name]


def _merge(*groups: list[Problem]) -> list[Problem]:
    """All problems, one per element path: the first group to report a path wins (the typed
    reader says more precisely what is wrong with a value than the XSD does)."""
    merged: dict[str, Problem] = {}
    for group in groups:
        for problem in group:
            merged.setdefault(problem.path, problem)
    return list(merged.values())


def text_at(element: etree._Element | None, *names: str) -> str | None:
    for name in names:
        element = qcvn_child(element, name)
    return (element.text or "").strip() or None if element is not None else None


def _document(
    reader: ModelReader,
    root: etree._Element,
    header: etree._Element,
    message_header: etree._Element,
    trace_lists: list[etree._Element],
    traces: list[TraceHeader],
) -> DocumentPackage | None:
    document_header = reader.read(message_header, DocumentHeader)
    businesses = [b for trace_list in trace_lists for b in qcvn_children(trace_list, "Bussiness")]
    if len(businesses) > 1:  # two business acts: which one the package is is ambiguous
        reader.problem(
            "EDXML_DUPLICATE_ELEMENT",
            element_path(businesses[1]),
            "Bussiness must occur at most once: it says what the package does "
            "(new, revoke, update, replace)",
        )
    business_element = businesses[0] if businesses else None
    business = reader.read(business_element, Business) if business_element is not None else None
    manifest = qcvn_child(
        qcvn_child(qcvn_child(root, "edXMLEnvelope"), "edXMLBody"), "edXMLManifest"
    )
    references = [
        reader.read(r, ManifestReference)
        for r in (qcvn_children(manifest, "Reference") if manifest is not None else [])
    ]
    encoded = qcvn_child(root, "AttachmentEncoded")
    attachments = [
        reader.read(a, Attachment)
        for a in (qcvn_children(encoded, "Attachment") if encoded is not None else [])
    ]
    if document_header is None or (business_element is not None and business is None):
        return None
    return DocumentPackage(
        header=document_header,
        traces=traces,
        business=business,
        manifest_version=manifest.get("version") if manifest is not None else None,
        references=_present(references),
        attachments=_present(attachments),
        signed=_has_signature_value(header),
    )


T = TypeVar("T")


def _present(items: list[T | None]) -> list[T]:
    return [item for item in items if item is not None]


def _has_signature_value(header: etree._Element) -> bool:
    """A Signature with a SignatureValue; the empty skeleton real packages carry counts as
    absent (SPEC §3.4)."""
    for signature in header:
        if isinstance(signature.tag, str) and etree.QName(signature).localname == "Signature":
            for value in signature.iter():
                if (
                    isinstance(value.tag, str)
                    and etree.QName(value).localname == "SignatureValue"
                    and (value.text or "").strip()
                ):
                    return True
    return False


def _rejected(problems: list[Problem]) -> PackageRejected:
    first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    return PackageNotEdxml(f"{first.path}: {first.message}{more}", problems=list(bounded(problems)))
