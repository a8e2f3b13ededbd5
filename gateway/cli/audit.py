"""`lienthong audit`: check the evidence log, export a part of it for an inspector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from gateway.cli._bootstrap import run_with_store
from gateway.evidence import ChainReport
from gateway.services.audit import export_bundle, verify_bundle, verify_log
from gateway.settings import Settings


@click.group()
def audit() -> None:
    """The hash-chained evidence log (nhật ký bằng chứng)."""


def _report(report: ChainReport) -> None:
    if report.ok:
        click.echo(f"intact: {report.checked} entries, last {report.last_seq}")
        return
    click.echo(
        f"BROKEN at entry {report.broken_at}: {report.problem} "
        f"({report.checked} entries checked before it)"
    )
    raise SystemExit(1)


@audit.command("verify")
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify an exported bundle instead of the node's log.",
)
@click.pass_obj
def audit_verify(settings: Settings, bundle: Path | None) -> None:
    """Walk the chain and report the first broken link (exit 1 if there is one)."""
    _report(verify_bundle(bundle) if bundle else run_with_store(settings, verify_log))


def _day(value: str) -> datetime:
    try:
        return (
            datetime.fromisoformat(value).replace(tzinfo=UTC)
            if len(value) <= 10
            else datetime.fromisoformat(value).astimezone(UTC)
        )
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO time") from None


@audit.command("export")
@click.option("--from", "since", required=True, help="First day (YYYY-MM-DD, UTC) or ISO time.")
@click.option("--to", "until", required=True, help="Last day included, or ISO time (excluded).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def audit_export(settings: Settings, since: str, until: str, output: Path) -> None:
    """Write a self-contained, verifiable bundle (zip) of the entries in a period."""
    start, end = _day(since), _day(until)
    if len(until) <= 10:
        end += timedelta(days=1)
    data, count = run_with_store(
        settings, lambda store: export_bundle(store, start, end, settings.node_code)
    )
    output.write_bytes(data)
    click.echo(f"{count} entries written to {output} (check it with: unzip it, python3 verify.py)")
