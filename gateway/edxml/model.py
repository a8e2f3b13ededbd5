"""The typed model of edXML packages (SPEC §2.1–2.2, QCVN 102:2016).

Each field's alias is its element's local name: the reader (`reader.py`) and the builder
(`builder.py`) walk these declarations, so there is one place that says which element holds
what. Lists whose items sit in a wrapper element (`ToPlaces/Place*`) say so with `wrapped`.
Fields are declared in the order the builder writes them (parsing accepts any order).
Optional fields nobody routes on are marked `LENIENT`: a bad value there is a warning and is
left out, never a refusal (README "Real-traffic decisions").
"""

from __future__ import annotations

import types
from datetime import date, datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Union, get_args, get_origin
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
"""edXML timestamps carry no zone: they are local time in Vietnam (SPEC §2.1)."""
SMALL_CODE_MAX = 999
"""DocumentType/Type, TypeDetail and SteeringType meanings differ between sources: any small
non-negative integer is accepted (SPEC §2.1), bounded as in the XSD."""
DATE_FORMAT = "%Y/%m/%d"
TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"


def field_type(annotation: Any) -> tuple[Any, bool]:
    """(item type, is a list) of a field declared `X`, `X | None` or `list[X]`: what the
    reader converts to and the builder writes from."""
    origin = get_origin(annotation)
    if origin is list:
        return get_args(annotation)[0], True
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return field_type(inner[0])[0], False
    return annotation, False


LENIENT: dict[str, Any] = {"lenient": True}
"""`json_schema_extra` of an optional field whose bad value is ignored with a warning
(EDXML_VALUE_IGNORED) instead of refusing the package: real producers write junk there
(a malformed DueDate, Priority 7) and neither the node nor a recipient routes on it."""


def is_lenient(extra: Any) -> bool:
    return isinstance(extra, dict) and bool(extra.get("lenient"))


def wrapped(item: str) -> dict[str, Any]:
    """`json_schema_extra` marking a list whose items are `<item>` children of the field's
    own element (e.g. `ToPlaces` → `Place*`)."""
    return {"wrapped": item}


class Priority(IntEnum):
    NORMAL = 0
    URGENT = 1  # khẩn
    VERY_URGENT = 2  # thượng khẩn
    FLASH = 3  # hỏa tốc
    TIMED_FLASH = 4  # hỏa tốc hẹn giờ


class BusinessType(IntEnum):
    NEW = 0
    REVOKE = 1  # thu hồi
    UPDATE = 2  # cập nhật
    REPLACE = 3  # thay thế


class ReceiverType(IntEnum):
    REMOVED = 0
    ADDED = 1


class StatusCode(StrEnum):
    ARRIVED = "01"  # đã đến
    REJECTED = "02"  # từ chối tiếp nhận
    ACCEPTED = "03"  # đã tiếp nhận, vào sổ
    ASSIGNED = "04"  # phân công xử lý
    PROCESSING = "05"  # đang xử lý
    COMPLETED = "06"  # hoàn thành
    RECALL_REQUEST = "13"  # lấy lại / thu hồi
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"


Text = Annotated[str | None, Field(default=None)]


