"""Reading edXML packages (SPEC §2.1–2.2) and appending the node's TraceHeader."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pytest
from lxml import etree

from gateway.edxml.namespaces import QCVN_NS
from gateway.edxml.parser import ParsedPackage, hardened_parser, parse_package
from gateway.edxml.trace import with_trace_header
from gateway.errors import PackageRejected
from gateway.types import MessageKind

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "vpcp-sdk"
G22_DOCUMENT = "000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"
G22_RECIPIENTS = ("000.00.00.H41", "000.00.00.H14", "000.00.00.G17")
NODE = "000.00.00.H53"
AT = datetime(2026, 11, 21, 4, 17, 20)


def build(*, to: tuple[str, ...] = ("000.00.13.H53",), subject: str | None = "Công văn",
          code_number: str | None = "12", business_type: str | None = None,
          doctype: str = "") -> bytes:
    """A small new-document package; `None` leaves the element out."""
    recipients = "".join(f"<To><OrganId>{code}</OrganId></To>" for code in to)
    number = f"<CodeNumber>{code_number}</CodeNumber>" if code_number is not None else ""
    subject_element = f"<Subject>{subject}</Subject>" if subject is not None else ""
    business = (f"<Bussiness><BussinessDocType>{business_type}</BussinessDocType></Bussiness>"
                if business_type is not None else "")
    return f"""<?xml version="1.0" encoding="UTF-8"?>{doctype}
<edXML xmlns="{QCVN_NS}"><edXML:edXMLEnvelope xmlns:edXML="{QCVN_NS}"><edXML:edXMLHeader>
<edXML:MessageHeader><From><OrganId>000.00.00.H53</OrganId></From>{recipients}
<edXML:Code>{number}<CodeNotation>UBND-VP</CodeNotation></edXML:Code>
<PromulgationInfo><PromulgationDate>2026/11/20</PromulgationDate></PromulgationInfo>
<DocumentType><Type>1</Type></DocumentType>{subject_element}
<DocumentId>000.00.00.H53,2026/11/20,12/UBND-VP</DocumentId></edXML:MessageHeader>
<TraceHeaderList><TraceHeader><OrganId>000.00.00.H53</OrganId>
<Timestamp>2026/11/20 10:00:00</Timestamp></TraceHeader>{business}</TraceHeaderList>
</edXML:edXMLHeader></edXML:edXMLEnvelope></edXML>""".encode()


def rejection(source: Path | bytes) -> PackageRejected:
    with pytest.raises(PackageRejected) as caught:
        parse_package(source)
    return caught.value


def problems(source: Path | bytes) -> set[tuple[str, str]]:
    return {(p.code, p.path) for p in rejection(source).problems}


def everything_said(error: PackageRejected) -> str:
    return " ".join([str(error), error.detail, error.error_desc,
                     *(f"{p.path} {p.message}" for p in error.problems)])


# -- the published samples -------------------------------------------------------------------

@pytest.mark.parametrize(("name", "from_code", "to_codes", "business_type"), [
    ("edoc_new.edxml", "000.00.00.A80", ("28.22.H17",), 0),
    ("edoc_revocation.edxml", "000.00.00.G22", G22_RECIPIENTS, 1),
    ("edoc_update.edxml", "000.00.00.G22", G22_RECIPIENTS, 2),
    ("edoc_replacement.edxml", "000.00.00.G22", G22_RECIPIENTS, 3),
])
def test_sample_documents(name: str, from_code: str, to_codes: tuple[str, ...],
                          business_type: int) -> None:
    package = parse_package(SAMPLES / name)
    assert (package.kind, package.from_code, package.to_codes, package.business_type) == (
        MessageKind.EDOC, from_code, to_codes, business_type)
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
    package = package.replace(b"<edXML:AttachmentEncoded>",
                              f'<edXML:AttachmentEncoded xmlns:edXML="{QCVN_NS}">'.encode())
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
        ("EDXML_CODE_NONSTANDARD", "MessageHeader/To[1]/OrganId", "warning")]


def test_built_package_is_valid() -> None:
    package = parse_package(build(to=("000.00.13.H53", "vxp.saas.03"), business_type="0"))
    assert isinstance(package, ParsedPackage)
    assert package.to_codes == ("000.00.13.H53", "vxp.saas.03")
    assert (package.code_number, package.code_notation) == ("12", "UBND-VP")


# -- refusals --------------------------------------------------------------------------------

@pytest.mark.parametrize(("package", "expected"), [
    (build(to=()), ("EDXML_REQUIRED", "MessageHeader/To")),
    (build(to=("000.00.13.H53", "000.00.13.H53")),
     ("EDXML_DUPLICATE_RECIPIENT", "MessageHeader/To[2]/OrganId")),
    (build(to=("000.00.13.H53", "bad code!")),
     ("EDXML_CODE_INVALID", "MessageHeader/To[2]/OrganId")),
    (build(subject=None), ("EDXML_REQUIRED", "MessageHeader/Subject")),
    (build(subject="   "), ("EDXML_REQUIRED", "MessageHeader/Subject")),
    (build(code_number=None), ("EDXML_REQUIRED", "MessageHeader/Code/CodeNumber")),
    (build(business_type="4"), ("EDXML_VALUE", "TraceHeaderList/Bussiness/BussinessDocType")),
    (build(business_type="new"), ("EDXML_VALUE", "TraceHeaderList/Bussiness/BussinessDocType")),
])
def test_refusal_names_rule_and_element(package: bytes, expected: tuple[str, str]) -> None:
    assert problems(package) == {expected}


def test_all_problems_are_reported_together() -> None:
    error = rejection(build(to=("000.00.13.H53", "000.00.13.H53"), subject=None,
                            code_number=None, business_type="9"))
    assert {(p.code, p.path) for p in error.problems} == {
        ("EDXML_DUPLICATE_RECIPIENT", "MessageHeader/To[2]/OrganId"),
        ("EDXML_REQUIRED", "MessageHeader/Subject"),
        ("EDXML_REQUIRED", "MessageHeader/Code/CodeNumber"),
        ("EDXML_VALUE", "TraceHeaderList/Bussiness/BussinessDocType"),
    }
    assert "(+3 more)" in error.detail


@pytest.mark.parametrize("package", [
    b"<edXML/>",
    b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2015"/>',
    f'<MessageHeader xmlns="{QCVN_NS}"/>'.encode(),
])
def test_wrong_root_or_namespace(package: bytes) -> None:
    assert problems(package) == {("EDXML_ROOT", "/")}


@pytest.mark.parametrize("package", [b"", b"<edXML", build()[:-3], b"not xml at all",
                                     build().replace(b"</Subject>", b"</Subjct>")])
def test_not_well_formed(package: bytes) -> None:
    assert {code for code, _ in problems(package)} == {"XML_MALFORMED"}


def test_entity_declarations_are_forbidden() -> None:
    doctype = '<!DOCTYPE edXML [<!ENTITY org "000.00.13.H53">]>'
    assert problems(build(to=("&org;",), doctype=doctype)) == {("XML_DTD_FORBIDDEN", "/")}


def test_billion_laughs_is_forbidden_quickly() -> None:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
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
    assert delivered[:start] + delivered[start + added:] == original
    return delivered[start:start + added]


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
    original = build(business_type="1").replace(
        b"<TraceHeader><OrganId>000.00.00.H53</OrganId>\n"
        b"<Timestamp>2026/11/20 10:00:00</Timestamp></TraceHeader>", b"")
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
