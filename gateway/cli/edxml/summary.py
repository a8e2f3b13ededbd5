"""`lienthong edxml show`'s summary of a package: who sends what to whom, business type,
traces, attachments, as (label, value) lines."""

from __future__ import annotations

from collections.abc import Iterable

from gateway.edxml.builder import format_value
from gateway.edxml.model import (
    BusinessType,
    DocumentPackage,
    Organization,
    ReceiverType,
    StaffInfo,
    StatusCode,
    StatusPackage,
)
from gateway.edxml.parser import ParsedPackage

STATUS_MEANINGS = {
    StatusCode.ARRIVED: "arrived (đã đến)",
    StatusCode.REJECTED: "rejected (từ chối tiếp nhận)",
    StatusCode.ACCEPTED: "accepted and registered (đã tiếp nhận, vào sổ)",
    StatusCode.ASSIGNED: "assigned (phân công xử lý)",
    StatusCode.PROCESSING: "processing (đang xử lý)",
    StatusCode.COMPLETED: "completed (hoàn thành)",
    StatusCode.RECALL_REQUEST: "request to recall (lấy lại / thu hồi)",
    StatusCode.RECALL_AGREED: "agrees to the recall/update",
    StatusCode.RECALL_REFUSED: "refuses the recall/update",
}
BUSINESS_NAMES = {
    BusinessType.NEW: "new document",
    BusinessType.REVOKE: "revoke (thu hồi)",
    BusinessType.UPDATE: "update (cập nhật)",
    BusinessType.REPLACE: "replace (thay thế)",
}


def summary(parsed: ParsedPackage) -> list[tuple[str, str]]:
    model = parsed.model
    lines: list[tuple[str, str]] = []
    if isinstance(model, StatusPackage):
        header = model.header
        answered = header.response_for
        lines += [
            (
                "Kind",
                f"status {header.status_code.value} "
                f"{STATUS_MEANINGS.get(header.status_code, '')}".rstrip(),
            ),
            ("From", _organization(header.from_)),
            ("To", answered.organ_id or "(none)"),
            ("DocumentId", answered.document_id or "(none)"),
            ("Number", answered.code or "(none)"),
        ]
        if answered.promulgation_date is not None:
            lines.append(("Date", format_value(answered.promulgation_date)))
        if header.description:
            lines.append(("Description", header.description))
        if header.staff_info is not None:
            lines.append(("Staff", _staff(header.staff_info)))
        if header.timestamp is not None:
            lines.append(("Timestamp", format_value(header.timestamp)))
    else:
        header_d = model.header
        lines += [
            ("Kind", f"document, {BUSINESS_NAMES[model.business_type]}"),
            ("From", _organization(header_d.from_)),
        ]
        lines += _labelled("To", [_organization(to) for to in header_d.to])
        place = header_d.promulgation_info.place
        lines += [
            ("DocumentId", header_d.document_id),
            ("Number", f"{header_d.code.code_number}/{header_d.code.code_notation}"),
            (
                "Date",
                format_value(header_d.promulgation_info.promulgation_date)
                + (f" ({place})" if place else ""),
            ),
            (
                "Type",
                " ".join(
                    filter(
                        None, [str(header_d.document_type.type), header_d.document_type.type_name]
                    )
                ),
            ),
            ("Subject", header_d.subject),
        ]
        if header_d.other_info is not None and header_d.other_info.priority is not None:
            priority = header_d.other_info.priority
            lines.append(("Priority", f"{int(priority)} {priority.name.lower()}"))
        lines += _business(model)
        for response in header_d.response_for:
            if response.document_id or response.code:
                lines.append(
                    (
                        "Answers",
                        " ".join(
                            filter(None, [response.organ_id, response.code, response.document_id])
                        ),
                    )
                )
    traces = [
        (trace.organ_id or "(no OrganId)")
        + (f" at {format_value(trace.timestamp)}" if trace.timestamp is not None else "")
        for trace in model.traces
    ]
    lines += _labelled("Traces", traces) if traces else [("Traces", "(none)")]
    if isinstance(model, DocumentPackage):
        attachments = [
            f"{declared.attachment_name or declared.content_id}  "
            f"{declared.content_type or '(no content type)'}  {scanned.size} bytes  "
            f"sha256 {scanned.sha256}"
            for declared, scanned in zip(model.attachments, parsed.attachments, strict=False)
        ]
        lines += (
            _labelled("Attachments", attachments) if attachments else [("Attachments", "(none)")]
        )
        lines.append(
            (
                "Signed",
                "yes (a SignatureValue is present; not verified here)" if model.signed else "no",
            )
        )
    lines.append(("Warnings", str(len(parsed.warnings)) if parsed.warnings else "none"))
    return lines


def _business(model: DocumentPackage) -> list[tuple[str, str]]:
    business = model.business
    if business is None:
        return []
    lines: list[tuple[str, str]] = []
    if business.business_doc_type is not BusinessType.NEW:
        lines.append(("Target", model.target_document_id))
    if business.business_doc_reason:
        lines.append(("Reason", business.business_doc_reason))
    info = business.business_document_info
    if info is not None:
        changes = []
        if info.document_info:
            changes.append("document information changed")
        if info.document_receiver:
            changes.append("receivers changed")
        lines += _labelled("Changes", changes)
        lines += _labelled(
            "Receivers",
            [
                f"{'+' if receiver.receiver_type is ReceiverType.ADDED else '-'}"
                f"{receiver.organ_id} ({receiver.receiver_type.name.lower()})"
                for receiver in info.receivers
            ],
        )
    lines += _labelled(
        "Replaces",
        [
            replacement.document_id
            + (f" for {', '.join(replacement.organ_ids)}" if replacement.organ_ids else "")
            for replacement in business.replacements
        ],
    )
    if business.paper is not None:
        lines.append(("Paper copy", "yes" if business.paper else "no"))
    if business.staff_info is not None:
        lines.append(("Staff", _staff(business.staff_info)))
    return lines


def _labelled(label: str, values: Iterable[str]) -> list[tuple[str, str]]:
    return [(label if index == 0 else "", value) for index, value in enumerate(values)]


def _organization(organization: Organization) -> str:
    name = organization.organ_name or organization.organization_in_charge
    return f"{organization.organ_id}  {name}" if name else organization.organ_id


def _staff(staff: StaffInfo) -> str:
    return ", ".join(filter(None, [staff.staff, staff.department, staff.email, staff.mobile]))
