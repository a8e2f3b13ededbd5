"""Reading edXML packages from untrusted bytes (SPEC §2.1–2.2).

Parsing goes by namespace and local name, never by prefix: producers mix `edXML:` and the
default namespace freely. The parser refuses DTDs, entities and network access; all problems
found in one package are reported together, each with the element path a clerk can fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from gateway.codes import is_standard_shape, is_valid_code
from gateway.errors import PackageRejected, Problem
from gateway.types import AgencyCode, MessageKind

QCVN_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

_UNDEFINED_PREFIX = 201  # libxml2 XML_NS_ERR_UNDEFINED_NAMESPACE


def hardened_parser(*, recover: bool = False) -> etree.XMLParser:
    """No DTD, no entity expansion, no network: untrusted XML can only be XML.

    `collect_ids` stays on: with it off, libxml2 was seen opening a local file named as the
    external DTD subset, which would let a sender probe the node's file system."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, recover=recover)


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
        raise _encoding_error(f"the XML declaration says encoding="
                              f"{declared.group(1).decode()}; edXML must be UTF-8")
    position = 0
    while (start := head.find(b"<", position)) >= 0:
        if head.startswith(b"<?", start):
            end, step = head.find(b"?>", start), 2
        elif head.startswith(b"<!--", start):
            end, step = head.find(b"-->", start), 3
        elif head[start:start + 9].upper() == b"<!DOCTYPE":
            raise PackageRejected("DTDs and entity declarations are not allowed",
                                  desc_vi="Khong chap nhan DTD", problems=[
                                      Problem("XML_DTD_FORBIDDEN", "/", "remove the DOCTYPE")])
        else:
            return  # the root element: the prolog is over
        if end < 0:
            return  # unterminated prolog item: the parser reports it precisely
        position = end + step


def _encoding_error(message: str) -> PackageRejected:
    return PackageRejected(message, desc_vi="Goi tin phai ma hoa UTF-8",
                           problems=[Problem("XML_ENCODING", "/", message)])


@dataclass(frozen=True, slots=True)
class ParsedPackage:
    """What routing and storage need from a package; the full model comes with issue #3."""

    kind: MessageKind
    from_code: AgencyCode
    to_codes: tuple[AgencyCode, ...]
    document_id: str
    code_number: str | None
    code_notation: str | None
    subject: str | None
    business_type: int
    status_code: str | None = None
    trace_organs: tuple[str, ...] = ()
    warnings: tuple[Problem, ...] = field(default_factory=tuple)


def load_tree(source: Path | bytes) -> tuple[etree._ElementTree, list[Problem]]:
    """Parse hardened; tolerate only the unbound-prefix defect real systems copied from the
    SDK sample (`xlink:href` without a declaration), and report it as a warning."""
    warnings: list[Problem] = []
    check_prolog(_head(source))
    parser = hardened_parser()
    try:
        tree = _parse(source, parser)
    except etree.XMLSyntaxError as error:
        # The parser's own log: the exception's is shared by the thread's earlier parses.
        entries = [e for e in parser.error_log if e.level_name != "WARNING"]
        if not entries or any(e.type != _UNDEFINED_PREFIX for e in entries):
            raise PackageRejected(
                f"not well-formed XML: {error.msg}", desc_vi="Khong phai XML hop le",
                problems=[Problem("XML_MALFORMED", f"line {error.lineno}", str(error.msg))],
            ) from None
        tree = _parse(source, hardened_parser(recover=True))
        warnings += [Problem("XML_UNBOUND_PREFIX", f"line {line}", message, "warning")
                     for line, message in sorted({(e.line, e.message.strip())
                                                  for e in entries})]
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise PackageRejected("DTDs and entity declarations are not allowed",
                              desc_vi="Khong chap nhan DTD",
                              problems=[Problem("XML_DTD_FORBIDDEN", "/", "remove the DOCTYPE")])
    return tree, warnings


