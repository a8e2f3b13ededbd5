"""`lienthong edxml status`: the status package answering a document package."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError

from gateway.cli.edxml._output import FileArgument, echo_problems, fail, stdout_bytes
from gateway.edxml.builder import build_package
from gateway.edxml.model import VIETNAM, DocumentPackage, StatusCode, StatusHeader, StatusPackage
from gateway.edxml.parser import parse_package
from gateway.errors import PackageRejected, Problem


@click.command()
@click.argument("document", type=FileArgument)
@click.option(
    "--from",
    "from_code",
    required=True,
    metavar="CODE",
    help="The agency sending the status (a recipient; for 13 the original sender).",
)
@click.option(
    "--code",
    "status_code",
    required=True,
    type=click.Choice([code.value for code in StatusCode]),
    help="The status code.",
)
@click.option(
    "--recipient",
    default=None,
    metavar="CODE",
    help="For 13 (recall request): the recipient asked (default: the only To).",
)
@click.option("--description", default=None, help="Description (the reason for 02 and 13).")
@click.option("--staff", default=None, metavar="NAME", help="The clerk's name (StaffInfo).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the package here instead of standard output.",
)
def status(
    document: Path,
    from_code: str,
    status_code: str,
    recipient: str | None,
    description: str | None,
    staff: str | None,
    output: Path | None,
) -> None:
    """Write the status package answering the document package DOCUMENT."""
    try:
        parsed = parse_package(document)
    except PackageRejected as error:
        echo_problems(error.problems or [Problem("PACKAGE_INVALID", "/", error.detail)], err=True)
        fail(f"{document.name} is not an acceptable package")
    if not isinstance(parsed.model, DocumentPackage):
        fail(f"{document.name} is a status package; a status answers a document")
    header = parsed.model.header
    code = StatusCode(status_code)
    recipients = [to.organ_id for to in header.to]
    if code is StatusCode.RECALL_REQUEST:
        if recipient is None and len(recipients) == 1:
            recipient = recipients[0]
        if recipient is None:
            fail(
                "a recall request (13) names one recipient: use --recipient "
                f"({', '.join(recipients)})"
            )
        answered_organ = recipient
    else:
        if recipient is not None:
            fail("--recipient is only for a recall request (13)")
        if from_code not in recipients:
            click.echo(
                f"WARNING: {from_code} is not a recipient of {header.document_id} "
                f"({', '.join(recipients)})",
                err=True,
            )
        answered_organ = header.from_.organ_id
    try:
        package = StatusPackage(
            header=StatusHeader.model_validate(
                {
                    "From": {"OrganId": from_code},
                    "ResponseFor": {
                        "OrganId": answered_organ,
                        "Code": f"{header.code.code_number}/{header.code.code_notation}",
                        "PromulgationDate": header.promulgation_info.promulgation_date,
                        "DocumentId": header.document_id,
                    },
                    "StaffInfo": {"Staff": staff} if staff else None,
                    "StatusCode": code,
                    "Description": description or None,
                    "Timestamp": datetime.now(VIETNAM).replace(microsecond=0),
                }
            )
        )
        data = build_package(package)
    except (ValidationError, ValueError) as error:
        fail(str(error))
    try:
        checked = parse_package(data)
    except PackageRejected as error:
        echo_problems(error.problems, err=True)
        fail("the status package would be refused; nothing written")
    echo_problems(checked.warnings, err=True)
    if output is None:
        stdout_bytes().write(data)
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output}: status {code.value} for {header.document_id}", err=True)
