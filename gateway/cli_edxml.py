"""`lienthong edxml`: check, read and write edXML packages (SPEC §2.1–2.2) from the shell.

`validate` and `show` run the node's own parser, so what they accept is what the node accepts;
`build` and `status` write packages with `gateway.edxml.builder` and parse the result before
calling it good.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import click
import yaml
from pydantic import BaseModel, ValidationError

from gateway.cli_policy import decisions, describe, signature_report
from gateway.edxml.builder import build_package, format_value, write_package
from gateway.edxml.model import (
    VIETNAM,
    BusinessType,
    DocumentPackage,
    Organization,
    ReceiverType,
    StaffInfo,
    StatusCode,
    StatusHeader,
    StatusPackage,
    field_type,
)
from gateway.edxml.parser import ParsedPackage, parse_package
from gateway.edxml.reader import convert
from gateway.errors import PackageRejected, Problem
from gateway.settings import Settings

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
FileArgument = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group()
def edxml() -> None:
    """Check, show and write edXML packages (QCVN 102:2016)."""


# -- validate and show -----------------------------------------------------------------------

@edxml.command()
@click.argument("file", type=FileArgument)
@click.option("--strict", is_flag=True, help="Length limits are errors, not warnings.")
@click.pass_obj
def validate(settings: Settings, file: Path, strict: bool) -> None:
    """Check FILE as the node would: every problem and warning, the signature, the node's
    decision under each signature policy (require, verify-if-present, off), and last the
    structural verdict (VALID / INVALID).

    Exit 0 when FILE is structurally valid, 1 when the node refuses it whatever the policy;
    a signature refused under some policy is shown on that policy's line and does not change
    the exit code (`lienthong edxml verify` exits on the signature)."""
    problems: list[Problem] = []
    parsed: ParsedPackage | None = None
    try:
        parsed = parse_package(file, strict_lengths=strict)
    except PackageRejected as error:
        problems = error.problems or [Problem("PACKAGE_INVALID", "/", error.detail)]
    _echo_problems(problems or (parsed.warnings if parsed else ()))
    report = signature_report(settings, file, parsed) if parsed is not None else None
    if report is not None:
        click.echo(f"Signature: {describe(report)}")
    click.echo("Decision by signature policy (* this node's default, "
               "LIENTHONG_SIGNATURE_POLICY):")
    for decision in decisions(parsed, problems[0] if problems else None, report):
        mark = "*" if decision.policy is settings.signature_policy else " "
        click.echo(f"{mark} {decision.policy.value:<18} {decision.text()}")
    if parsed is None:
        click.echo(f"INVALID: {file.name} would be refused ({_count(problems, 'problem')})")
        raise SystemExit(1)
    kind = "status package" if isinstance(parsed.model, StatusPackage) else "document package"
    click.echo(f"VALID: {file.name} is a {kind}"
               + (f" ({_count(parsed.warnings, 'warning')})" if parsed.warnings else ""))


@edxml.command()
@click.argument("file", type=FileArgument)
def show(file: Path) -> None:
    """Summarise FILE: who sends what to whom, business type, traces, attachments."""
    try:
        parsed = parse_package(file)
    except PackageRejected as error:
        _echo_problems(error.problems or [Problem("PACKAGE_INVALID", "/", error.detail)])
        click.echo(f"INVALID: {file.name} would be refused ({_count(error.problems, 'problem')})")
        raise SystemExit(1) from None
    for label, value in _summary(parsed):
        click.echo(f"{label + ':':<14}{value}" if label else f"{'':<14}{value}")
    _echo_problems(parsed.warnings)


def _summary(parsed: ParsedPackage) -> list[tuple[str, str]]:
    model = parsed.model
    lines: list[tuple[str, str]] = []
    if isinstance(model, StatusPackage):
        header = model.header
        answered = header.response_for
        lines += [
            ("Kind", f"status {header.status_code.value} "
                     f"{STATUS_MEANINGS.get(header.status_code, '')}".rstrip()),
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
            ("Date", format_value(header_d.promulgation_info.promulgation_date)
             + (f" ({place})" if place else "")),
            ("Type", " ".join(filter(None, [str(header_d.document_type.type),
                                            header_d.document_type.type_name]))),
            ("Subject", header_d.subject),
        ]
        if header_d.other_info is not None and header_d.other_info.priority is not None:
            priority = header_d.other_info.priority
            lines.append(("Priority", f"{int(priority)} {priority.name.lower()}"))
        lines += _business(model)
        for response in header_d.response_for:
            if response.document_id or response.code:
                lines.append(("Answers", " ".join(filter(None, [
                    response.organ_id, response.code, response.document_id]))))
    traces = [(trace.organ_id or "(no OrganId)")
              + (f" at {format_value(trace.timestamp)}" if trace.timestamp is not None else "")
              for trace in model.traces]
    lines += _labelled("Traces", traces) if traces else [("Traces", "(none)")]
    if isinstance(model, DocumentPackage):
        attachments = [
            f"{declared.attachment_name or declared.content_id}  "
            f"{declared.content_type or '(no content type)'}  {scanned.size} bytes  "
            f"sha256 {scanned.sha256}"
            for declared, scanned in zip(model.attachments, parsed.attachments, strict=False)]
        lines += _labelled("Attachments", attachments) if attachments \
            else [("Attachments", "(none)")]
        lines.append(("Signed", "yes (a SignatureValue is present; not verified here)"
                      if model.signed else "no"))
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
        lines += _labelled("Receivers", [
            f"{'+' if receiver.receiver_type is ReceiverType.ADDED else '-'}"
            f"{receiver.organ_id} ({receiver.receiver_type.name.lower()})"
            for receiver in info.receivers])
    lines += _labelled("Replaces", [
        replacement.document_id + (f" for {', '.join(replacement.organ_ids)}"
                                   if replacement.organ_ids else "")
        for replacement in business.replacements])
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


def _echo_problems(problems: Iterable[Problem], *, err: bool = False) -> None:
    for problem in problems:
        label = "WARNING" if problem.severity == "warning" else "ERROR"
        click.echo(f"{label} {problem.code} {problem.path}: {problem.message}", err=err)


def _count(items: Iterable[object], noun: str) -> str:
    number = len(list(items))
    return f"{number} {noun}{'' if number == 1 else 's'}"


# -- build -----------------------------------------------------------------------------------

@edxml.command()
@click.argument("description", type=FileArgument)
@click.option("--attach", "attach", multiple=True, metavar="CONTENT_ID=PATH",
              help="The bytes of the attachment CONTENT_ID (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the package here instead of standard output.")
def build(description: Path, attach: tuple[str, ...], output: Path | None) -> None:
    """Write a package from DESCRIPTION, a YAML or JSON file holding the model.

    Keys are element names (From, To, DocumentId, …) or the model's snake_case names; dates
    are yyyy/MM/dd, timestamps yyyy/MM/dd HH:mm:ss (Vietnam time). A header with a
    StatusCode makes a status package. Each attachment's bytes come from --attach or from a
    `file:` key in its entry (relative to DESCRIPTION)."""
    try:
        data = yaml.safe_load(description.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        _fail(f"{description}: not YAML or JSON: {error}")
    if not isinstance(data, dict):
        _fail(f"{description}: expected a mapping with header, references, attachments")
    files = _attachment_files(data, description.parent)
    for item in attach:
        content_id, separator, location = item.partition("=")
        if not separator or not content_id or not location:
            _fail(f"--attach {item!r}: expected CONTENT_ID=PATH")
        files[content_id] = Path(location)
    header = data.get("header")
    is_status = isinstance(header, dict) and ("StatusCode" in header or "status_code" in header)
    kind: type[DocumentPackage | StatusPackage] = StatusPackage if is_status \
        else DocumentPackage
    try:
        package = kind.model_validate(_coerce(data, kind))
    except ValidationError as error:
        click.echo(f"{description}: the description is not a valid {kind.__name__}:", err=True)
        for detail in error.errors():
            location = ".".join(str(part) for part in detail["loc"]) or "(top)"
            click.echo(f"  {location}: {detail['msg']}", err=True)
        raise SystemExit(1) from None
    for content_id, path in files.items():
        if not path.is_file():
            _fail(f"attachment {content_id}: {path} is not a file")
    _write_checked(package, dict(files), output)


def _attachment_files(data: dict[str, Any], base: Path) -> dict[str, Path]:
    """Pop each attachment entry's `file:` key (not part of the model)."""
    files: dict[str, Path] = {}
    entries = data.get("attachments")
    if not isinstance(entries, list):
        return files
    for entry in entries:
        if isinstance(entry, dict) and "file" in entry:
            name = entry.pop("file")
            content_id = entry.get("ContentId", entry.get("content_id"))
            if content_id is None:
                _fail("an attachment with a file: key has no ContentId")
            files[str(content_id)] = base / str(name)
    return files


