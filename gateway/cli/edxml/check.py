"""`lienthong edxml validate` and `show`: the node's own parser on a file, so what they accept
is what the node accepts."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli.edxml._output import FileArgument, counted, echo_problems
from gateway.cli.edxml.policy import decisions, describe, signature_report
from gateway.cli.edxml.summary import summary
from gateway.edxml.model import StatusPackage
from gateway.edxml.parser import ParsedPackage, parse_package
from gateway.errors import PackageRejected, Problem
from gateway.settings import Settings


@click.command()
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
    echo_problems(problems or (parsed.warnings if parsed else ()))
    report = signature_report(settings, file, parsed) if parsed is not None else None
    if report is not None:
        click.echo(f"Signature: {describe(report)}")
    click.echo("Decision by signature policy (* this node's default, LIENTHONG_SIGNATURE_POLICY):")
    for decision in decisions(parsed, problems[0] if problems else None, report):
        mark = "*" if decision.policy is settings.signature_policy else " "
        click.echo(f"{mark} {decision.policy.value:<18} {decision.text()}")
    if parsed is None:
        click.echo(f"INVALID: {file.name} would be refused ({counted(problems, 'problem')})")
        raise SystemExit(1)
    kind = "status package" if isinstance(parsed.model, StatusPackage) else "document package"
    click.echo(
        f"VALID: {file.name} is a {kind}"
        + (f" ({counted(parsed.warnings, 'warning')})" if parsed.warnings else "")
    )


@click.command()
@click.argument("file", type=FileArgument)
def show(file: Path) -> None:
    """Summarise FILE: who sends what to whom, business type, traces, attachments."""
    try:
        parsed = parse_package(file)
    except PackageRejected as error:
        echo_problems(error.problems or [Problem("PACKAGE_INVALID", "/", error.detail)])
        click.echo(f"INVALID: {file.name} would be refused ({counted(error.problems, 'problem')})")
        raise SystemExit(1) from None
    for label, value in summary(parsed):
        click.echo(f"{label + ':':<14}{value}" if label else f"{'':<14}{value}")
    echo_problems(parsed.warnings)
