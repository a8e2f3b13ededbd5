"""An independent reading of SPEC §2.1–2.2 for packages the node accepted.

The fuzzer's first oracle is the node's own parser: the stored original, parsed again with
`gateway.edxml.parser.parse_package`, must have no error. That cannot see a rule the parser
itself lacks, so this module states the structural rules a second time, simply and without
the pipeline's code: one root in the QCVN namespace, every element in it (but Signature),
each singleton once, the required fields present and well formed, recipients distinct,
manifest and attachments paired, a status without a body. A package the node accepted that
breaks one of these is a finding.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.edxml.namespaces import DSIG_NS, QCVN_NS

DATE = re.compile(r"\d{4}/\d{2}/\d{2}", re.ASCII)
TIMESTAMP = re.compile(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)
CODE = re.compile(r"[0-9A-Za-z]+(\.[0-9A-Za-z]+)*", re.ASCII)
SMALL_INT = re.compile(r"\d{1,4}", re.ASCII)
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
STATUS_CODES = {"01", "02", "03", "04", "05", "06", "13", "15", "16"}

ONCE_UNDER = {
    "edXML": ["edXMLEnvelope", "AttachmentEncoded"],
    "edXMLEnvelope": ["edXMLHeader", "edXMLBody"],
    "edXMLHeader": ["MessageHeader", "TraceHeaderList"],
    "MessageHeader": [
        "From",
        "DocumentId",
        "Code",
        "PromulgationInfo",
        "DocumentType",
        "Subject",
        "Content",
        "SignerInfo",
        "DueDate",
        "ToPlaces",
        "OtherInfo",
        "SteeringType",
        "StatusCode",
        "Description",
        "Timestamp",
        "StaffInfo",
    ],
    "From": [
        "OrganId",
        "OrganName",
        "OrganAdd",
        "Email",
        "Telephone",
        "Fax",
        "Website",
        "OrganizationInCharge",
    ],
    "To": [
        "OrganId",
        "OrganName",
        "OrganAdd",
        "Email",
        "Telephone",
        "Fax",
        "Website",
        "OrganizationInCharge",
    ],
    "Code": ["CodeNumber", "CodeNotation"],
    "PromulgationInfo": ["Place", "PromulgationDate"],
    "DocumentType": ["Type", "TypeDetail", "TypeName"],
    "OtherInfo": [
        "Priority",
        "SphereOfPromulgation",
        "TyperNotation",
        "PromulgationAmount",
        "PageAmount",
        "Direction",
        "Appendixes",
    ],
    "TraceHeaderList": ["Bussiness"],
    "Bussiness": [
        "DocumentId",
        "BussinessDocType",
        "BussinessDocReason",
        "Paper",
        "StaffInfo",
        "BussinessDocumentInfo",
        "ReplacementInfoList",
    ],
    "edXMLBody": ["edXMLManifest"],
    "Reference": ["ContentId", "ContentType", "Description", "AttachmentName"],
    "Attachment": [
        "ContentId",
        "AttachmentName",
        "Description",
        "ContentType",
        "ContentTransferEncoded",
    ],
}
"""Parent → children that occur at most once in it (SPEC §2.1 tree and field lists)."""


def _name(element: etree._Element) -> str:
    return etree.QName(element).localname


def _children(element: etree._Element | None, name: str) -> list[etree._Element]:
    if element is None:
        return []
    return [c for c in element if isinstance(c.tag, str) and c.tag == f"{{{QCVN_NS}}}{name}"]


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _text(element: etree._Element | None, *path: str) -> str | None:
    for name in path:
        element = _child(element, name)
    return (element.text or "").strip() or None if element is not None else None


def violations(package: bytes) -> list[str]:
    """Every rule of SPEC §2.1–2.2 the package breaks, as `path: rule` lines."""
    try:
        etree.fromstring(
            package,
            etree.XMLParser(
                resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True
            ),
        )
    except etree.XMLSyntaxError as error:
        if "Namespace prefix" not in str(error):
            return [f"/: not well-formed XML ({error})"]
    # An undeclared prefix on an attribute is tolerated (README "Undeclared prefixes"):
    # recover mode keeps such an attribute under its literal name, and an element with an
    # undeclared prefix in no namespace, which `_namespaces` reports.
    root = etree.fromstring(
        package,
        etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True, recover=True
        ),
    )
    return list(_violations(root))


def _violations(root: etree._Element) -> Iterator[str]:
    if root.tag != f"{{{QCVN_NS}}}edXML":
        yield f"/: root is {root.tag!r}, not edXML in the QCVN namespace"
        return
    yield from _namespaces(root)
    yield from _singletons(root)
    header = _child(_child(_child(root, "edXMLEnvelope"), "edXMLHeader"), "MessageHeader")
    if header is None:
        yield "MessageHeader: missing"
        return
    if _child(header, "StatusCode") is not None:
        yield from _status(root, header)
    else:
        yield from _document(root, header)
    for trace in _children(
        _child(_child(_child(root, "edXMLEnvelope"), "edXMLHeader"), "TraceHeaderList"),
        "TraceHeader",
    ):
        stamp = _text(trace, "Timestamp")
        if stamp is not None and not TIMESTAMP.fullmatch(stamp):
            # a malformed TraceHeader is a warning (SPEC §2.1), but the values it does
            # hold are typed like everywhere else
            yield f"TraceHeader/Timestamp: {stamp[:40]!r} is not yyyy/MM/dd HH:mm:ss"


def _namespaces(root: etree._Element) -> Iterator[str]:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        namespace = etree.QName(element).namespace
        if namespace == QCVN_NS:
            continue
        if namespace == DSIG_NS and any(
            _name(a) == "Signature" for a in [element, *element.iterancestors()]
        ):
            continue
        yield f"{_name(element)}: in namespace {namespace!r}, not QCVN"


def _singletons(root: etree._Element) -> Iterator[str]:
    for element in root.iter(f"{{{QCVN_NS}}}*"):
        once = ONCE_UNDER.get(_name(element))
        if not once:
            continue
        counts = Counter(
            _name(c)
            for c in element
            if isinstance(c.tag, str) and etree.QName(c).namespace == QCVN_NS
        )
        for name in once:
            if counts[name] > 1:
                yield f"{_name(element)}/{name}: {counts[name]} of an element that occurs once"
    if len(_children(_child(root, "edXMLEnvelope"), "edXMLHeader")) != 1:
        yield "edXMLEnvelope/edXMLHeader: not exactly one"


def _is_date(value: str | None) -> bool:
    if value is None or not DATE.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y/%m/%d")
    except ValueError:
        return False
    return True


def _code(value: str | None, path: str) -> Iterator[str]:
    if value is None:
        yield f"{path}: required"
    elif len(value) > 35 or not CODE.fullmatch(value):
        yield f"{path}: {value[:40]!r} is not an identifier code"


def _document(root: etree._Element, header: etree._Element) -> Iterator[str]:
    yield from _code(_text(header, "From", "OrganId"), "From/OrganId")
    recipients = _children(header, "To")
    if not recipients:
        yield "To: at least one is required"
    codes = [_text(to, "OrganId") for to in recipients]
    for index, code in enumerate(codes, start=1):
        yield from _code(code, f"To[{index}]/OrganId")
    if len(set(codes)) != len(codes):
        yield "To: two recipients with the same OrganId"
    for path in (
        ("Code", "CodeNumber"),
        ("Code", "CodeNotation"),
        ("Subject",),
        ("DocumentType", "Type"),
    ):
        if _text(header, *path) is None:
            yield f"{'/'.join(path)}: required"
    date = _text(header, "PromulgationInfo", "PromulgationDate")
    if not _is_date(date):
        yield f"PromulgationInfo/PromulgationDate: {date!r} is not a date yyyy/MM/dd"
    elif (
        date is not None
        and datetime.strptime(date, "%Y/%m/%d").date() > datetime.now(VIETNAM).date()
    ):
        yield f"PromulgationInfo/PromulgationDate: {date} is in the future"
    due = _text(header, "DueDate")
    if due is not None and not _is_date(due):
        yield f"DueDate: {due[:40]!r} is not a date yyyy/MM/dd"
    for path in (("DocumentType", "Type"), ("OtherInfo", "Priority"), ("SteeringType",)):
        value = _text(header, *path)
        if value is not None and not SMALL_INT.fullmatch(value):
            yield f"{'/'.join(path)}: {value[:40]!r} is not a small non-negative integer"
    priority = _text(header, "OtherInfo", "Priority")
    if priority is not None and priority.isdigit() and int(priority) > 4:
        yield f"OtherInfo/Priority: {priority} is not 0–4"
    business = _child(
        _child(_child(_child(root, "edXMLEnvelope"), "edXMLHeader"), "TraceHeaderList"), "Bussiness"
    )
    kind = _text(business, "BussinessDocType")
    if business is not None and kind not in (None, "0", "1", "2", "3"):
        yield f"Bussiness/BussinessDocType: {kind!r} is not 0–3"
    paper = _text(business, "Paper")
    if paper not in (None, "0", "1"):
        yield f"Bussiness/Paper: {paper!r} is not 0 or 1"
    yield from _pairing(root)


def _content_ids(elements: list[etree._Element]) -> list[str]:
    return [(_text(e, "ContentId") or "").removeprefix("cid:") for e in elements]


def _pairing(root: etree._Element) -> Iterator[str]:
    references = _content_ids(
        _children(
            _child(_child(_child(root, "edXMLEnvelope"), "edXMLBody"), "edXMLManifest"), "Reference"
        )
    )
    attachments = _content_ids(_children(_child(root, "AttachmentEncoded"), "Attachment"))
    if Counter(references) != Counter(attachments) or len(set(references)) != len(references):
        yield (
            f"Reference/Attachment: content ids {sorted(references)} and "
            f"{sorted(attachments)} are not paired one to one"
        )


def _status(root: etree._Element, header: etree._Element) -> Iterator[str]:
    yield from _code(_text(header, "From", "OrganId"), "From/OrganId")
    yield from _code(_text(header, "ResponseFor", "OrganId"), "ResponseFor/OrganId")
    for path in (("ResponseFor", "Code"), ("ResponseFor", "DocumentId")):
        if _text(header, *path) is None:
            yield f"{'/'.join(path)}: required"
    if _text(header, "StatusCode") not in STATUS_CODES:
        yield f"StatusCode: {_text(header, 'StatusCode')!r} is not a status code"
    if (
        _child(_child(root, "edXMLEnvelope"), "edXMLBody") is not None
        or _child(root, "AttachmentEncoded") is not None
    ):
        yield "edXMLBody/AttachmentEncoded: a status package has no body"
    if len(_children(header, "ResponseFor")) != 1:
        yield "ResponseFor: not exactly one"
