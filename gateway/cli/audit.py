"""`lienthong audit`: check the evidence log, export a part of it for an inspector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from gateway.cli._bootstrap import run_with_store
from gateway.evidence import ChainReport
from gateway.ports import NodeStore
from gateway.services.audit import export_bundle, verify_bundle, verify_log
from gateway.settings import Settings


@click.group()
def audit() -> None:
    """The hash-chained evidence log (nhật ký bằng chứng)."""


def _report(report: ChainReport, backlog: tuple[int, datetime | None] | None = None) -> None:
    if report.ok:
        click.echo(f"intact: {report.checked} entries, last {report.last_seq}")
    else:
        click.echo(
            f"BROKEN at entry {report.broken_at}: {report.problem} "
            f"({report.checked} entries checked before it)"
        )
    if backlog is not None:
        count, oldest = backlog
        age = (
            f" (oldest {(datetime.now(UTC) - oldest).total_seconds():.3f} s old)" if oldest else ""
        )
        click.echo(f"not yet chained: {count} entries{age}")
    if not report.ok:
        raise SystemExit(1)


async def _verify(
    store: NodeStore, chain_first: bool
) -> tuple[ChainReport, tuple[int, datetime | None]]:
    report = await verify_log(store, chain_first=chain_first)
    return report, await store.evidence_backlog()


@audit.command("verify")
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify an exported bundle instead of the node's log.",
)
@click.option(
    "--no-chain",
    is_flag=True,
    help="Do not chain pending entries first: prove only what the sequencer has chained "
    "(and count the rest).",
)
@click.pass_obj
def audit_verify(settings: Settings, bundle: Path | None, no_chain: bool) -> None:
    """Walk the chain and report the first broken link (exit 1 if there is one).

    Entries are written with their events and chained by each node's sequencer within a
    fraction of a second; by default the entries still pending are chained first, so the
    walk proves every event recorded so far. The last line counts the entries not chained
    (those committed while the walk ran, or all pending ones with --no-chain)."""
    if bundle:
        _report(verify_bundle(bundle))
        return
    _report(*run_with_store(settings, lambda store: _verify(store, not no_chain)))


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