def _head(source: Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source[:PROLOG_BYTES]
    with open(source, "rb") as handle:
        return handle.read(PROLOG_BYTES)


def _parse(source: Path | bytes, parser: etree.XMLParser) -> etree._ElementTree:
    if isinstance(source, Path):
        return etree.parse(str(source), parser)
    return etree.ElementTree(etree.fromstring(source, parser))


class _Reader:
    """Collects problems while walking the tree, so a package reports them all at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, code: str, path: str, message: str) -> None:
        self.problems.append(Problem(code, path, message))

    def warn(self, code: str, path: str, message: str) -> None:
        self.warnings.append(Problem(code, path, message, "warning"))


def children(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str) and c.tag == f"{{{QCVN_NS}}}{name}"]


def child(element: etree._Element | None, name: str) -> etree._Element | None:
    if element is None:
        return None
    found = children(element, name)
    return found[0] if found else None


def text_of(element: etree._Element | None, *names: str) -> str | None:
    """Stripped text of a descendant path, or None when absent or empty."""
    for name in names:
        element = child(element, name)
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def parse_package(source: Path | bytes) -> ParsedPackage:
    """Read a document or status package, or raise `PackageRejected` listing every problem."""
    tree, warnings = load_tree(source)
    reader = _Reader()
    reader.warnings += warnings
    root = tree.getroot()
    if root.tag != f"{{{QCVN_NS}}}edXML":
        raise PackageRejected(
            f"root element is {root.tag}, expected edXML in namespace {QCVN_NS}",
            desc_vi="Khong phai goi tin edXML",
            problems=[Problem("EDXML_ROOT", "/", f"expected {{{QCVN_NS}}}edXML")])
    header = child(child(root, "edXMLEnvelope"), "edXMLHeader")
    message_header = child(header, "MessageHeader")
    if message_header is None:
        raise PackageRejected("edXMLEnvelope/edXMLHeader/MessageHeader is missing",
                              desc_vi="Thieu MessageHeader",
                              problems=[Problem("EDXML_REQUIRED", "edXMLEnvelope/edXMLHeader/"
                                                "MessageHeader", "element is required")])
    from_code = _organ_id(reader, message_header, "From", "MessageHeader/From/OrganId")
    trace_list = child(header, "TraceHeaderList")
    trace_organs = tuple(t for t in (text_of(th, "OrganId") for th in
                                     (children(trace_list, "TraceHeader")
                                      if trace_list is not None else [])) if t)
    if child(message_header, "StatusCode") is not None:
        package = _status(reader, message_header, from_code, trace_organs)
    else:
        package = _document(reader, message_header, trace_list, from_code, trace_organs)
    if reader.problems:
        first = reader.problems[0]
        raise PackageRejected(f"{first.path}: {first.message}"
                              + (f" (+{len(reader.problems) - 1} more)"
                                 if len(reader.problems) > 1 else ""),
                              desc_vi="Goi tin khong dung chuan edXML", problems=reader.problems)
    return package


def _organ_id(reader: _Reader, header: etree._Element, parent: str, path: str) -> AgencyCode:
    value = text_of(header, parent, "OrganId") or ""
    _check_code(reader, value, path)
    return AgencyCode(value)


def _check_code(reader: _Reader, value: str, path: str) -> None:
    if not value:
        reader.error("EDXML_REQUIRED", path, "identifier code is required")
    elif not is_valid_code(value):
        reader.error("EDXML_CODE_INVALID", path,
                     f"{value!r} is not a dot-separated code of letters and digits (max 35)")
    elif not is_standard_shape(value):
        reader.warn("EDXML_CODE_NONSTANDARD", path, f"{value!r} is not of the form LLL.KK.JJ.XNN")


def _document(reader: _Reader, header: etree._Element, trace_list: etree._Element | None,
              from_code: AgencyCode, trace_organs: tuple[str, ...]) -> ParsedPackage:
    to_codes: list[AgencyCode] = []
    to_elements = children(header, "To")
    if not to_elements:
        reader.error("EDXML_REQUIRED", "MessageHeader/To", "at least one recipient is required")
    for index, to in enumerate(to_elements, start=1):
        path = f"MessageHeader/To[{index}]/OrganId"
        code = text_of(to, "OrganId") or ""
        _check_code(reader, code, path)
        if code and code in to_codes:
            reader.error("EDXML_DUPLICATE_RECIPIENT", path, f"{code} is listed twice")
        elif code:
            to_codes.append(AgencyCode(code))
    document_id = text_of(header, "DocumentId")
    if document_id is None:
        reader.error("EDXML_REQUIRED", "MessageHeader/DocumentId", "DocumentId is required")
    code_number = text_of(header, "Code", "CodeNumber")
    code_notation = text_of(header, "Code", "CodeNotation")
    for value, name in ((code_number, "CodeNumber"), (code_notation, "CodeNotation")):
        if value is None:
            reader.error("EDXML_REQUIRED", f"MessageHeader/Code/{name}", f"{name} is required")
    subject = text_of(header, "Subject")
    if subject is None:
        reader.error("EDXML_REQUIRED", "MessageHeader/Subject", "Subject must not be empty")
    business = child(trace_list, "Bussiness")
    business_type = 0
    raw_type = text_of(business, "BussinessDocType")
    if raw_type is not None:
        if raw_type in {"0", "1", "2", "3"}:
            business_type = int(raw_type)
        else:
            reader.error("EDXML_VALUE", "TraceHeaderList/Bussiness/BussinessDocType",
                         f"{raw_type!r} is not 0 (new), 1 (revoke), 2 (update) or 3 (replace)")
    return ParsedPackage(
        kind=MessageKind.EDOC, from_code=from_code, to_codes=tuple(to_codes),
        document_id=document_id or "", code_number=code_number, code_notation=code_notation,
        subject=subject, business_type=business_type, trace_organs=trace_organs,
        warnings=tuple(reader.warnings))


def _status(reader: _Reader, header: etree._Element, from_code: AgencyCode,
            trace_organs: tuple[str, ...]) -> ParsedPackage:
    target = _organ_id(reader, header, "ResponseFor", "MessageHeader/ResponseFor/OrganId")
    document_id = text_of(header, "ResponseFor", "DocumentId")
    if document_id is None:
        reader.error("EDXML_REQUIRED", "MessageHeader/ResponseFor/DocumentId",
                     "the DocumentId of the answered document is required")
    code = text_of(header, "ResponseFor", "Code")
    if code is None:
        reader.error("EDXML_REQUIRED", "MessageHeader/ResponseFor/Code",
                     "the Code (number/notation) of the answered document is required")
    status_code = text_of(header, "StatusCode")
    if status_code is None:
        reader.error("EDXML_REQUIRED", "MessageHeader/StatusCode", "StatusCode is required")
    number, _, notation = (code or "").partition("/")
    return ParsedPackage(
        kind=MessageKind.STATUS, from_code=from_code, to_codes=(target,) if target else (),
        document_id=document_id or "", code_number=number or None,
        code_notation=notation or None, subject=text_of(header, "Description"),
        business_type=0, status_code=status_code, trace_organs=trace_organs,
        warnings=tuple(reader.warnings))
