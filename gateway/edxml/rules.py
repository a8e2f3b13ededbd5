"""Rules an XSD cannot express (SPEC §2.1–2.3): pairing, uniqueness, dates, codes, lengths.

Structure and type errors are errors; length limits are warnings unless the node runs in
strict mode, because real traffic exceeds some of them (long Website values). TraceHeaders are
the relays' and are checked, as warnings only, in `trace_list.py`. Each rule's decision, and
why, is in README "Real-traffic decisions".
"""

from __future__ import annotations

import re
import zipfile
from datetime import date, timedelta
from pathlib import PurePosixPath

from gateway.codes import is_standard_shape, is_valid_code
from gateway.edxml.attachment_files import ScannedAttachment
from gateway.edxml.model import (
    BusinessType,
    DocumentPackage,
    Organization,
    StatusPackage,
    content_key,
)
from gateway.errors import Problem

# (observed) limits of real axes, SPEC §2.1
ORGANIZATION_LIMITS = {
    "organ_name": 200,
    "organ_add": 500,
    "organization_in_charge": 500,
    "email": 100,
    "telephone": 20,
    "fax": 20,
}
ORGANIZATION_ALIASES = {
    "organ_name": "OrganName",
    "organ_add": "OrganAdd",
    "organization_in_charge": "OrganizationInCharge",
    "email": "Email",
    "telephone": "Telephone",
    "fax": "Fax",
}
UNZIPPED_TYPES = frozenset({".pdf", ".doc", ".docx", ".xls", ".zip"})
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DOCUMENT_ID = re.compile(r"(?P<organ>[^,]+),(?P<date>[0-9]{4}/[0-9]{2}/[0-9]{2}),(?P<code>.+/.+)")
FUTURE_DATE_TOLERANCE = timedelta(days=1)
"""A PromulgationDate up to one day ahead of today in Vietnam is a sender's clock or time zone
a few hours ahead (a warning); later than that, the date is wrong (an error)."""


class Findings:
    def __init__(self, strict_lengths: bool) -> None:
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self._strict = strict_lengths

    def error(self, code: str, path: str, message: str) -> None:
        self.errors.append(Problem(code, path, message))

    def warn(self, code: str, path: str, message: str) -> None:
        self.warnings.append(Problem(code, path, message, "warning"))

    def length(self, value: str | None, limit: int, path: str) -> None:
        if value is not None and len(value) > limit:
            message = f"{len(value)} characters, the limit is {limit}"
            if self._strict:
                self.error("EDXML_TOO_LONG", path, message)
            else:
                self.warn("EDXML_TOO_LONG", path, message)

    def code(self, value: str | None, path: str, *, required: bool = True) -> None:
        if not value:
            return
        if not is_valid_code(value):
            message = f"{value!r} is not a dot-separated code of letters and digits (max 35)"
            if required:
                self.error("EDXML_CODE_INVALID", path, message)
            else:
                self.warn("EDXML_CODE_INVALID", path, message)
        elif not is_standard_shape(value):
            self.warn(
                "EDXML_CODE_NONSTANDARD",
                path,
                f"{value!r} is not of the standard form LLL.KK.JJ.XNN",
            )


