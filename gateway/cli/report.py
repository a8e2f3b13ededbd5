"""`lienthong report quarterly`: the quarterly report of SPEC §4.3 as JSON, CSV, HTML or
XLSX, computed from the node's traffic (aggregates in the database)."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli._bootstrap import run_with_store
from gateway.cli._support import checked
from gateway.reports import (
    DEFAULT_AGENCY_ROWS,
    Period,
    ReportFormat,
    quarterly_report,
    render,
)
from gateway.settings import Settings


@click.group()
def report() -> None:
    """Reports computed from the node's traffic."""


@report.command("quarterly")
@click.option("--year", type=int, default=None, help="The quarter's year (with --quarter).")
@click.option("--quarter", type=click.IntRange(1, 4), default=None, help="1 to 4 (with --year).")
@click.option(
    "--from",
    "first",
    default=None,
    metavar="YYYY-MM-DD",
    help="First day, included (with --to); with --year/--quarter, the quarter's title "
    "over these days.",
)
@click.option("--to", "last", default=None, metavar="YYYY-MM-DD", help="Last day, included.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in ReportFormat]),
    default=ReportFormat.JSON.value,
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write to this file (default: standard output; xlsx needs a file).",
)
@click.option(
    "--agency-rows",
    type=click.IntRange(min=0),
    default=DEFAULT_AGENCY_ROWS,
    show_default=True,
    help="HTML only: the busiest agencies printed in the table, the rest in one row "
    "(0: every agency).",
)
@click.pass_obj
def quarterly(
    settings: Settings,
    year: int | None,
    quarter: int | None,
    first: str | None,
    last: str | None,
    fmt: str,
    output: Path | None,
    agency_rows: int,
) -> None:
    """Documents sent and received by local agencies in a quarter (or from/to days, in
    LIENTHONG_TIMEZONE): paper copies, levels, through peers, status feedback, per agency.

    \b
    lienthong report quarterly --year 2026 --quarter 3 --format html -o q3.html
    lienthong report quarterly --from 2026-06-15 --to 2026-09-14 --format csv"""
    period = checked(lambda: Period.parse(year, quarter, first, last))
    chosen = ReportFormat(fmt)
    if output is None and not chosen.is_text:
        raise click.UsageError("xlsx is written to a file: give -o FILE")
    built = run_with_store(
        settings,
        lambda store: quarterly_report(
            store, period, timezone=settings.timezone, node_code=settings.node_code
        ),
    )
    content = render(built, chosen, agency_rows)
    if output is None:
        click.echo(content.decode(), nl=False)
        return
    output.write_bytes(content)
    click.echo(
        f"{output}: {chosen.value}, {built.sent.total} sent, {built.received.total} received, "
        f"{len(built.agencies)} agencies",
        err=True,
    )
