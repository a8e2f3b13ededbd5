"""Writing edXML packages (gateway.edxml.builder): whatever the builder writes, the node's parser
reads back as the same model — for the SDK samples and for generated packages."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tracemalloc
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.edxml.builder import build_package, write_package
from gateway.edxml.model import (
    VIETNAM,
    Attachment,
    Business,
    BusinessDocumentInfo,
    BusinessType,
    DocumentCode,
    DocumentHeader,
    DocumentPackage,
    DocumentType,
    ManifestReference,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    Receiver,
    ReceiverType,
    ReplacementInfo,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    StatusCode,
    StatusHeader,
    StatusPackage,
    TraceHeader,
)
from gateway.edxml.namespaces import QCVN_NS
from gateway.edxml.parser import parse_package
from tests.support.samples import SAMPLES

ROUND_TRIP_SAMPLES = sorted(p for p in SAMPLES.glob("*.edxml") if p.name != "edoc.edxml")
_ENCODED = re.compile(rb"<(?:\w+:)?ContentTransferEncoded\b[^>]*>(.*?)</", re.S)
TODAY = datetime.now(VIETNAM).date()

PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def sample_attachments(path: Path, package: DocumentPackage | StatusPackage) -> dict[str, bytes]:
    """The bytes of each attachment of a sample, decoded here (not by the node)."""
    if not isinstance(package, DocumentPackage):
        return {}
    encoded = _ENCODED.findall(path.read_bytes())
    assert len(encoded) == len(package.attachments)
    return {
        attachment.content_id: base64.b64decode(b"".join(text.split()), validate=True)
        for attachment, text in zip(package.attachments, encoded, strict=True)
    }


def minimal_document(**changes: object) -> DocumentPackage:
    package = DocumentPackage.model_validate(
        {
            "header": {
                "From": {"OrganId": "000.00.01.H53"},
                "To": [{"OrganId": "000.00.13.H53"}],
                "DocumentId": "000.00.01.H53,2024/05/06,12/UBND-VP",
                "Code": {"CodeNumber": "12", "CodeNotation": "UBND-VP"},
                "PromulgationInfo": {"PromulgationDate": "2024-05-06"},
                "DocumentType": {"Type": 1},
                "Subject": "Công văn",
            },
            "manifest_version": "1.0",
        }
    )
    return package.model_copy(update=changes)


# -- the SDK samples -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ROUND_TRIP_SAMPLES, ids=lambda p: p.stem)
def test_samples_round_trip(path: Path) -> None:
    parsed = parse_package(path)
    attachments = sample_attachments(path, parsed.model)
    rebuilt = parse_package(build_package(parsed.model, attachments))
    assert rebuilt.model == parsed.model.model_copy(update={"signed": False})
    assert [(a.size, a.sha256) for a in rebuilt.attachments] == [
        (a.size, a.sha256) for a in parsed.attachments
    ]
    assert {w.code for w in rebuilt.warnings} <= {w.code for w in parsed.warnings}


def test_the_output_has_the_shape_of_the_samples() -> None:
    path = SAMPLES / "edoc_update.edxml"
    parsed = parse_package(path)
    text = build_package(parsed.model, sample_attachments(path, parsed.model)).decode()
    assert text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<edXML xmlns="{QCVN_NS}">\n'
        f'  <edXML:edXMLEnvelope xmlns:edXML="{QCVN_NS}">\n'
    )
    order = [
        "<edXML:edXMLHeader>",
        "<edXML:MessageHeader>",
        "<edXML:From>",
        "<edXML:To>",
        "<edXML:DocumentId>",
        "<edXML:Code>",
        "</edXML:MessageHeader>",
        "<edXML:TraceHeaderList>",
        "<edXML:TraceHeader>",
        "<edXML:Bussiness>",
        "<edXML:BussinessDocType>2<",
        "<edXML:ReceiverList>",
        "</edXML:TraceHeaderList>",
        "</edXML:edXMLHeader>",
        "<edXML:edXMLBody>",
        '<edXML:edXMLManifest version="1.0">',
        "<edXML:Reference>",
        "</edXML:edXMLEnvelope>",
        "<AttachmentEncoded>",
        "<Attachment>",
        "<ContentId>cid:209</ContentId>",
        "<ContentTransferEncoded>UEsD",
        "</AttachmentEncoded>",
        "</edXML>",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "Signature" not in text


def test_status_packages_have_no_body_and_a_trace_list_only_with_traces() -> None:
    parsed = parse_package(SAMPLES / "status_acceptance_03.edxml")
    assert isinstance(parsed.model, StatusPackage)
    text = build_package(parsed.model).decode()
    assert "edXMLBody" not in text and "TraceHeaderList" not in text
    assert "<edXML:StatusCode>03</edXML:StatusCode>" in text
    traced = parsed.model.model_copy(
        update={
            "traces": [
                TraceHeader.model_validate(
                    {
                        "OrganId": "000.00.00.H41",
                        "Timestamp": datetime(2024, 1, 2, 3, 4, 5, tzinfo=VIETNAM),
                    }
                )
            ]
        }
    )
    text = build_package(traced).decode()
    assert "<edXML:TraceHeaderList>" in text
    assert "<edXML:Timestamp>2024/01/02 03:04:05</edXML:Timestamp>" in text
    assert parse_package(text.encode()).model == traced


# -- values and escaping ---------------------------------------------------------------------


def test_values_are_written_in_edxml_form() -> None:
    package = minimal_document().model_copy(
        update={
            "header": minimal_document().header.model_copy(
                update={
                    "other_info": OtherInfo.model_validate(
                        {"Priority": 3, "Direction": True, "PageAmount": 0}
                    ),
                    "due_date": date(2024, 6, 1),
                }
            )
        }
    )
    text = build_package(package).decode()
    for fragment in (
        "<edXML:Priority>3</edXML:Priority>",
        "<edXML:Direction>true<",
        "<edXML:PageAmount>0<",
        "<edXML:DueDate>2024/06/01<",
        "<edXML:PromulgationDate>2024/05/06<",
        "<edXML:Type>1<",
    ):
        assert fragment in text
    assert parse_package(text.encode()).model == package


def test_timestamps_are_written_in_vietnam_time() -> None:
    trace = TraceHeader.model_validate(
        {"OrganId": "000.00.01.H53", "Timestamp": datetime(2024, 1, 1, 23, 30, tzinfo=UTC)}
    )
    package = minimal_document(traces=[trace])
    text = build_package(package).decode()
    assert "<edXML:Timestamp>2024/01/02 06:30:00</edXML:Timestamp>" in text
    assert parse_package(text.encode()).model == package


def test_text_is_escaped() -> None:
    subject = "A & B <b>\"x\"</b> 'y' ]]> &amp; Đà Nẵng"
    package = minimal_document(
        header=minimal_document().header.model_copy(update={"subject": subject})
    )
    data = build_package(package)
    assert b"]]&gt;" in data and b"&amp;amp;" in data and b"<b>" not in data
    assert parse_package(data).model.header.subject == subject  # type: ignore[union-attr]


def test_characters_xml_cannot_carry_are_refused() -> None:
    package = minimal_document(
        header=minimal_document().header.model_copy(update={"subject": "bell \x07"})
    )
    with pytest.raises(ValueError, match="U\\+0007"):
        build_package(package)


def test_attachment_bytes_must_match_the_declared_attachments() -> None:
    package = minimal_document(
        references=[ManifestReference.model_validate({"ContentId": "cid:a"})],
        attachments=[Attachment.model_validate({"ContentId": "cid:a"})],
    )
    with pytest.raises(ValueError, match="no bytes given"):
        build_package(package)
    with pytest.raises(ValueError, match="undeclared"):
        build_package(package, {"cid:a": b"x", "b": b"y"})
    with pytest.raises(ValueError, match="undeclared"):
        build_package(parse_package(SAMPLES / "status.edxml").model, {"a": b"x"})


def test_a_missing_manifest_version_is_written_as_1_0() -> None:
    package = minimal_document(manifest_version=None)
    data = build_package(package)
    assert b'<edXML:edXMLManifest version="1.0">' in data
    assert parse_package(data).model == package.model_copy(update={"manifest_version": "1.0"})


# -- large attachments are streamed ----------------------------------------------------------


def test_a_large_file_attachment_is_streamed_and_round_trips(tmp_path: Path) -> None:
    content = tmp_path / "big.pdf"
    size = 8 << 20
    with open(content, "wb") as handle:
        handle.write(b"%PDF-1.7\n" + bytes(range(256)) * 16)
        handle.write(hashlib.sha256(b"seed").digest() * ((size - handle.tell()) // 32))
        handle.write(b"\n%%EOF\n")
    expected = hashlib.sha256(content.read_bytes()).hexdigest()
    package = minimal_document(
        manifest_version="1.0",
        references=[
            ManifestReference.model_validate(
                {
                    "ContentId": "cid:big",
                    "ContentType": "application/pdf",
                    "AttachmentName": "Quyết định số 12.pdf",
                }
            )
        ],
        attachments=[
            Attachment.model_validate(
                {
                    "ContentId": "big",
                    "ContentType": "application/pdf",
                    "AttachmentName": "Quyết định số 12.pdf",
                }
            )
        ],
    )
    target = tmp_path / "package.edxml"
    tracemalloc.start()
    try:
        with open(target, "wb") as out:
            write_package(package, {"big": content}, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < (4 << 20), f"write_package held {peak} bytes for an 8 MiB file"
    parsed = parse_package(target)
    assert parsed.model == package
    assert [(a.size, a.sha256) for a in parsed.attachments] == [(content.stat().st_size, expected)]


def test_random_file_bytes_round_trip(tmp_path: Path) -> None:
    content = tmp_path / "random.bin"
    content.write_bytes(os.urandom((8 << 20) + 1))
    package = minimal_document(
        manifest_version="1.0",
        references=[ManifestReference.model_validate({"ContentId": "r"})],
        attachments=[
            Attachment.model_validate({"ContentId": "cid:r", "AttachmentName": "bảng.xls"})
        ],
    )
    out = io.BytesIO()
    write_package(package, {"cid:r": content}, out)
    parsed = parse_package(out.getvalue())
    assert parsed.model == package
    assert parsed.attachments[0].sha256 == hashlib.sha256(content.read_bytes()).hexdigest()


# -- generated packages ----------------------------------------------------------------------

VIETNAMESE = [
    "Công văn",
    "Quyết định",
    "Ủy ban nhân dân",
    "tỉnh Đắk Lắk",
    "Hỏa tốc",
    "thượng khẩn",
    "Văn phòng Chính phủ",
    "Sở Tài chính",
    "ĐỒNG THÁP",
    "Nguyễn Thị Ngọc Trâm",
]
SPECIALS = ["&", "<", ">", "]]>", '"', "'", "&amp;", "<!--", "a&b", "/", "\\"]
FREE_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Cn", "Co")), max_size=10
)
texts = (
    st.lists(
        st.one_of(st.sampled_from(VIETNAMESE), st.sampled_from(SPECIALS), FREE_TEXT),
        min_size=1,
        max_size=5,
    )
    .map(" ".join)
    .map(str.strip)
    .filter(bool)
)


def optional(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.none() | strategy


codes = st.one_of(
    st.from_regex(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}", fullmatch=True),
    st.from_regex(r"[0-9]{2}\.[0-9]{2}\.[A-Z][0-9]{2}", fullmatch=True),
    st.from_regex(r"[0-9]{3}\.[0-9]{2}\.[0-9]{2}\.[a-z][0-9]{2}", fullmatch=True),
)
past_dates = st.dates(min_value=date(1990, 1, 1), max_value=TODAY - timedelta(days=1))
any_dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2099, 12, 31))
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(VIETNAM)
    ),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
).map(lambda moment: moment.replace(microsecond=0))
small = st.integers(min_value=0, max_value=999)


@st.composite
def organizations(draw: st.DrawFn, organ_id: st.SearchStrategy[str] = codes) -> Organization:
    return Organization.model_validate(
        {
            "OrganId": draw(organ_id),
            **{
                alias: draw(optional(texts))
                for alias in (
                    "OrganizationInCharge",
                    "OrganName",
                    "OrganAdd",
                    "Email",
                    "Telephone",
                    "Fax",
                    "Website",
                )
            },
        }
    )


staff_infos = st.builds(
    lambda department, staff, email, mobile: StaffInfo.model_validate(
        {"Department": department, "Staff": staff, "Email": email, "Mobile": mobile}
    ),
    optional(texts),
    optional(texts),
    optional(texts),
    optional(texts),
)
traces = st.lists(
    st.builds(
        lambda organ, at: TraceHeader.model_validate({"OrganId": organ, "Timestamp": at}),
        codes,
        optional(timestamps),
    ),
    max_size=3,
)
response_fors = st.builds(
    lambda organ, code, day, document: ResponseFor.model_validate(
        {"OrganId": organ, "Code": code, "PromulgationDate": day, "DocumentId": document}
    ),
    optional(codes),
    optional(texts),
    optional(any_dates),
    optional(texts),
)


@st.composite
def businesses(draw: st.DrawFn) -> Business:
    kind = draw(st.sampled_from(BusinessType))
    info = None
    replacements: list[ReplacementInfo] = []
    if kind is BusinessType.UPDATE:
        info = BusinessDocumentInfo.model_validate(
            {
                "DocumentInfo": draw(st.none() | st.integers(0, 1)),
                "DocumentReceiver": draw(st.none() | st.integers(0, 1)),
                "ReceiverList": [
                    Receiver.model_validate({"OrganId": organ, "ReceiverType": kind})
                    for organ, kind in draw(
                        st.lists(st.tuples(codes, st.sampled_from(ReceiverType)), max_size=3)
                    )
                ],
            }
        )
    elif kind is BusinessType.REPLACE:
        replacements = [
            ReplacementInfo.model_validate({"DocumentId": document, "OrganIdList": organs})
            for document, organs in draw(
                st.lists(st.tuples(texts, st.lists(codes, max_size=3)), min_size=1, max_size=3)
            )
        ]
    return Business.model_validate(
        {
            "DocumentId": draw(optional(texts) if kind is BusinessType.NEW else texts),
            "BussinessDocType": kind,
            "BussinessDocReason": draw(optional(texts)),
            "Paper": draw(st.none() | st.integers(0, 1)),
            "BussinessDocumentInfo": info,
            "ReplacementInfoList": replacements,
            "StaffInfo": draw(st.none() | staff_infos),
        }
    )


CONTENT_TYPES = [
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/zip",
    None,
]
EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.ms-excel": ".xls",
    "application/zip": ".zip",
    None: ".pdf",
}


def zipped(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, content)
    return out.getvalue()


@st.composite
def attachment_sets(
    draw: st.DrawFn,
) -> tuple[list[ManifestReference], list[Attachment], dict[str, bytes]]:
    keys = draw(
        st.lists(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,30}", fullmatch=True),
            max_size=3,
            unique=True,
        )
    )
    references, attachments, contents = [], [], {}
    for key in keys:
        content_type = draw(st.sampled_from(CONTENT_TYPES))
        extension = EXTENSIONS[content_type]
        name = draw(optional(texts.map(lambda text, suffix=extension: text + suffix)))
        description = draw(optional(texts))
        content = draw(st.binary(max_size=2048))
        if content_type == "application/zip":
            content = zipped("văn bản.txt", content)
        reference_id = draw(st.sampled_from([key, f"cid:{key}"]))
        attachment_id = draw(st.sampled_from([key, f"cid:{key}"]))
        references.append(
            ManifestReference.model_validate(
                {
                    "ContentId": reference_id,
                    "ContentType": content_type,
                    "Description": description,
                    "AttachmentName": name,
                }
            )
        )
        attachments.append(
            Attachment.model_validate(
                {
                    "ContentId": attachment_id,
                    "AttachmentName": name,
                    "Description": draw(st.sampled_from([description, None])),
                    "ContentType": content_type,
                }
            )
        )
        contents[attachment_id] = content
    return references, attachments, contents


@st.composite
def documents(draw: st.DrawFn) -> tuple[DocumentPackage, dict[str, bytes]]:
    sender = draw(organizations())
    recipients = draw(st.lists(codes, min_size=1, max_size=5, unique=True))
    promulgated = draw(past_dates)
    number, notation = draw(small.map(str) | texts), draw(texts)
    document_id = draw(
        st.one_of(
            st.just(f"{sender.organ_id},{promulgated:%Y/%m/%d},{number}/{notation}"),
            st.uuids().map(str),
            texts,
        )
    )
    header = DocumentHeader.model_validate(
        {
            "From": sender,
            "To": [draw(organizations(st.just(code))) for code in recipients],
            "DocumentId": document_id,
            "Code": DocumentCode.model_validate({"CodeNumber": number, "CodeNotation": notation}),
            "PromulgationInfo": PromulgationInfo.model_validate(
                {"Place": draw(optional(texts)), "PromulgationDate": promulgated}
            ),
            "DocumentType": DocumentType.model_validate(
                {
                    "Type": draw(small),
                    "TypeDetail": draw(st.none() | small),
                    "TypeName": draw(optional(texts)),
                }
            ),
            "Subject": draw(texts),
            "Content": draw(optional(texts)),
            "SignerInfo": draw(
                st.none()
                | st.builds(
                    lambda competence, position, name: SignerInfo.model_validate(
                        {"Competence": competence, "Position": position, "FullName": name}
                    ),
                    optional(texts),
                    optional(texts),
                    optional(texts),
                )
            ),
            "DueDate": draw(st.none() | any_dates),
            "ToPlaces": draw(st.lists(texts, max_size=3)),
            "OtherInfo": draw(
                st.none()
                | st.builds(
                    lambda priority, sphere, typer, amount, pages, direction, appendixes: (
                        OtherInfo.model_validate(
                            {
                                "Priority": priority,
                                "SphereOfPromulgation": sphere,
                                "TyperNotation": typer,
                                "PromulgationAmount": amount,
                                "PageAmount": pages,
                                "Direction": direction,
                                "Appendixes": appendixes,
                            }
                        )
                    ),
                    st.none() | st.sampled_from(Priority),
                    optional(texts),
                    optional(texts),
                    st.none() | st.integers(0, 10**6),
                    st.none() | st.integers(0, 10**6),
                    st.none() | st.booleans(),
                    st.lists(texts, max_size=3),
                )
            ),
            "ResponseFor": draw(st.lists(response_fors, max_size=2)),
            "SteeringType": draw(st.none() | small),
            "ResponseForTask": draw(optional(texts)),
            "ApplicationType": draw(optional(texts)),
        }
    )
    references, attachments, contents = draw(attachment_sets())
    package = DocumentPackage(
        header=header,
        traces=draw(traces),
        business=draw(st.none() | businesses()),
        manifest_version=draw(st.sampled_from(["1.0", "2.0"])),
        references=references,
        attachments=attachments,
    )
    return package, contents


@st.composite
def statuses(draw: st.DrawFn) -> StatusPackage:
    header = StatusHeader.model_validate(
        {
            "From": draw(organizations()),
            "ResponseFor": ResponseFor.model_validate(
                {
                    "OrganId": draw(codes),
                    "Code": f"{draw(small)}/{draw(texts)}",
                    "PromulgationDate": draw(st.none() | past_dates),
                    "DocumentId": draw(texts),
                }
            ),
            "StaffInfo": draw(st.none() | staff_infos),
            "StatusCode": draw(st.sampled_from(StatusCode)),
            "Description": draw(optional(texts)),
            "Timestamp": draw(st.none() | timestamps),
        }
    )
    return StatusPackage(header=header, traces=draw(traces))


@PROPERTY_SETTINGS
@given(documents())
def test_generated_documents_round_trip(
    generated: tuple[DocumentPackage, dict[str, bytes]],
) -> None:
    package, contents = generated
    parsed = parse_package(build_package(package, contents))
    assert parsed.model == package
    assert [(a.size, a.sha256) for a in parsed.attachments] == [
        (len(contents[a.content_id]), hashlib.sha256(contents[a.content_id]).hexdigest())
        for a in package.attachments
    ]


@PROPERTY_SETTINGS
@given(statuses())
def test_generated_statuses_round_trip(package: StatusPackage) -> None:
    assert parse_package(build_package(package)).model == package


def test_uuid_document_ids_and_cid_mismatch_pair() -> None:
    key = str(uuid.uuid4())
    package = minimal_document(
        manifest_version="1.0",
        references=[ManifestReference.model_validate({"ContentId": key})],
        attachments=[
            Attachment.model_validate({"ContentId": f"cid:{key}", "ContentType": "application/pdf"})
        ],
    )
    parsed = parse_package(build_package(package, {f"cid:{key}": b"%PDF"}))
    assert parsed.model == package and parsed.attachments[0].size == 4