def check_document(
    package: DocumentPackage,
    attachments: list[ScannedAttachment],
    today: date,
    strict_lengths: bool,
) -> Findings:
    findings = Findings(strict_lengths)
    header = package.header
    _lengths(findings, header.from_, "MessageHeader/From")
    for index, to in enumerate(header.to, start=1):
        _lengths(findings, to, f"MessageHeader/To[{index}]")
    findings.length(header.code.code_number, 11, "MessageHeader/Code/CodeNumber")
    findings.length(header.code.code_notation, 30, "MessageHeader/Code/CodeNotation")
    findings.length(header.subject, 500, "MessageHeader/Subject")
    findings.length(header.content, 500, "MessageHeader/Content")
    findings.length(header.promulgation_info.place, 50, "MessageHeader/PromulgationInfo/Place")
    findings.length(header.document_type.type_name, 100, "MessageHeader/DocumentType/TypeName")
    if header.other_info is not None:
        findings.length(
            header.other_info.sphere_of_promulgation,
            100,
            "MessageHeader/OtherInfo/SphereOfPromulgation",
        )
        findings.length(
            header.other_info.typer_notation, 10, "MessageHeader/OtherInfo/TyperNotation"
        )
    for index, place in enumerate(header.to_places, start=1):
        findings.length(place, 150, f"MessageHeader/ToPlaces/Place[{index}]")
    _promulgation_date(findings, header.promulgation_info.promulgation_date, today)
    if not (_UUID.fullmatch(header.document_id) or _DOCUMENT_ID.fullmatch(header.document_id)):
        findings.warn(
            "EDXML_DOCUMENT_ID_SHAPE",
            "MessageHeader/DocumentId",
            "expected '<From OrganId>,<yyyy/MM/dd>,<number>/<notation>' or a UUID",
        )
    for index, response in enumerate(header.response_for, start=1):
        findings.code(
            response.organ_id, f"MessageHeader/ResponseFor[{index}]/OrganId", required=False
        )
    _business(findings, package)
    _pairing(findings, package, attachments)
    return findings


def check_parties(from_code: str | None, to_codes: list[str | None], findings: Findings) -> None:
    """Sender and recipient codes, read from the tree: they are checked even when other
    parts of the header are broken, so the clerk sees every problem at once."""
    findings.code(from_code, "MessageHeader/From/OrganId")
    seen: set[str] = set()
    for index, code in enumerate(to_codes, start=1):
        path = f"MessageHeader/To[{index}]/OrganId"
        findings.code(code, path)
        if code and code in seen:
            findings.error("EDXML_DUPLICATE_RECIPIENT", path, f"{code} is listed twice")
        seen.add(code or "")


def check_status(
    package: StatusPackage, attachments: list[ScannedAttachment], strict_lengths: bool
) -> Findings:
    findings = Findings(strict_lengths)
    header = package.header
    _lengths(findings, header.from_, "MessageHeader/From")
    response = header.response_for
    for value, name in (
        (response.organ_id, "OrganId"),
        (response.code, "Code"),
        (response.document_id, "DocumentId"),
    ):
        if not value:
            findings.error(
                "EDXML_REQUIRED",
                f"MessageHeader/ResponseFor/{name}",
                f"ResponseFor/{name} is required: it identifies the answered document",
            )
    findings.code(response.organ_id, "MessageHeader/ResponseFor/OrganId")
    if attachments:
        findings.error(
            "EDXML_STATUS_WITH_BODY", "AttachmentEncoded", "a status package carries no attachments"
        )
    return findings


def _lengths(findings: Findings, organization: Organization, path: str) -> None:
    for field, limit in ORGANIZATION_LIMITS.items():
        findings.length(
            getattr(organization, field), limit, f"{path}/{ORGANIZATION_ALIASES[field]}"
        )


def _promulgation_date(findings: Findings, promulgated: date, today: date) -> None:
    path = "MessageHeader/PromulgationInfo/PromulgationDate"
    if promulgated > today + FUTURE_DATE_TOLERANCE:
        findings.error("EDXML_FUTURE_DATE", path, f"{promulgated:%Y/%m/%d} is in the future")
    elif promulgated > today:
        findings.warn(
            "EDXML_FUTURE_DATE",
            path,
            f"{promulgated:%Y/%m/%d} is tomorrow in Vietnam ({today:%Y/%m/%d} "
            "today): tolerated as a sender's clock or time zone a few hours ahead",
        )