def _coerce(data: Any, model: type[BaseModel]) -> Any:
    """Bring YAML scalars to what the model expects: edXML dates and timestamps (which
    pydantic does not read), numbers where text is expected, `01` read by YAML as 1."""
    if not isinstance(data, dict):
        return data
    fields = {key: (name, info) for name, info in model.model_fields.items()
              for key in (name, info.alias) if key}
    result: dict[Any, Any] = {}
    for key, value in data.items():
        found = fields.get(key)
        if found is None:
            result[key] = value
            continue
        kind, is_list = field_type(found[1].annotation)
        if is_list and isinstance(value, list):
            result[key] = [_coerce_value(item, kind) for item in value]
        else:
            result[key] = _coerce_value(value, kind)
    return result


def _coerce_value(value: Any, kind: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return _coerce(value, kind)
    if isinstance(value, str) and kind in (date, datetime):
        try:
            return convert(value.strip(), kind)
        except ValueError:
            return value  # maybe ISO: pydantic reads it or says what is wrong
    if isinstance(value, datetime) and kind is datetime and value.tzinfo is None:
        return value.replace(tzinfo=VIETNAM)
    if isinstance(value, int) and not isinstance(value, bool):
        if kind is str:
            return str(value)
        if isinstance(kind, type) and issubclass(kind, Enum) and not issubclass(kind, int):
            return f"{value:02d}"
    if isinstance(value, float) and kind is str:
        return str(value)
    return value


def _write_checked(package: DocumentPackage | StatusPackage,
                   attachments: Mapping[str, bytes | Path], output: Path | None) -> None:
    """Write the package to `output` (or stdout), then parse what was written; exit 1 with
    the problems when the node would refuse it."""
    directory = output.resolve().parent if output is not None else None
    handle, name = tempfile.mkstemp(prefix=".edxml-", suffix=".tmp", dir=directory)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                write_package(package, attachments, out)
            except (ValueError, OSError) as error:
                _fail(f"cannot write the package: {error}")
        if output is not None:
            os.replace(temporary, output)
            written = output
        else:
            with open(temporary, "rb") as source:
                shutil.copyfileobj(source, _stdout())
            written = temporary
        try:
            parsed = parse_package(written)
        except PackageRejected as error:
            _echo_problems(error.problems or [Problem("PACKAGE_INVALID", "/", error.detail)],
                           err=True)
            click.echo(f"INVALID: the package written would be refused "
                       f"({_count(error.problems, 'problem')})", err=True)
            raise SystemExit(1) from None
        _echo_problems(parsed.warnings, err=True)
        if output is not None:
            click.echo(f"wrote {output} ({output.stat().st_size} bytes)", err=True)
    finally:
        temporary.unlink(missing_ok=True)


def _stdout() -> BinaryIO:
    """Standard output for bytes (the package), flushed of any text first."""
    sys.stdout.flush()
    return sys.stdout.buffer


def _fail(message: str) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    raise SystemExit(1)


# -- status ----------------------------------------------------------------------------------

@edxml.command()
@click.argument("document", type=FileArgument)
@click.option("--from", "from_code", required=True, metavar="CODE",
              help="The agency sending the status (a recipient; for 13 the original sender).")
@click.option("--code", "status_code", required=True,
              type=click.Choice([code.value for code in StatusCode]), help="The status code.")
@click.option("--recipient", default=None, metavar="CODE",
              help="For 13 (recall request): the recipient asked (default: the only To).")
@click.option("--description", default=None, help="Description (the reason for 02 and 13).")
@click.option("--staff", default=None, metavar="NAME", help="The clerk's name (StaffInfo).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the package here instead of standard output.")
def status(document: Path, from_code: str, status_code: str, recipient: str | None,
           description: str | None, staff: str | None, output: Path | None) -> None:
    """Write the status package answering the document package DOCUMENT."""
    try:
        parsed = parse_package(document)
    except PackageRejected as error:
        _echo_problems(error.problems or [Problem("PACKAGE_INVALID", "/", error.detail)],
                       err=True)
        _fail(f"{document.name} is not an acceptable package")
    if not isinstance(parsed.model, DocumentPackage):
        _fail(f"{document.name} is a status package; a status answers a document")
    header = parsed.model.header
    code = StatusCode(status_code)
    recipients = [to.organ_id for to in header.to]
    if code is StatusCode.RECALL_REQUEST:
        if recipient is None and len(recipients) == 1:
            recipient = recipients[0]
        if recipient is None:
            _fail("a recall request (13) names one recipient: use --recipient "
                  f"({', '.join(recipients)})")
        answered_organ = recipient
    else:
        if recipient is not None:
            _fail("--recipient is only for a recall request (13)")
        if from_code not in recipients:
            click.echo(f"WARNING: {from_code} is not a recipient of {header.document_id} "
                       f"({', '.join(recipients)})", err=True)
        answered_organ = header.from_.organ_id
    try:
        package = StatusPackage(header=StatusHeader.model_validate({
            "From": {"OrganId": from_code},
            "ResponseFor": {
                "OrganId": answered_organ,
                "Code": f"{header.code.code_number}/{header.code.code_notation}",
                "PromulgationDate": header.promulgation_info.promulgation_date,
                "DocumentId": header.document_id},
            "StaffInfo": {"Staff": staff} if staff else None,
            "StatusCode": code,
            "Description": description or None,
            "Timestamp": datetime.now(VIETNAM).replace(microsecond=0)}))
        data = build_package(package)
    except (ValidationError, ValueError) as error:
        _fail(str(error))
    try:
        checked = parse_package(data)
    except PackageRejected as error:
        _echo_problems(error.problems, err=True)
        _fail("the status package would be refused; nothing written")
    _echo_problems(checked.warnings, err=True)
    if output is None:
        _stdout().write(data)
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output}: status {code.value} for {header.document_id}", err=True)

