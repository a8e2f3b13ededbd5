"""`lienthong messages`: find stuck messages, read their timelines, replay and cancel them.

Replay is a dry run unless `--execute` is given: it prints exactly what would be re-sent. Both
runs are recorded in the operator audit trail as `cli:<unix user>` (`_support.cli_operator`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from gateway.cli._bootstrap import run_with_store
from gateway.cli._support import checked, cli_operator, parse_duration
from gateway.operators.actions import ActionOutcome
from gateway.operators.selection import (
    MAX_PAGE,
    MessageFilter,
    Selection,
    check_reason,
    parse_time,
    states_of,
    stuck_filter,
)
from gateway.operators.views import DeliveryRow
from gateway.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(function: F) -> F:
    options = [
        click.option(
            "--state",
            "states",
            multiple=True,
            help="Delivery state (repeatable, or comma-separated): dead, retrying…",
        ),
        click.option("--sender", default=None, help="From code of the message."),
        click.option("--recipient", default=None, help="Recipient agency code."),
        click.option("--document-id", default=None, help="DocumentId, exactly."),
        click.option(
            "--code", default=None, help="Code number or notation (substring), or number/notation."
        ),
        click.option(
            "--since",
            default=None,
            help="Received at or after: YYYY-MM-DD or ISO time (node's time zone if none).",
        ),
        click.option("--until", default=None, help="Received before (a day is included)."),
        click.option(
            "--older-than",
            default=None,
            help="In its current state for longer than this: 90, 30m, 2h, 1d.",
        ),
        click.option("--route", default=None, help="Route kind (inbox, …)."),
        click.option(
            "--stuck",
            is_flag=True,
            default=None,
            help="Only what `messages stuck` lists (LIENTHONG_STUCK_*_SECONDS per state).",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _filter(settings: Settings, options: dict[str, Any]) -> MessageFilter | None:
    """The filter the options describe, or None when none was given."""
    if not any(options.values()):
        return None
    zone = settings.timezone
    return MessageFilter(
        states=states_of(options["states"]),
        sender=options["sender"],
        recipient=options["recipient"],
        document_id=options["document_id"],
        code=options["code"],
        since=parse_time(options["since"], zone) if options["since"] else None,
        until=parse_time(options["until"], zone, end=True) if options["until"] else None,
        older_than_seconds=parse_duration(options["older_than"]) if options["older_than"] else None,
        route=options["route"],
        stuck=stuck_filter(settings.stuck_thresholds) if options["stuck"] else (),
    )


def _age(row: DeliveryRow, now: datetime) -> str:
    seconds = int(max(0.0, (now - row.state_changed_at).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _code(row: DeliveryRow) -> str:
    return "/".join(part for part in (row.code_number, row.code_notation) if part)


def _row_json(row: DeliveryRow, now: datetime) -> dict[str, Any]:
    return {
        "message_id": row.message_id,
        "delivery_id": row.delivery_id,
        "kind": row.kind,
        "from": row.from_code,
        "to": row.to_code,
        "state": row.state,
        "state_changed_at": row.state_changed_at.isoformat(),
        "state_age_seconds": round((now - row.state_changed_at).total_seconds(), 3),
        "attempts": row.attempts,
        "fail_count": row.fail_count,
        "subject": row.subject,
        "document_id": row.document_id,
        "code": _code(row) or None,
        "received_at": row.received_at.isoformat(),
    }


@click.group()
def messages() -> None:
    """Messages and their deliveries: search, timelines, replay, cancel."""


@messages.command("list")
@filter_options
@click.option(
    "--cursor",
    type=int,
    default=0,
    show_default=True,
    help="Continue after this row (printed at the end of a full page).",
)
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def messages_list(
    settings: Settings, /, cursor: int, limit: int, as_json: bool, **options: Any
) -> None:
    """Deliveries (one line per message and recipient) matching every given filter."""
    where = checked(lambda: _filter(settings, options)) or MessageFilter()
    rows, next_cursor = run_with_store(
        settings, lambda store: store.find_deliveries(where, cursor, limit)
    )
    now = datetime.now(UTC)
    if as_json:
        for row in rows:
            click.echo(json.dumps(_row_json(row, now), ensure_ascii=False))
    else:
        click.echo("DELIVERY\tMESSAGE\tFROM\tTO\tSTATE\tAGE\tFAILS\tDOCUMENT\tCODE\tSUBJECT")
        for row in rows:
            click.echo(
                f"{row.delivery_id}\t{row.message_id}\t{row.from_code}\t{row.to_code}\t"
                f"{row.state}\t{_age(row, now)}\t{row.fail_count}\t{row.document_id}\t"
                f"{_code(row)}\t{(row.subject or '')[:60]}"
            )
    if next_cursor is not None:
        click.echo(f"more: --cursor {next_cursor}", err=as_json)


@messages.command("show")
@click.argument("message_id")
@click.pass_obj
def messages_show(settings: Settings, message_id: str) -> None:
    """A message and the full timeline of its delivery to every recipient."""
    detail = run_with_store(settings, lambda store: store.message_detail(message_id))
    now = datetime.now(UTC)
    click.echo(f"message    {detail.message_id} ({detail.kind})")
    click.echo(f"from       {detail.from_code} (system {detail.sender_system_id})")
    click.echo(f"document   {detail.document_id}")
    code = "/".join(p for p in (detail.code_number, detail.code_notation) if p)
    if code:
        click.echo(f"code       {code}")
    if detail.subject:
        click.echo(f"subject    {detail.subject}")
    click.echo(f"received   {detail.received_at.isoformat()}")
    click.echo(
        f"payload    {detail.payload_sha256} ({detail.payload_size} bytes), "
        f"signature {detail.signature_outcome or 'unknown'}"
    )
    for row in detail.deliveries:
        click.echo("")
        merged = (
            f" (addressed to {row.requested_code})" if row.requested_code != row.to_code else ""
        )
        click.echo(
            f"to {row.to_code}{merged}: delivery {row.delivery_id}, {row.state} for "
            f"{_age(row, now)}, {row.fail_count} fail(s), route {row.route}"
            f"{f' via {row.system_id}' if row.system_id else ''}"
        )
        for entry in row.timeline:
            click.echo(
                f"  {entry.at.isoformat(timespec='milliseconds')}  "
                f"{entry.from_state or '-':>10} -> {entry.to_state:<10} "
                f"{entry.actor}{f': {entry.reason}' if entry.reason else ''}"
            )


def _selection(
    settings: Settings, deliveries: tuple[str, ...], message: str | None, options: dict[str, Any]
) -> Selection:
    return Selection(delivery_ids=deliveries, message_id=message, filter=_filter(settings, options))


def _print_outcome(outcome: ActionOutcome, verb: str, past: str, hint: str) -> None:
    if outcome.dry_run:
        click.echo(
            f"DRY RUN: would {verb} {len(outcome.done)} deliver"
            f"{'y' if len(outcome.done) == 1 else 'ies'} (nothing changed; {hint})"
        )
    else:
        click.echo(f"{past} {len(outcome.done)} deliver{'y' if len(outcome.done) == 1 else 'ies'}")
    for acted in outcome.done:
        click.echo(
            f"  {acted.delivery_id}\tmessage {acted.message_id}\tto {acted.to_code}\t{acted.state}"
        )
    if outcome.skipped:
        click.echo(f"skipped {len(outcome.skipped)}:")
        for skipped in outcome.skipped:
            click.echo(f"  {skipped.delivery_id}\t{skipped.why}")
    click.echo(f"recorded as operator action #{outcome.action_id}")


@messages.command("replay")
@click.option("--delivery", "deliveries", multiple=True, help="A delivery id (repeatable).")
@click.option("--message", default=None, help="Every delivery of this message id.")
@filter_options
@click.option("--reason", required=True, help="Why (recorded with the action).")
@click.option("--execute", is_flag=True, help="Re-send; without it this is a dry run.")
@click.pass_obj
def messages_replay(
    settings: Settings,
    /,
    deliveries: tuple[str, ...],
    message: str | None,
    reason: str,
    execute: bool,
    **options: Any,
) -> None:
    """Queue dead or stuck deliveries again under their original ids: one (--delivery),
    one message (--message) or every one matching the filters. Prints exactly what would
    be (or was) re-sent; already delivered ones are skipped with the reason."""
    selection = checked(lambda: _selection(settings, deliveries, message, options))
    why = checked(lambda: check_reason(reason))
    outcome = run_with_store(
        settings, lambda store: store.replay(selection, why, cli_operator(), dry_run=not execute)
    )
    _print_outcome(outcome, "re-send", "re-sent", "add --execute to re-send")


@messages.command("cancel")
@click.option("--delivery", "deliveries", multiple=True, help="A delivery id (repeatable).")
@click.option("--message", default=None, help="Every delivery of this message id.")
@click.option("--reason", required=True, help="Why (recorded in the timeline).")
@click.option("--dry-run", is_flag=True, help="Only list what would be cancelled.")
@click.pass_obj
def messages_cancel(
    settings: Settings, deliveries: tuple[str, ...], message: str | None, reason: str, dry_run: bool
) -> None:
    """Cancel deliveries that are not finished (done, forwarded and cancelled ones are
    skipped and listed)."""
    selection = checked(lambda: Selection(delivery_ids=deliveries, message_id=message))
    why = checked(lambda: check_reason(reason))
    outcome = run_with_store(
        settings, lambda store: store.cancel(selection, why, cli_operator(), dry_run=dry_run)
    )
    _print_outcome(outcome, "cancel", "cancelled", "drop --dry-run to cancel")


@messages.command("stuck")
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1, 5000))
@click.pass_obj
def messages_stuck(settings: Settings, limit: int) -> None:
    """Deliveries stuck longer than LIENTHONG_STUCK_*_SECONDS, oldest first (e.g. the daily
    list of units that have not collected their documents)."""
    now = datetime.now(UTC)
    found = run_with_store(settings, lambda store: store.stuck(settings.stuck_thresholds, limit))
    for state, view in found:
        age = (now - view.state_changed_at).total_seconds() / 3600
        click.echo(
            f"{state:<10} {age:7.1f} h  {view.to_code:<15} {view.delivery_id}  "
            f"{view.message_id}  {(view.subject or '')[:60]}"
        )
    click.echo(f"{len(found)} stuck")