class Element(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")


class Organization(Element):
    """From, or one To: the agency and how to reach it."""

    organ_id: str = Field(alias="OrganId")
    organization_in_charge: Text = Field(None, alias="OrganizationInCharge")
    organ_name: Text = Field(None, alias="OrganName")
    organ_add: Text = Field(None, alias="OrganAdd")
    email: Text = Field(None, alias="Email")
    telephone: Text = Field(None, alias="Telephone")
    fax: Text = Field(None, alias="Fax")
    website: Text = Field(None, alias="Website")


class DocumentCode(Element):
    """Số và ký hiệu: `7816/VPCP-TTĐT` is number 7816, notation VPCP-TTĐT."""

    code_number: str = Field(alias="CodeNumber")
    code_notation: str = Field(alias="CodeNotation")


class PromulgationInfo(Element):
    place: Text = Field(None, alias="Place")
    promulgation_date: date = Field(alias="PromulgationDate")


class DocumentType(Element):
    type: int = Field(alias="Type", ge=0, le=SMALL_CODE_MAX)
    type_detail: int | None = Field(
        None, alias="TypeDetail", ge=0, le=SMALL_CODE_MAX, json_schema_extra=LENIENT
    )
    type_name: Text = Field(None, alias="TypeName")


class SignerInfo(Element):
    competence: Text = Field(None, alias="Competence")
    position: Text = Field(None, alias="Position")
    full_name: Text = Field(None, alias="FullName")


class OtherInfo(Element):
    priority: Priority | None = Field(None, alias="Priority", json_schema_extra=LENIENT)
    sphere_of_promulgation: Text = Field(None, alias="SphereOfPromulgation")
    typer_notation: Text = Field(None, alias="TyperNotation")
    promulgation_amount: int | None = Field(
        None, alias="PromulgationAmount", ge=0, json_schema_extra=LENIENT
    )
    page_amount: int | None = Field(None, alias="PageAmount", ge=0, json_schema_extra=LENIENT)
    direction: bool | None = Field(None, alias="Direction", json_schema_extra=LENIENT)
    appendixes: list[str] = Field(
        default_factory=list, alias="Appendixes", json_schema_extra=wrapped("Appendix")
    )


class ResponseFor(Element):
    """The document answered: in a document (several allowed) or a status package."""

    organ_id: Text = Field(None, alias="OrganId")
    code: Text = Field(None, alias="Code")
    promulgation_date: date | None = Field(
        None, alias="PromulgationDate", json_schema_extra=LENIENT
    )
    document_id: Text = Field(None, alias="DocumentId")


class StaffInfo(Element):
    department: Text = Field(None, alias="Department")
    staff: Text = Field(None, alias="Staff")
    email: Text = Field(None, alias="Email")
    mobile: Text = Field(None, alias="Mobile")


class TraceHeader(Element):
    """One organ's mark on the package: who handled it, and when. Both parts may be missing:
    relays write malformed TraceHeaders (SPEC §2.1), which `trace_list.py` reads leniently;
    None means "not written, or not readable", never a guess."""

    organ_id: Text = Field(None, alias="OrganId")
    timestamp: datetime | None = Field(None, alias="Timestamp")


class Receiver(Element):
    organ_id: str = Field(alias="OrganId")
    receiver_type: ReceiverType = Field(alias="ReceiverType")


class BusinessDocumentInfo(Element):
    """What an update (BussinessDocType 2) changes."""

    document_info: int | None = Field(
        None, alias="DocumentInfo", ge=0, le=1, json_schema_extra=LENIENT
    )
    document_receiver: int | None = Field(
        None, alias="DocumentReceiver", ge=0, le=1, json_schema_extra=LENIENT
    )
    receivers: list[Receiver] = Field(
        default_factory=list, alias="ReceiverList", json_schema_extra=wrapped("Receiver")
    )


class ReplacementInfo(Element):
    document_id: str = Field(alias="DocumentId")
    organ_ids: list[str] = Field(
        default_factory=list, alias="OrganIdList", json_schema_extra=wrapped("OrganId")
    )


class Business(Element):
    """`TraceHeaderList/Bussiness` (sic): what kind of business act the package is."""

    document_id: Text = Field(None, alias="DocumentId")
    business_doc_type: BusinessType = Field(BusinessType.NEW, alias="BussinessDocType")
    business_doc_reason: Text = Field(None, alias="BussinessDocReason")
    paper: int | None = Field(None, alias="Paper", ge=0, le=1, json_schema_extra=LENIENT)
    business_document_info: BusinessDocumentInfo | None = Field(None, alias="BussinessDocumentInfo")
    replacements: list[ReplacementInfo] = Field(
        default_factory=list,
        alias="ReplacementInfoList",
        json_schema_extra=wrapped("ReplacementInfo"),
    )
    staff_info: StaffInfo | None = Field(None, alias="StaffInfo")


class DocumentHeader(Element):
    """`MessageHeader` of a document package."""

    from_: Organization = Field(alias="From")
    to: list[Organization] = Field(alias="To", min_length=1)
    document_id: str = Field(alias="DocumentId")
    code: DocumentCode = Field(alias="Code")
    promulgation_info: PromulgationInfo = Field(alias="PromulgationInfo")
    document_type: DocumentType = Field(alias="DocumentType")
    subject: str = Field(alias="Subject", min_length=1)
    content: Text = Field(None, alias="Content")
    signer_info: SignerInfo | None = Field(None, alias="SignerInfo")
    due_date: date | None = Field(None, alias="DueDate", json_schema_extra=LENIENT)
    to_places: list[str] = Field(
        default_factory=list, alias="ToPlaces", json_schema_extra=wrapped("Place")
    )
    other_info: OtherInfo | None = Field(None, alias="OtherInfo")
    response_for: list[ResponseFor] = Field(default_factory=list, alias="ResponseFor")
    steering_type: int | None = Field(
        None, alias="SteeringType", ge=0, le=SMALL_CODE_MAX, json_schema_extra=LENIENT
    )
    response_for_task: Text = Field(None, alias="ResponseForTask")
    application_type: Text = Field(None, alias="ApplicationType")


class StatusHeader(Element):
    """`MessageHeader` of a status package (SPEC §2.2)."""

    from_: Organization = Field(alias="From")
    response_for: ResponseFor = Field(alias="ResponseFor")
    staff_info: StaffInfo | None = Field(None, alias="StaffInfo")
    status_code: StatusCode = Field(alias="StatusCode")
    description: Text = Field(None, alias="Description")
    timestamp: datetime | None = Field(None, alias="Timestamp", json_schema_extra=LENIENT)


class ManifestReference(Element):
    content_id: str = Field(alias="ContentId")
    content_type: Text = Field(None, alias="ContentType")
    description: Text = Field(None, alias="Description")
    attachment_name: Text = Field(None, alias="AttachmentName")


class Attachment(Element):
    """An attachment's declaration; its bytes are decoded to a file while streaming."""

    content_id: str = Field(alias="ContentId")
    attachment_name: Text = Field(None, alias="AttachmentName")
    description: Text = Field(None, alias="Description")
    content_type: Text = Field(None, alias="ContentType")


def content_key(content_id: str) -> str:
    """Manifest and attachment are paired with or without the `cid:` prefix (SPEC §2.1)."""
    return content_id.strip().removeprefix("cid:")


class DocumentPackage(Element):
    header: DocumentHeader
    traces: list[TraceHeader] = Field(default_factory=list)
    business: Business | None = None
    manifest_version: Text = None
    references: list[ManifestReference] = Field(default_factory=list)
    attachments: list[Attachment] = Field(default_factory=list)
    signed: bool = False
    """A Signature with a SignatureValue is present (verification is not the model's job)."""

    @property
    def business_type(self) -> BusinessType:
        return self.business.business_doc_type if self.business else BusinessType.NEW

    @property
    def target_document_id(self) -> str:
        """The document a revoke/update/replace acts on: Bussiness/DocumentId when given,
        else the package's own DocumentId (real senders repeat the original's)."""
        if self.business and self.business.document_id:
            return self.business.document_id
        return self.header.document_id


class StatusPackage(Element):
    header: StatusHeader
    traces: list[TraceHeader] = Field(default_factory=list)
    signed: bool = False


Package = DocumentPackage | StatusPackage
