"""`lienthong operators`: operator accounts for the operator API, and their audit trail.

The CLI itself acts as operator `cli:<unix user>` with role admin (it has database access
anyway) and records what it does like any other operator.
"""

from __future__ import annotations

import json

import click

from gateway.cli._bootstrap import run_with_store
from gateway.cli._support import cli_operator
from gateway.errors import GatewayError
from gateway.operators.roles import Role, check_operator_name, new_token, parse_role, token_hash
from gateway.settings import Settings


@click.group()
def operators() -> None:
    """Operator accounts (admin, operator, auditor) for /api/v1/operator."""


@operators.command("add")
@click.argument("name")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="auditor reads; operator also replays and cancels; admin: everything.",
)
@click.pass_obj
def operators_add(settings: Settings, name: str, role: str) -> None:
    """Add operator NAME and print its token (shown once; only its SHA-256 is stored).
    It authenticates with `Authorization: Bearer NAME:TOKEN`."""
    try:
        check_operator_name(name)
        parsed = parse_role(role)
    except GatewayError as error:
        raise click.ClickException(error.detail) from None
    token = new_token()
    run_with_store(
        settings, lambda store: store.add_operator(name, parsed, token_hash(token), cli_operator())
    )
    click.echo(token)


@operators.command("list")
@click.pass_obj
def operators_list(settings: Settings) -> None:
    """List operators and their roles (never their tokens)."""
    for record in run_with_store(settings, lambda store: store.list_operators()):
        click.echo(
            f"{record.name}\t{record.role.value}\t"
            f"{'enabled' if record.enabled else 'disabled'}\t"
            f"{record.created_at.isoformat(timespec='seconds')}"
        )


@operators.command("disable")
@click.argument("name")
@click.pass_obj
def operators_disable(settings: Settings, name: str) -> None:
    """Refuse NAME's token from now on (add a new operator to replace it)."""
    run_with_store(settings, lambda store: store.set_operator_enabled(name, False, cli_operator()))
    click.echo(f"{name} disabled")


@operators.command("enable")
@click.argument("name")
@click.pass_obj
def operators_enable(settings: Settings, name: str) -> None:
    """Accept NAME's token again."""
    run_with_store(settings, lambda store: store.set_operator_enabled(name, True, cli_operator()))
    click.echo(f"{name} enabled")


@operators.command("actions")
@click.option("--operator", "name", default=None, help="Only this operator's actions.")
@click.option(
    "--cursor", type=int, default=0, show_default=True, help="Start after this action id."
)
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
@click.pass_obj
def operators_actions(settings: Settings, name: str | None, cursor: int, limit: int) -> None:
    """The audit trail: what operators did (dry runs included), oldest first."""
    rows, next_cursor = run_with_store(
        settings, lambda store: store.operator_actions(cursor, limit, name)
    )
    for action in rows:
        summary = {k: len(v) for k, v in action.details.items() if isinstance(v, list)}
        click.echo(
            f"#{action.id}\t{action.at.isoformat(timespec='seconds')}\t"
            f"{action.operator}\t{action.role}\t{action.action}"
            f"{' (dry run)' if action.dry_run else ''}\t{action.target}\t"
            f"{action.reason or ''}\t{json.dumps(summary)}"
        )
    if next_cursor is not None:
        click.echo(f"more: --cursor {next_cursor}")
