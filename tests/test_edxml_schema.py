"""XSD validation of edXML envelopes (schemas/edxml-*.xsd, SPEC §2.1–2.2)."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.edxml.schema import Kind, validate_envelope
from schemas import schema_path
from tests.support.samples import SAMPLES

QCVN = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
XI = "http://www.w3.org/2001/XInclude"
NS = {"e": QCVN}


def load(name: str) -> etree._Element:
    """A sample as the gateway validates it: recovered (edoc.edxml has unbound prefixes),
    attachment bodies emptied."""
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    root = etree.parse(str(SAMPLES / name), parser).getroot()
    for encoded in root.iter(f"{{{QCVN}}}ContentTransferEncoded"):
        encoded.text = ""
    return root


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and len(found) == 1, path
    element = found[0]
    assert isinstance(element, etree._Element)
    return element


def header(root: etree._Element) -> etree._Element:
    return one(root, "e:edXMLEnvelope/e:edXMLHeader")


def message_header(root: etree._Element) -> etree._Element:
    return one(root, "e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader")


def paths(root: etree._Element, kind: Kind = "edoc") -> list[str]:
    problems = validate_envelope(root, kind)
    assert all(p.code == "EDXML_SCHEMA" and p.severity == "error" for p in problems)
    return [p.path for p in problems]


SAMPLE_FILES = sorted(p.name for p in SAMPLES.glob("*.edxml"))


def test_there_are_samples() -> None:
    assert len(SAMPLE_FILES) >= 15


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_every_sample_is_valid(name: str) -> None:
    kind: Kind = "status" if name.startswith("status") else "edoc"
    assert validate_envelope(load(name), kind) == []


def test_unbound_edxml_prefix_in_the_sdk_sample_is_validated_as_qcvn() -> None:
    # edoc.edxml binds `edXML` on edXMLEnvelope only, then uses it on AttachmentEncoded.
    root = load("edoc.edxml")
    attachment = root[-1][0]
    assert attachment.tag == "edXML:Attachment"  # how recovery parsing left it
    attachment.append(etree.Element(f"{{{QCVN}}}Foo"))
    assert paths(root) == ["AttachmentEncoded/Attachment[1]/Foo"]


def test_element_with_a_prefix_declared_nowhere_is_in_no_namespace() -> None:
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    root = etree.fromstring(
        f'<edXML xmlns="{QCVN}"><edXMLEnvelope><edXMLHeader><MessageHeader>'
        f"<zz:Subject>x</zz:Subject></MessageHeader></edXMLHeader></edXMLEnvelope></edXML>",
        parser,
    )
    [problem] = validate_envelope(root, "edoc")
    assert problem.path == "MessageHeader/Subject"
    assert "prefix 'zz' is not declared" in problem.message


def test_unknown_element() -> None:
    root = load("edoc_new.edxml")
    message_header(root).append(etree.Element(f"{{{QCVN}}}Foo"))
    [problem] = validate_envelope(root, "edoc")
    assert problem.path == "MessageHeader/Foo"
    assert "'Foo' is not allowed in MessageHeader" in problem.message
    assert "allowed: From, To," in problem.message and "{" not in problem.message


def test_element_in_the_empty_namespace() -> None:
    root = load("edoc_new.edxml")
    one(root, "//e:OtherInfo").append(etree.Element("Priority"))
    [problem] = validate_envelope(root, "edoc")
    assert problem.path == "MessageHeader/OtherInfo/Priority"
    assert "no namespace" in problem.message and QCVN in problem.message


def test_element_in_a_foreign_namespace() -> None:
    root = load("edoc_new.edxml")
    include = etree.SubElement(header(root), f"{{{XI}}}include", nsmap={"xi": XI})
    include.set("href", "file:///etc/passwd")
    [problem] = validate_envelope(root, "edoc")
    assert problem.path == "include"
    assert "'xi:include'" in problem.message and XI in problem.message


def test_type_out_of_range() -> None:
    root = load("edoc_new.edxml")
    one(root, "//e:DocumentType/e:Type").text = "1000"
    [problem] = validate_envelope(root, "edoc")
    assert problem.path == "MessageHeader/DocumentType/Type"
    assert problem.message.startswith("Type '1000' is not valid: expected a small non-negative")


LENIENT = [
    ("edoc_update.edxml", "//e:OtherInfo/e:Priority", "7"),
    ("edoc_update.edxml", "//e:DueDate", "2018/13/01"),
    ("edoc_update.edxml", "//e:SteeringType", "khẩn"),
    ("edoc_update.edxml", "//e:DocumentType/e:TypeDetail", "1000"),
    ("edoc_update.edxml", "//e:OtherInfo/e:PromulgationAmount", "two"),
    ("edoc_update.edxml", "//e:OtherInfo/e:Direction", "yes"),
    ("edoc_update.edxml", "//e:Bussiness/e:Paper", "2"),
    ("edoc_update.edxml", "//e:BussinessDocumentInfo/e:DocumentInfo", "yes"),
    ("edoc_update.edxml", "//e:TraceHeader/e:Timestamp", "2018/09/28T00:00:00"),
    ("edoc_update.edxml", "//e:TraceHeader/e:OrganId", "null value"),
    ("status_acceptance_03.edxml", "//e:MessageHeader/e:Timestamp", "hôm qua"),
    ("status_acceptance_03.edxml", "//e:ResponseFor/e:PromulgationDate", "17/01/2019"),
]


@pytest.mark.parametrize(("name", "path", "value"), LENIENT)
def test_values_nobody_routes_on_are_left_to_code(name: str, path: str, value: str) -> None:
    """Their bad values are warnings (read by code, README "Real-traffic decisions"): the
    schema takes any text there."""
    root = load(name)
    one(root, path).text = value
    assert validate_envelope(root, "status" if name.startswith("status") else "edoc") == []


def test_date_with_dashes() -> None:
    root = load("edoc_new.edxml")
    one(root, "//e:PromulgationInfo/e:PromulgationDate").text = "2019-01-17"
    [problem] = validate_envelope(root, "edoc")
    assert problem.path == "MessageHeader/PromulgationInfo/PromulgationDate"
    assert "'2019-01-17'" in problem.message and "yyyy/MM/dd" in problem.message


def test_business_doc_type_out_of_range() -> None:
    root = load("edoc_update.edxml")
    one(root, "//e:Bussiness/e:BussinessDocType").text = "5"
    assert paths(root) == ["TraceHeaderList/Bussiness/BussinessDocType"]


def test_receiver_type_of_the_second_receiver() -> None:
    root = load("edoc_update.edxml")
    one(root, "//e:ReceiverList/e:Receiver[2]/e:ReceiverType").text = "3"
    assert paths(root) == [
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver[2]/ReceiverType"
    ]


def test_status_code_must_have_two_digits() -> None:
    root = load("status_inbox_01.edxml")
    one(root, "//e:StatusCode").text = "1"
    [problem] = validate_envelope(root, "status")
    assert problem.path == "MessageHeader/StatusCode"
    assert "two-digit" in problem.message


def test_status_has_no_body_and_no_attachments() -> None:
    root = load("status.edxml")
    etree.SubElement(one(root, "e:edXMLEnvelope"), f"{{{QCVN}}}edXMLBody")
    etree.SubElement(root, f"{{{QCVN}}}AttachmentEncoded")
    assert paths(root, "status") == ["edXMLBody", "AttachmentEncoded"]


def test_status_header_holds_only_status_fields() -> None:
    root = load("status.edxml")
    etree.SubElement(message_header(root), f"{{{QCVN}}}Subject").text = "x"
    assert paths(root, "status") == ["MessageHeader/Subject"]


def test_status_tolerates_a_trace_header_list_from_a_relay() -> None:
    root = load("status.edxml")
    trace = etree.SubElement(header(root), f"{{{QCVN}}}TraceHeaderList")
    entry = etree.SubElement(trace, f"{{{QCVN}}}TraceHeader")
    etree.SubElement(entry, f"{{{QCVN}}}OrganId").text = "000.00.00.H53"
    etree.SubElement(entry, f"{{{QCVN}}}Timestamp").text = "2026/11/21 04:17:20"
    assert validate_envelope(root, "status") == []
    etree.SubElement(trace, f"{{{QCVN}}}Bussiness")  # a business act has no place in a status
    assert paths(root, "status") == ["TraceHeaderList/Bussiness"]


@pytest.mark.parametrize("kind", ["edoc", "status"])
def test_a_relay_trace_header_is_left_to_code_whatever_it_holds(kind: Kind) -> None:
    """TraceHeaders belong to the relays (SPEC §2.1): `trace_list.py` reads them, every
    defect a warning; the schema only keeps other namespaces out."""
    root = load("edoc_new.edxml" if kind == "edoc" else "status.edxml")
    trace = root.find(f".//{{{QCVN}}}TraceHeaderList")
    if trace is None:
        trace = etree.SubElement(header(root), f"{{{QCVN}}}TraceHeaderList")
    for content in (
        [],
        [("Timestamp", "2026-11-21")],
        [("OrganId", "null")],
        [("OrganId", "bad code!"), ("SystemId", "x"), ("OrganId", "")],
    ):
        entry = etree.SubElement(trace, f"{{{QCVN}}}TraceHeader", Id="relay")
        entry.text = "null"
        for name, text in content:
            etree.SubElement(entry, f"{{{QCVN}}}{name}").text = text
    assert validate_envelope(root, kind) == []
    etree.SubElement(entry, "{urn:other}Note")
    index = len(trace.findall(f"{{{QCVN}}}TraceHeader"))
    assert paths(root, kind) == [f"TraceHeaderList/TraceHeader[{index}]/Note"]


def test_the_document_schema_refuses_status_fields() -> None:
    root = load("edoc_new.edxml")
    etree.SubElement(message_header(root), f"{{{QCVN}}}StatusCode").text = "01"
    assert paths(root) == ["MessageHeader/StatusCode"]


def test_several_errors_are_all_returned_in_document_order() -> None:
    root = load("edoc_update.edxml")
    mh = message_header(root)
    mh.insert(0, etree.Element(f"{{{QCVN}}}Foo"))  # libxml2 stops checking MessageHeader here
    mh.insert(2, etree.Element("Bar"))
    mh.insert(4, etree.Element(f"{{{QCVN}}}Foo"))
    one(root, "//e:OtherInfo").insert(0, etree.Element(f"{{{QCVN}}}Zap"))
    one(root, "//e:DocumentType/e:Type").text = "7a"
    one(root, "//e:PromulgationInfo/e:PromulgationDate").text = "2019-01-17"
    one(root, "//e:To[2]/e:OrganId").text = "yes!"
    one(root, "//e:Bussiness/e:BussinessDocType").text = "5"
    one(root, "//e:ReceiverList/e:Receiver[2]/e:ReceiverType").text = "3"
    one(root, "//e:edXMLManifest").set("lang", "vi")
    assert paths(root) == [
        "MessageHeader/Foo",  # once: same-named unexpected siblings are one problem
        "MessageHeader/Bar",
        "MessageHeader/To[2]/OrganId",
        "MessageHeader/PromulgationInfo/PromulgationDate",
        "MessageHeader/DocumentType/Type",
        "MessageHeader/OtherInfo/Zap",
        "TraceHeaderList/Bussiness/BussinessDocType",
        "TraceHeaderList/Bussiness/BussinessDocumentInfo/ReceiverList/Receiver[2]/ReceiverType",
        "edXMLBody/edXMLManifest",
    ]


def test_the_callers_tree_is_not_modified() -> None:
    root = load("edoc_new.edxml")
    message_header(root).insert(0, etree.Element(f"{{{QCVN}}}Foo"))
    one(root, "//e:DocumentType/e:Type").text = "seven"
    before = etree.tostring(root)
    assert len(validate_envelope(root, "edoc")) == 2
    assert etree.tostring(root) == before


def test_empty_optional_values_and_padded_values_are_accepted() -> None:
    root = load("edoc_new.edxml")
    for path in (
        "//e:OtherInfo/e:Priority",
        "//e:OtherInfo/e:PageAmount",
        "//e:DueDate",
        "//e:DocumentType/e:TypeDetail",
        "//e:SteeringType",
        "//e:Direction",
    ):
        one(root, path).text = ""
    one(root, "//e:DocumentType/e:Type").text = "\n  12\n"
    one(root, "//e:To/e:OrganId").text = " vxp.saas.03 "
    assert validate_envelope(root, "edoc") == []


@pytest.mark.parametrize("value", ["true", "false", "0", "1"])
def test_direction_is_a_boolean(value: str) -> None:
    root = load("edoc_new.edxml")
    one(root, "//e:Direction").text = value
    assert validate_envelope(root, "edoc") == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("//e:To[2]/e:OrganId", "000.00.00.H53;DROP"),
        ("//e:To[3]/e:OrganId", "000..H53"),
        ("//e:From/e:OrganId", "A" * 36),
        ("//e:PromulgationInfo/e:PromulgationDate", "2018/13/01"),
        ("//e:ReceiverList/e:Receiver[1]/e:ReceiverType", "yes"),
        ("//e:Bussiness/e:BussinessDocType", "new"),
        ("//e:DocumentType/e:Type", "-1"),
    ],
)
def test_bad_values(path: str, value: str) -> None:
    root = load("edoc_update.edxml")
    one(root, path).text = value
    [problem] = validate_envelope(root, "edoc")
    assert f"'{value}' is not valid: expected" in problem.message


def test_signature_in_either_namespace_with_unchecked_content() -> None:
    root = load("edoc_new.edxml")  # unprefixed Signature: QCVN namespace
    assert one(root, "e:edXMLEnvelope/e:edXMLHeader/e:Signature") is not None
    one(root, "//e:Signature/e:KeyInfo").append(etree.Element("{urn:anything}Extra"))
    assert validate_envelope(root, "edoc") == []
    root = load("edoc.edxml")  # XML-DSig namespace
    assert header(root)[-1].tag == f"{{{DSIG}}}Signature"
    assert validate_envelope(root, "edoc") == []


def test_only_signature_may_come_from_the_xmldsig_namespace() -> None:
    root = load("edoc.edxml")
    etree.SubElement(header(root), f"{{{DSIG}}}KeyInfo")
    [problem] = validate_envelope(root, "edoc")
    assert problem.path == "KeyInfo" and "only Signature" in problem.message


def test_newer_producer_elements_are_allowed_with_any_content() -> None:
    root = load("edoc_new.edxml")
    task = etree.SubElement(message_header(root), f"{{{QCVN}}}ResponseForTask")
    etree.SubElement(task, f"{{{QCVN}}}TaskId").text = "42"
    etree.SubElement(message_header(root), f"{{{QCVN}}}ApplicationType").text = "1"
    assert validate_envelope(root, "edoc") == []


def test_text_and_children_where_they_do_not_belong() -> None:
    root = load("edoc_new.edxml")
    one(root, "//e:MessageHeader/e:From").text = "junk"
    one(root, "//e:Subject").append(etree.Element(f"{{{QCVN}}}b"))
    problems = validate_envelope(root, "edoc")
    assert [p.path for p in problems] == ["MessageHeader/From", "MessageHeader/Subject"]
    assert "'junk'" in problems[0].message and "child elements" in problems[1].message


def test_reference_tolerates_any_attribute_but_not_other_elements() -> None:
    root = load("edoc_new.edxml")
    reference = one(root, "//e:edXMLManifest/e:Reference")
    reference.set("{http://www.w3.org/1999/xlink}href", "cid:209")
    assert validate_envelope(root, "edoc") == []
    one(root, "e:edXMLEnvelope/e:edXMLBody").append(etree.Element(f"{{{QCVN}}}Reference"))
    assert paths(root) == ["edXMLBody/Reference"]


def test_wrong_root() -> None:
    [problem] = validate_envelope(etree.fromstring('<edXML xmlns="urn:other"/>'), "edoc")
    assert problem.path == "edXML" and "urn:other" in problem.message


def test_schemas_are_self_contained() -> None:
    for name in ("edxml-document.xsd", "edxml-status.xsd"):
        text = schema_path(name).read_text(encoding="utf-8")
        assert "schemaLocation" not in text and "<!DOCTYPE" not in text
        assert f'targetNamespace="{QCVN}"' in text and 'elementFormDefault="qualified"' in text


def test_a_flood_of_unknown_elements_is_reported_once_per_name() -> None:
    """Same-named unexpected siblings go in one pass: 10 000 of them are one problem (the
    old pass-per-element loop took 14 s here: a denial of service)."""
    root = load("edoc_new.edxml")
    for index in range(10_000):
        message_header(root).append(etree.Element(f"{{{QCVN}}}{'Foo' if index % 2 else 'Bar'}"))
    problems = validate_envelope(root, "edoc")
    assert sorted(p.path for p in problems) == ["MessageHeader/Bar", "MessageHeader/Foo"]


def test_first_validations_on_many_threads_at_once_compile_the_schema_once() -> None:
    """libxml2's schema compiler is not thread-safe: a fresh process whose first packages
    arrive together must not fail them ("not a built-in type")."""
    import concurrent.futures

    from gateway.edxml import schema as schema_module

    schema_module._compile.cache_clear()
    root = load("status.edxml")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: validate_envelope(root, "status"), range(32)))
    assert results == [[]] * 32