def _business(findings: Findings, package: DocumentPackage) -> None:
    business = package.business
    if business is None:
        return
    base = "TraceHeaderList/Bussiness"
    kind = business.business_doc_type
    if kind is BusinessType.UPDATE and business.business_document_info is None:
        findings.warn(
            "EDXML_UPDATE_WITHOUT_INFO",
            f"{base}/BussinessDocumentInfo",
            "an update (BussinessDocType 2) should say what changed",
        )
    if kind is BusinessType.REPLACE and not business.replacements:
        findings.warn(
            "EDXML_REPLACE_WITHOUT_INFO",
            f"{base}/ReplacementInfoList",
            "a replacement (BussinessDocType 3) should name the replaced documents",
        )
    info = business.business_document_info
    for index, receiver in enumerate(info.receivers if info else [], start=1):
        findings.code(
            receiver.organ_id,
            f"{base}/BussinessDocumentInfo/ReceiverList/Receiver[{index}]/OrganId",
        )


def _pairing(
    findings: Findings, package: DocumentPackage, attachments: list[ScannedAttachment]
) -> None:
    """Every manifest Reference has exactly one Attachment and vice versa (by ContentId,
    with or without `cid:`); each attachment decodes and, when zipped, is a zip."""
    references: dict[str, int] = {}
    for index, reference in enumerate(package.references, start=1):
        key = content_key(reference.content_id)
        path = f"edXMLBody/edXMLManifest/Reference[{index}]/ContentId"
        if key in references:
            findings.error(
                "EDXML_DUPLICATE_CONTENT_ID",
                path,
                f"ContentId {key!r} is listed twice in the manifest",
            )
        references[key] = index
        findings.length(
            reference.attachment_name,
            500,
            f"edXMLBody/edXMLManifest/Reference[{index}]/AttachmentName",
        )
    declared: set[str] = set()
    for scanned, attachment in zip(attachments, package.attachments, strict=False):
        path = f"AttachmentEncoded/Attachment[{scanned.index}]"
        key = content_key(attachment.content_id)
        if key in declared:
            findings.error(
                "EDXML_DUPLICATE_CONTENT_ID",
                f"{path}/ContentId",
                f"ContentId {key!r} is used by two attachments",
            )
        declared.add(key)
        findings.length(attachment.attachment_name, 500, f"{path}/AttachmentName")
        if key not in references:
            findings.error(
                "EDXML_REFERENCE_MISSING",
                f"{path}/ContentId",
                f"attachment {key!r} has no Reference in edXMLManifest",
            )
        if scanned.path is None:
            findings.error(
                "EDXML_REQUIRED",
                f"{path}/ContentTransferEncoded",
                "the attachment has no ContentTransferEncoded",
            )
        else:
            _zip_convention(
                findings, attachment.content_type, attachment.attachment_name, scanned, path
            )
    for key, index in references.items():
        if key not in declared:
            findings.error(
                "EDXML_ATTACHMENT_MISSING",
                f"edXMLBody/edXMLManifest/Reference[{index}]/ContentId",
                f"no Attachment carries ContentId {key!r}",
            )


def _zip_convention(
    findings: Findings,
    content_type: str | None,
    name: str | None,
    scanned: ScannedAttachment,
    path: str,
) -> None:
    suffix = PurePosixPath(name or "").suffix.lower()
    zipped = (content_type or "").lower() == "application/zip"
    if zipped and scanned.path is not None and not zipfile.is_zipfile(scanned.path):
        findings.error(
            "EDXML_ZIP_INVALID",
            f"{path}/ContentTransferEncoded",
            "declared application/zip but the content is not a zip archive",
        )
    elif not zipped and suffix and suffix not in UNZIPPED_TYPES:
        findings.warn(
            "EDXML_SHOULD_BE_ZIPPED",
            f"{path}/AttachmentName",
            f"{suffix} files are sent zipped (application/zip) by convention",
        )
    if scanned.size == 0:
        findings.warn(
            "EDXML_ATTACHMENT_EMPTY", f"{path}/ContentTransferEncoded", "the attachment is empty"
        )
