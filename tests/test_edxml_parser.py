"""Reading edXML packages (SPEC §2.1–2.2) and appending the node's TraceHeader."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from gateway.edxml.model import (
    VIETNAM,
    DocumentHeader,
    DocumentPackage,
    OtherInfo,
    StatusPackage,
    TraceHeader,
)
from gateway.edxml.namespaces import QCVN_NS
from gateway.edxml.parser import ParsedPackage, hardened_parser, parse_package
from gateway.edxml.trace import with_trace_header
from gateway.edxml.trace_list import sender_trace
from gateway.errors import PackageRejected
from gateway.services.package_facts import signing_time
from gateway.types import MessageKind
from tests.support.samples import SAMPLES

G22_DOCUMENT = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
G22_RECIPIENTS = ("000.00.00.H41", "000.00.00.H14", "000.00.00.G17")
NODE = "000.00.00.H53"
AT = datetime(2026, 11, 21, 4, 17, 20)


SENDER_TRACE = (
    "<TraceHeader><OrganId>000.00.00.H53</OrganId>\n"
    "<Timestamp>2026/11/20 10:00:00</Timestamp></TraceHeader>"
)


def build(
    *,
    to: tuple[str, ...] = ("000.00.13.H53",),
    subject: str | None = "Công văn",
    code_number: str | None = "12",
    business_type: str | None = None,
    doctype: str = "",
    traces: str = SENDER_TRACE,
    header_extra: str = "",
    message_extra: str = "",
    promulgated: str = "2026/11/20",
) -> bytes:
    """A small new-document package; `None` leaves the element out. `traces` is the
    content of TraceHeaderList before Bussiness (`{business}` in it places Bussiness
    elsewhere); `message_extra` is added to MessageHeader, `header_extra` to edXMLHeader."""
    recipients = "".join(f"<To><OrganId>{code}</OrganId></To>" for code in to)
    number = f"<CodeNumber>{code_number}</CodeNumber>" if code_number is not None else ""
    subject_element = f"<Subject>{subject}</Subject>" if subject is not None else ""
    business = (
        f"<Bussiness><BussinessDocType>{business_type}</BussinessDocType></Bussiness>"
        if business_type is not None
        else ""
    )
    trace_list = traces.format(business=business) if "{business}" in traces else traces + business
    return f"""<?xml version="1.0" encoding="UTF-8"?>{doctype}
<edXML xmlns="{QCVN_NS}"><edXML:edXMLEnvelope xmlns:edXML="{QCVN_NS}"><edXML:edXMLHeader>
<edXML:MessageHeader><From><OrganId>000.00.00.H53</OrganId></From>{recipients}
<edXML:Code>{number}<CodeNotation>UBND-VP</CodeNotation></edXML:Code>
<PromulgationInfo><PromulgationDate>{promulgated}</PromulgationDate></PromulgationInfo>
<DocumentType><Type>1</Type></DocumentType>{subject_element}{message_extra}
<DocumentId>000.00.00.H53,2026/11/20,12/UBND-VP</DocumentId></edXML:MessageHeader>
<TraceHeaderList>{trace_list}</TraceHeaderList>{header_extra}
</edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>""".encode()


def rejection(source: Path | bytes) -> PackageRejected:
    with pytest.raises(PackageRejected) as caught:
        parse_package(source)
    return caught.value


def problems(source: Path | bytes) -> set[tuple[str, str]]:
    return {(p.code, p.path) for p in rejection(source).problems}


def everything_said(error: PackageRejected) -> str:
    return " ".join(
        [
            str(error),
            error.detail,
            error.error_desc,
            *(f"{p.path} {p.message}" for p in error.problems),
        ]
    )


# -- the published samples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "from_code", "to_codes", "business_type"),
    [
        ("edoc_new.edxml", "000.00.00.A80", ("28.22.H17",), 0),
        ("edoc_revocation.edxml", "000.00.00.G22", G22_RECIPIENTS, 1),
        ("edoc_update.edxml", "000.00.00.G22", G22_RECIPIENTS, 2),
        ("edoc_replacement.edxml", "000.00.00.G22", G22_RECIPIENTS, 3),
    ],
)
def test_sample_documents(
    name: str, from_code: str, to_codes: tuple[str, ...], business_type: int
) -> None:
    package = parse_package(SAMPLES / name)
    assert (package.kind, package.from_code, package.to_codes, package.business_type) == (
        MessageKind.EDOC,
        from_code,
        to_codes,
        business_type,
    )
    assert package.document_id == G22_DOCUMENT
    assert package.status_code is None and package.subject


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("status*.edxml")), ids=lambda p: p.stem)
def test_sample_statuses(path: Path) -> None:
    package = parse_package(path)
    expected_code = path.stem[-2:] if path.stem != "status" else "01"
    recall = expected_code == "13"  # sent by the original sender, to the recipient it names
    assert package.kind is MessageKind.STATUS
    assert package.status_code == expected_code
    assert package.from_code == ("000.00.00.G22" if recall else "000.00.00.H41")
    assert package.to_codes == (("000.00.00.H41",) if recall else ("000.00.00.G22",))
    assert package.document_id == G22_DOCUMENT
    assert (package.code_number, package.code_notation) == ("7816", "VPCP-TTĐT")


def test_every_sample_is_covered() -> None:
    assert len(list(SAMPLES.glob("*.edxml"))) == 15


def test_edoc_sample_is_refused_for_its_undeclared_element_prefix() -> None:
    """edoc.edxml writes `edXML:AttachmentEncoded` where no `edXML` prefix is in scope: the
    element's namespace is unknowable, so the package is refused (its attachment is a JMeter
    placeholder anyway), naming the element and the line."""
    with pytest.raises(PackageRejected) as refused:
        parse_package(SAMPLES / "edoc.edxml")
    [problem] = refused.value.problems
    assert (problem.code, problem.path) == ("XML_UNBOUND_PREFIX", "AttachmentEncoded")
    assert "line" in problem.message


def unbound_prefix(where: str) -> bytes:
    """edoc.edxml with its attachment part repaired, keeping the undeclared `xlink:` prefix
    on the manifest Reference (the defect real systems copied); `header` adds one to the
    edXMLHeader as well."""
    package = (SAMPLES / "edoc.edxml").read_bytes()
    package = package.replace(
        b"<edXML:AttachmentEncoded>", f'<edXML:AttachmentEncoded xmlns:edXML="{QCVN_NS}">'.encode()
    )
    package = package.replace(b"${__StringFromFile(test.txt,,,)}", b"JVBERi0xLjQK")
    if where == "header":
        package = package.replace(b"<edXML:Subject>", b'<edXML:Subject xlink:type="simple">')
    return package


@pytest.mark.parametrize("where", ["manifest", "header"])
def test_unbound_xlink_prefix_is_tolerated_and_reported(where: str) -> None:
    package = parse_package(unbound_prefix(where))
    unbound = [w for w in package.warnings if w.code == "XML_UNBOUND_PREFIX"]
    assert unbound and all(w.severity == "warning" for w in unbound)


def test_an_earlier_refusal_does_not_change_the_next_verdict() -> None:
    assert problems(b"<edXML") == {("XML_MALFORMED", "line 1")}
    package = parse_package(unbound_prefix("manifest"))
    assert "XML_UNBOUND_PREFIX" in {w.code for w in package.warnings}


def test_three_group_recipient_code_is_a_warning() -> None:
    package = parse_package(SAMPLES / "edoc_new.edxml")
    assert [(w.code, w.path, w.severity) for w in package.warnings] == [
        ("EDXML_CODE_NONSTANDARD", "MessageHeader/To[1]/OrganId", "warning")
    ]


def test_built_package_is_valid() -> None:
    package = parse_package(build(to=("000.00.13.H53", "vxp.saas.03"), business_type="0"))
    assert isinstance(package, ParsedPackage)
    assert package.to_codes == ("000.00.13.H53", "vxp.saas.03")
    assert (package.code_number, package.code_notation) == ("12", "UBND-VP")


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package", "expected"),
    [
        (build(to=()), ("EDXML_REQUIRED", "MessageHeader/To")),
        (
            build(to=("000.00.13.H53", "000.00.13.H53")),
            ("EDXML_DUPLICATE_RECIPIENT", "MessageHeader/To[2]/OrganId"),
        ),
        (
            build(to=("000.00.13.H53", "bad code!")),
            ("EDXML_CODE_INVALID", "MessageHeader/To[2]/OrganId"),
        ),
        (build(subject=None), ("EDXML_REQUIRED", "MessageHeader/Subject")),
        (build(subject="   "), ("EDXML_REQUIRED", "MessageHeader/Subject")),
        (build(code_number=None), ("EDXML_REQUIRED", "MessageHeader/Code/CodeNumber")),
        (build(business_type="4"), ("EDXML_VALUE", "TraceHeaderList/Bussiness/BussinessDocType")),
        (build(business_type="new"), ("EDXML_VALUE", "TraceHeaderList/Bussiness/BussinessDocType")),
    ],
)
def test_refusal_names_rule_and_element(package: bytes, expected: tuple[str, str]) -> None:
    assert problems(package) == {expected}


def test_all_problems_are_reported_together() -> None:
    error = rejection(
        build(
            to=("000.00.13.H53", "000.00.13.H53"), subject=None, code_number=None, business_type="9"
        )
    )
    assert {(p.code, p.path) for p in error.problems} == {
        ("EDXML_DUPLICATE_RECIPIENT", "MessageHeader/To[2]/OrganId"),
        ("EDXML_REQUIRED", "MessageHeader/Subject"),
        ("EDXML_REQUIRED", "MessageHeader/Code/CodeNumber"),
        ("EDXML_VALUE", "TraceHeaderList/Bussiness/BussinessDocType"),
    }
    assert "(+3 more)" in error.detail


@pytest.mark.parametrize(
    "package",
    [
        b"<edXML/>",
        b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2015"/>',
        f'<MessageHeader xmlns="{QCVN_NS}"/>'.encode(),
    ],
)
def test_wrong_root_or_namespace(package: bytes) -> None:
    assert problems(package) == {("EDXML_ROOT", "/")}


@pytest.mark.parametrize(
    "package",
    [b"", b"<edXML", build()[:-3], b"not xml at all", build().replace(b"</Subject>", b"</Subjct>")],
)
def test_not_well_formed(package: bytes) -> None:
    assert {code for code, _ in problems(package)} == {"XML_MALFORMED"}


def test_entity_declarations_are_forbidden() -> None:
    doctype = '<!DOCTYPE edXML [<!ENTITY org "000.00.13.H53">]>'
    assert problems(build(to=("&org;",), doctype=doctype)) == {("XML_DTD_FORBIDDEN", "/")}


def test_billion_laughs_is_forbidden_quickly() -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    package = build(subject="&lol9;", doctype=f"<!DOCTYPE edXML [{''.join(entities)}]>")
    started = time.perf_counter()
    found = problems(package)
    assert time.perf_counter() - started < 1.0
    assert found == {("XML_DTD_FORBIDDEN", "/")}


def test_external_entity_is_never_expanded() -> None:
    doctype = '<!DOCTYPE edXML [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    error = rejection(build(subject="&secret;", doctype=doctype))
    assert {(p.code, p.path) for p in error.problems} == {("XML_DTD_FORBIDDEN", "/")}
    assert "root:" not in everything_said(error)


@pytest.mark.parametrize("target", ["file:///etc/passwd", "file:///nonexistent/lienthong.dtd"])
def test_external_dtd_subset_is_never_read(target: str) -> None:
    # Same answer whether or not the file exists: the parser must not open it at all.
    error = rejection(build(doctype=f'<!DOCTYPE edXML SYSTEM "{target}">'))
    assert {(p.code, p.path) for p in error.problems} == {("XML_DTD_FORBIDDEN", "/")}
    assert "root:" not in everything_said(error)


# -- the node's TraceHeader ------------------------------------------------------------------


def trace_headers(package: bytes) -> list[etree._Element]:
    tree = etree.fromstring(package, hardened_parser(recover=True))
    return tree.findall(f".//{{{QCVN_NS}}}TraceHeaderList/{{{QCVN_NS}}}TraceHeader")


def inserted(original: bytes, delivered: bytes) -> bytes:
    """The bytes spliced into `original`, asserting nothing else changed."""
    start = next(i for i, (a, b) in enumerate(zip(original, delivered, strict=False)) if a != b)
    added = len(delivered) - len(original)
    assert added > 0
    assert delivered[:start] + delivered[start + added :] == original
    return delivered[start : start + added]


@pytest.mark.parametrize("name", ["edoc_new.edxml", "edoc_update.edxml"])
def test_trace_header_is_appended_after_the_existing_ones(name: str) -> None:
    original = (SAMPLES / name).read_bytes()
    delivered = with_trace_header(original, NODE, AT)
    *existing, added = trace_headers(delivered)
    assert [t.findtext(f"{{{QCVN_NS}}}OrganId") for t in existing] == ["000.00.00.G22"]
    assert added.findtext(f"{{{QCVN_NS}}}OrganId") == NODE
    assert added.findtext(f"{{{QCVN_NS}}}Timestamp") == "2026/11/21 04:17:20"
    assert added.getprevious() is existing[-1]
    # Everything else, the CRLFs and the 360 KB of attachment base64 included, is untouched.
    assert b"ContentTransferEncoded" not in inserted(original, delivered)


def test_delivered_copy_reparses_with_the_node_last() -> None:
    original = (SAMPLES / "edoc_update.edxml").read_bytes()
    package = parse_package(with_trace_header(original, NODE, AT))
    assert package.trace_organs == ("000.00.00.G22", NODE)
    assert package.business_type == 2
    assert package.to_codes == G22_RECIPIENTS


def test_trace_header_list_is_created_when_missing() -> None:
    original = (SAMPLES / "status_acceptance_03.edxml").read_bytes()
    delivered = with_trace_header(original, NODE, AT)
    (added,) = trace_headers(delivered)
    assert added.getparent().getprevious().tag == f"{{{QCVN_NS}}}MessageHeader"
    inserted(original, delivered)
    package = parse_package(delivered)
    assert (package.trace_organs, package.status_code) == ((NODE,), "03")


def test_trace_header_joins_a_list_that_holds_only_bussiness() -> None:
    original = build(business_type="1", traces="")
    assert parse_package(original).business_type == 1
    delivered = with_trace_header(original, NODE, AT)
    assert delivered.count(b"</TraceHeaderList>") == 1
    package = parse_package(delivered)
    assert (package.trace_organs, package.business_type) == ((NODE,), 1)


@pytest.mark.parametrize("where", ["manifest", "header"])
def test_packages_with_a_tolerated_unbound_prefix_get_a_trace_header(where: str) -> None:
    original = unbound_prefix(where)
    delivered = with_trace_header(original, NODE, AT)
    inserted(original, delivered)
    tree = etree.fromstring(delivered, etree.XMLParser(recover=True))
    organs = tree.findall(f".//{{{QCVN_NS}}}TraceHeader/{{{QCVN_NS}}}OrganId")
    assert [organ.text for organ in organs] == ["01.02.G22", NODE]


# -- real traffic: the relays' malformed TraceHeaders are warnings ----------------------------

RELAY_AT = "<Timestamp>2026/11/20 11:00:00</Timestamp>"
MALFORMED_TRACES = {
    # name: (second TraceHeader as written by a relay, expected (path, message part)...)
    "OrganId absent": (
        f"<TraceHeader>{RELAY_AT}</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "no OrganId")],
    ),
    "OrganId empty": (
        f"<TraceHeader><OrganId></OrganId>{RELAY_AT}</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "OrganId is empty")],
    ),
    "OrganId blank": (
        f"<TraceHeader><OrganId>  </OrganId>{RELAY_AT}</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "OrganId is empty")],
    ),
    "OrganId null": (
        f"<TraceHeader><OrganId>null</OrganId>{RELAY_AT}</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "the text 'null'")],
    ),
    "OrganId NULL": (
        f"<TraceHeader><OrganId>NULL</OrganId>{RELAY_AT}</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "the text 'NULL'")],
    ),
    "OrganId not a code": (
        f"<TraceHeader><OrganId>Truc lien thong</OrganId>{RELAY_AT}</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "is not an identifier code")],
    ),
    "Timestamp only, empty element": (
        "<TraceHeader><OrganId/>" + RELAY_AT + "</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "empty")],
    ),
    "Timestamp absent": (
        "<TraceHeader><OrganId>000.00.00.G22</OrganId></TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/Timestamp", "no Timestamp")],
    ),
    "Timestamp empty": (
        "<TraceHeader><OrganId>000.00.00.G22</OrganId><Timestamp/></TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/Timestamp", "Timestamp is empty")],
    ),
    "Timestamp unreadable": (
        "<TraceHeader><OrganId>000.00.00.G22</OrganId>"
        "<Timestamp>20/11/2026 11:00</Timestamp></TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/Timestamp", "is not a timestamp")],
    ),
    "empty TraceHeader": (
        "<TraceHeader/>",
        [
            ("TraceHeaderList/TraceHeader[2]/OrganId", "no OrganId"),
            ("TraceHeaderList/TraceHeader[2]/Timestamp", "no Timestamp"),
        ],
    ),
    "unknown element": (
        "<TraceHeader><OrganId>000.00.00.G22</OrganId>"
        + RELAY_AT
        + "<SystemId>vxp.saas.03</SystemId></TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/SystemId", "not part of")],
    ),
    "OrganId twice": (
        "<TraceHeader><OrganId>000.00.00.G22</OrganId><OrganId>x</OrganId>"
        + RELAY_AT
        + "</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "occurs 2 times")],
    ),
    "OrganId holds elements": (
        "<TraceHeader><OrganId><Code>1</Code></OrganId>" + RELAY_AT + "</TraceHeader>",
        [("TraceHeaderList/TraceHeader[2]/OrganId", "holds elements")],
    ),
    "text in TraceHeader": (
        "<TraceHeader>null</TraceHeader>",
        [
            ("TraceHeaderList/TraceHeader[2]", "holds text"),
            ("TraceHeaderList/TraceHeader[2]/OrganId", "no OrganId"),
            ("TraceHeaderList/TraceHeader[2]/Timestamp", "no Timestamp"),
        ],
    ),
}


def trace_warnings(package: ParsedPackage) -> list[tuple[str, str]]:
    return [(w.path, w.message) for w in package.warnings if w.code == "EDXML_TRACE_MALFORMED"]


@pytest.mark.parametrize("case", list(MALFORMED_TRACES))
@pytest.mark.parametrize("business_place", ["after", "before"])
def test_a_malformed_relay_trace_header_is_a_warning(case: str, business_place: str) -> None:
    relay, expected = MALFORMED_TRACES[case]
    traces = (
        SENDER_TRACE + relay + "{business}"
        if business_place == "after"
        else "{business}" + SENDER_TRACE + relay
    )
    package = parse_package(build(traces=traces, business_type="0"))
    found = trace_warnings(package)
    assert len(found) == len(expected), found
    for (path, message), (expected_path, part) in zip(found, expected, strict=True):
        assert path == expected_path and part in message, (path, message)
    assert all(w.severity == "warning" for w in package.warnings)
    assert len(package.model.traces) == 2
    assert package.model.traces[0].organ_id == "000.00.00.H53"
    assert package.business_type == 0 and package.model.business is not None


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("2026-11-20T11:00:00", datetime(2026, 11, 20, 11, 0)),
        ("2026-11-20 11:00:00.123", datetime(2026, 11, 20, 11, 0)),
        ("2026/11/20 11:00", datetime(2026, 11, 20, 11, 0)),
        ("2026/11/20T04:00:00Z", datetime(2026, 11, 20, 11, 0)),
        ("2026-11-20T12:00:00+08:00", datetime(2026, 11, 20, 11, 0)),
    ],
)
def test_a_near_standard_trace_timestamp_is_read_with_a_warning(
    written: str, read: datetime
) -> None:
    package = parse_package(
        build(
            traces=f"<TraceHeader><OrganId>000.00.00.H53</OrganId>"
            f"<Timestamp>{written}</Timestamp></TraceHeader>"
        )
    )
    [(path, message)] = trace_warnings(package)
    assert path == "TraceHeaderList/TraceHeader[1]/Timestamp"
    assert "read as 2026/11/20 11:00:00" in message
    timestamp = package.model.traces[0].timestamp
    assert timestamp is not None and timestamp.astimezone(VIETNAM) == read.replace(tzinfo=VIETNAM)


@pytest.mark.parametrize(
    "written",
    ["2026/02/30 11:00:00", "20/11/2026 11:00:00", "11:00", "1763611200000", "2026/11/20"],
)
def test_an_unreadable_trace_timestamp_is_left_out(written: str) -> None:
    package = parse_package(
        build(
            traces=f"<TraceHeader><OrganId>000.00.00.H53</OrganId>"
            f"<Timestamp>{written}</Timestamp></TraceHeader>"
        )
    )
    assert package.model.traces[0].timestamp is None
    assert [p for p, _ in trace_warnings(package)] == ["TraceHeaderList/TraceHeader[1]/Timestamp"]


def test_a_package_with_only_a_relay_trace_and_a_second_trace_list() -> None:
    """A relay that opens a TraceHeaderList of its own: both lists are read, in order."""
    package = parse_package(
        build(
            traces=f"<TraceHeader>{RELAY_AT}</TraceHeader>",
            header_extra="<TraceHeaderList><TraceHeader><OrganId>"
            "000.00.00.G22</OrganId></TraceHeader>"
            "</TraceHeaderList>",
        )
    )
    assert [t.organ_id for t in package.model.traces] == [None, "000.00.00.G22"]
    assert package.trace_organs == ("000.00.00.G22",)
    assert "2 TraceHeaderList elements" in " ".join(m for _, m in trace_warnings(package))


def test_a_status_with_malformed_relay_traces_is_accepted() -> None:
    original = (SAMPLES / "status_acceptance_03.edxml").read_bytes()
    relayed = original.replace(
        b"</edXML:MessageHeader>",
        b"</edXML:MessageHeader>"
        b"<edXML:TraceHeaderList><edXML:TraceHeader><edXML:OrganId>null"
        b"</edXML:OrganId></edXML:TraceHeader><edXML:TraceHeader>"
        b"<edXML:Timestamp>2026-11-20T11:00:00</edXML:Timestamp>"
        b"</edXML:TraceHeader></edXML:TraceHeaderList>",
        1,
    )
    package = parse_package(relayed)
    assert package.status_code == "03" and package.trace_organs == ()
    assert {p for p, _ in trace_warnings(package)} == {
        "TraceHeaderList/TraceHeader[1]/OrganId",
        "TraceHeaderList/TraceHeader[1]/Timestamp",
        "TraceHeaderList/TraceHeader[2]/OrganId",
        "TraceHeaderList/TraceHeader[2]/Timestamp",
    }


@pytest.mark.parametrize("case", list(MALFORMED_TRACES))
@pytest.mark.parametrize("business_place", ["after", "before"])
def test_the_node_trace_header_goes_after_a_malformed_last_one(
    case: str, business_place: str
) -> None:
    """Right after the last TraceHeader, however malformed (an empty-element
    `<TraceHeader/>` once made the splice land inside the following Bussiness)."""
    relay, _ = MALFORMED_TRACES[case]
    traces = (
        "{business}" + SENDER_TRACE + relay
        if business_place == "before"
        else SENDER_TRACE + relay + "{business}"
    )
    original = build(traces=traces, business_type="2")
    delivered = with_trace_header(original, NODE, AT)
    start = delivered.index(f'<TraceHeader xmlns="{QCVN_NS}">'.encode())
    end = delivered.index(b"</TraceHeader>", start) + len(b"</TraceHeader>")
    assert delivered[:start] + delivered[end:] == original
    assert delivered[:start].endswith(relay.encode())  # right after the malformed one
    assert f"<OrganId>{NODE}</OrganId>".encode() in delivered[start:end]
    package = parse_package(delivered)
    assert package.trace_organs[-1] == NODE and len(package.model.traces) == 3
    assert package.model.traces[-1].timestamp == AT.replace(tzinfo=VIETNAM)
    assert package.business_type == 2


def test_sender_trace_is_the_one_naming_the_sender_never_an_anonymous_one() -> None:
    at = datetime(2026, 11, 20, 9, 0, tzinfo=VIETNAM)
    anonymous, relay = (
        TraceHeader(timestamp=at),
        TraceHeader(organ_id="000.00.00.G22", timestamp=at),
    )
    sender = TraceHeader(organ_id="000.00.01.H53", timestamp=at)
    assert sender_trace([anonymous, sender], "000.00.01.H53") is sender
    assert sender_trace([relay, sender], "000.00.01.H53") is sender
    assert sender_trace([relay], "000.00.01.H53") is relay  # a sender writing another code
    assert sender_trace([anonymous, relay], "000.00.01.H53") is None
    assert sender_trace([TraceHeader(organ_id="no code!", timestamp=at)], "x") is None
    assert sender_trace([], "000.00.01.H53") is None


def test_signing_time_falls_back_to_receipt_without_a_sender_trace() -> None:
    received = datetime(2026, 11, 20, 12, 0, tzinfo=VIETNAM)
    anonymous_only = parse_package(build(traces=f"<TraceHeader>{RELAY_AT}</TraceHeader>"))
    assert signing_time(anonymous_only, received) == received
    relayed = parse_package(build(traces=SENDER_TRACE + f"<TraceHeader>{RELAY_AT}</TraceHeader>"))
    assert signing_time(relayed, received) == datetime(2026, 11, 20, 10, 0, tzinfo=VIETNAM)
    no_time = parse_package(
        build(traces="<TraceHeader><OrganId>000.00.00.H53</OrganId></TraceHeader>")
    )
    assert signing_time(no_time, received) == received


# -- real traffic: optional values nobody routes on are warnings ------------------------------

LENIENT_VALUES = [
    ("<DueDate>28/09/2018</DueDate>", "MessageHeader/DueDate"),
    ("<DueDate>2018/02/30</DueDate>", "MessageHeader/DueDate"),
    ("<SteeringType>1000</SteeringType>", "MessageHeader/SteeringType"),
    ("<SteeringType>khẩn</SteeringType>", "MessageHeader/SteeringType"),
    ("<OtherInfo><Priority>7</Priority></OtherInfo>", "MessageHeader/OtherInfo/Priority"),
    ("<OtherInfo><Priority>Khẩn</Priority></OtherInfo>", "MessageHeader/OtherInfo/Priority"),
    ("<OtherInfo><PageAmount>two</PageAmount></OtherInfo>", "MessageHeader/OtherInfo/PageAmount"),
    (
        "<OtherInfo><PromulgationAmount>-1</PromulgationAmount></OtherInfo>",
        "MessageHeader/OtherInfo/PromulgationAmount",
    ),
    ("<OtherInfo><Direction>yes</Direction></OtherInfo>", "MessageHeader/OtherInfo/Direction"),
    (
        "<ResponseFor><PromulgationDate>2019-01-17</PromulgationDate></ResponseFor>",
        "MessageHeader/ResponseFor[1]/PromulgationDate",
    ),
]


@pytest.mark.parametrize(("element", "path"), LENIENT_VALUES, ids=[e for e, _ in LENIENT_VALUES])
def test_a_bad_optional_value_is_ignored_with_a_warning(element: str, path: str) -> None:
    package = parse_package(build(message_extra=element))
    [warning] = [w for w in package.warnings if w.code == "EDXML_VALUE_IGNORED"]
    assert (warning.path, warning.severity) == (path, "warning")
    assert "ignored" in warning.message
    header = package.model.header
    assert isinstance(header, DocumentHeader)
    assert header.due_date is None and header.steering_type is None
    assert header.other_info is None or header.other_info == OtherInfo()


def test_bad_paper_and_update_flags_are_ignored_with_a_warning() -> None:
    business = (
        "<Bussiness><BussinessDocType>2</BussinessDocType><Paper>true</Paper>"
        "<BussinessDocumentInfo><DocumentInfo>yes</DocumentInfo>"
        "<DocumentReceiver>2</DocumentReceiver></BussinessDocumentInfo></Bussiness>"
    )
    package = parse_package(build(traces=SENDER_TRACE + business))
    assert {w.path for w in package.warnings if w.code == "EDXML_VALUE_IGNORED"} == {
        "TraceHeaderList/Bussiness/Paper",
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/DocumentInfo",
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/DocumentReceiver",
    }
    assert isinstance(package.model, DocumentPackage) and package.model.business is not None
    assert package.model.business.paper is None and package.business_type == 2


def test_a_bad_status_timestamp_is_ignored_with_a_warning() -> None:
    original = (SAMPLES / "status_acceptance_03.edxml").read_bytes()
    broken = re.sub(rb"(<edXML:Timestamp>)[^<]*", rb"\g<1>hom qua", original, count=1)
    assert broken != original
    package = parse_package(broken)
    assert [(w.code, w.path) for w in package.warnings] == [
        ("EDXML_VALUE_IGNORED", "MessageHeader/Timestamp")
    ]
    assert isinstance(package.model, StatusPackage) and package.model.header.timestamp is None


def test_promulgation_date_tomorrow_is_a_warning_later_is_refused() -> None:
    today = datetime.now(VIETNAM).date()
    tomorrow = parse_package(build(promulgated=f"{today + timedelta(days=1):%Y/%m/%d}"))
    assert [(w.code, w.path, w.severity) for w in tomorrow.warnings] == [
        ("EDXML_FUTURE_DATE", "MessageHeader/PromulgationInfo/PromulgationDate", "warning")
    ]
    later = build(promulgated=f"{today + timedelta(days=2):%Y/%m/%d}")
    assert problems(later) == {
        ("EDXML_FUTURE_DATE", "MessageHeader/PromulgationInfo/PromulgationDate")
    }


@pytest.mark.parametrize(
    ("package", "path"),
    [
        (
            build(
                header_extra="<MessageHeader><From><OrganId>000.00.00.G22</OrganId></From>"
                "</MessageHeader>"
            ),
            "MessageHeader",
        ),
        (
            build(
                traces=SENDER_TRACE + "<Bussiness><BussinessDocType>0</BussinessDocType>"
                "</Bussiness><Bussiness><BussinessDocType>1"
                "</BussinessDocType></Bussiness>"
            ),
            "TraceHeaderList/Bussiness",
        ),
        (
            build(
                traces=SENDER_TRACE + "<Bussiness/>",
                header_extra="<TraceHeaderList><Bussiness>"
                "<BussinessDocType>1</BussinessDocType></Bussiness></TraceHeaderList>",
            ),
            "TraceHeaderList/Bussiness",
        ),
        (
            build().replace(
                b"</edXML:edXMLHeader>",
                b"</edXML:edXMLHeader><edXML:edXMLHeader></edXML:edXMLHeader>",
            ),
            "edXMLHeader",
        ),
    ],
)
def test_a_second_header_or_business_act_is_ambiguous_and_refused(
    package: bytes, path: str
) -> None:
    assert ("EDXML_DUPLICATE_ELEMENT", path) in problems(package)


def test_whitespace_around_codes_is_not_a_problem() -> None:
    package = parse_package(
        build(to=(" 000.00.13.H53\n",)).replace(
            b"<OrganId>000.00.00.H53</OrganId></From>",
            b"<OrganId>\t000.00.00.H53 </OrganId></From>",
        )
    )
    assert (package.from_code, package.to_codes) == ("000.00.00.H53", ("000.00.13.H53",))
    assert package.warnings == ()


def test_the_samples_carry_no_unexpected_warning() -> None:
    """Every published sample the node accepts: only the 3-group code of edoc_new is a
    warning (the business packages' signatures are judged by the signature policy)."""
    for path in sorted(SAMPLES.glob("*.edxml")):
        if path.name == "edoc.edxml":
            continue
        expected = (
            [("EDXML_CODE_NONSTANDARD", "MessageHeader/To[1]/OrganId")]
            if path.name == "edoc_new.edxml"
            else []
        )
        assert [(w.code, w.path) for w in parse_package(path).warnings] == expected, path.name


def test_empty_optional_elements_are_absent_without_a_warning() -> None:
    package = parse_package(
        build(
            message_extra="<OtherInfo/><SignerInfo/><ToPlaces/>"
            "<DueDate/><SteeringType> </SteeringType>"
            "<ResponseFor><OrganId></OrganId><Code/>"
            "</ResponseFor>"
        )
    )
    assert package.warnings == ()
    header = package.model.header
    assert isinstance(header, DocumentHeader)
    assert (header.due_date, header.steering_type, header.to_places) == (None, None, [])
