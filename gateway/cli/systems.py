"""`lienthong systems`: connected document systems, their credentials and signature policy,
and their lifecycle (disable, enable, rotate-secret, remove; `gateway.services.systems`).
Changes are recorded in the operator audit trail as `cli:<unix user>`."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from gateway.cli._bootstrap import run_with_store
from gateway.cli._support import POLICIES, checked, cli_operator, parse_duration
from gateway.services import systems as lifecycle
from gateway.services.directory import add_system
from gateway.settings import Settings


@click.group()
def systems() -> None:
    """Connected document systems and their credentials."""


@systems.command("add")
@click.argument("system_id")
@click.option(
    "--serves",
    "serves",
    multiple=True,
    required=True,
    help="Code or pattern served: 000.00.13.H53, *.*.13.H53, #.H53 (repeatable).",
)
@click.option("--secret", default=None, help="Use this secret instead of generating one.")
@click.option(
    "--push-url",
    default=None,
    help="POST its packages here (signed with its secret) instead of polling.",
)
@click.pass_obj
def systems_add(
    settings: Settings,
    system_id: str,
    serves: tuple[str, ...],
    secret: str | None,
    push_url: str | None,
) -> None:
    """Register SYSTEM_ID and print its secret (shown once; stored encrypted)."""
    click.echo(
        run_with_store(
            settings,
            lambda store: add_system(store, system_id, serves, secret, push_url, cli_operator()),
        )
    )


@systems.command("list")
@click.pass_obj
def systems_list(settings: Settings) -> None:
    """List systems and what they serve (never their secrets): id, delivery mode, serve
    patterns, enabled or disabled, and until when a rotated-out secret still works."""
    now = datetime.now(UTC)
    for system in run_with_store(settings, lambda store: store.list_systems()):
        until = system.previous_secret_until
        grace = (
            f"\tprevious secret valid until {until.isoformat(timespec='seconds')}"
            if until is not None and until > now
            else ""
        )
        click.echo(
            f"{system.system_id}\t{system.delivery_mode}\t"
            f"{','.join(p.text for p in system.patterns)}\t"
            f"{'enabled' if system.enabled else 'disabled'}{grace}"
        )


@systems.command("policy")
@click.argument("system_id")
@click.argument("policy", type=POLICIES)
@click.pass_obj
def systems_policy(settings: Settings, system_id: str, policy: str) -> None:
    """Signature policy for packages this system sends (`default`: the node's)."""
    run_with_store(
        settings,
        lambda store: store.set_signature_policy(
            system_id=system_id, policy=None if policy == "default" else policy
        ),
    )
    click.echo(f"{system_id}: signature policy {policy}")


REASON = click.option("--reason", default=None, help="Why (recorded in the audit trail).")


@systems.command("disable")
@click.argument("system_id")
@REASON
@click.pass_obj
def systems_disable(settings: Settings, system_id: str, reason: str | None) -> None:
    """Refuse SYSTEM_ID's calls (SYSTEM_DISABLED, /vxp 29) and lock its agencies as
    recipients (23) on every process, until `systems enable`. What is in its inbox waits."""
    changed = run_with_store(
        settings,
        lambda store: lifecycle.disable_system(store, system_id, cli_operator(), reason),
    )
    click.echo(f"{system_id} disabled" + ("" if changed else " (it already was)"))


@systems.command("enable")
@click.argument("system_id")
@REASON
@click.pass_obj
def systems_enable(settings: Settings, system_id: str, reason: str | None) -> None:
    """Accept SYSTEM_ID's calls and route to its agencies again."""
    changed = run_with_store(
        settings,
        lambda store: lifecycle.enable_system(store, system_id, cli_operator(), reason),
    )
    click.echo(f"{system_id} enabled" + ("" if changed else " (it already was)"))


@systems.command("rotate-secret")
@click.argument("system_id")
@click.option(
    "--grace",
    default="0",
    show_default=True,
    help="How long the old secret keeps working: 0 (stops at once), 30m, 24h, 7d (≤ 30d).",
)
@click.option("--secret", default=None, help="Use this secret instead of generating one.")
@REASON
@click.pass_obj
def systems_rotate_secret(
    settings: Settings, system_id: str, grace: str, secret: str | None, reason: str | None
) -> None:
    """Give SYSTEM_ID a new secret and print it (shown once; stored encrypted). The old
    one is refused at once, or after --grace."""
    seconds = checked(lambda: parse_duration(grace))
    rotated = run_with_store(
        settings,
        lambda store: lifecycle.rotate_secret(
            store, system_id, cli_operator(), seconds, secret, reason
        ),
    )
    click.echo(rotated.secret)
    until = rotated.previous_valid_until
    click.echo(
        f"the previous secret of {system_id} works until {until.isoformat(timespec='seconds')}"
        if until is not None
        else f"the previous secret of {system_id} no longer works",
        err=True,
    )


@systems.command("remove")
@click.argument("system_id")
@click.option(
    "--force",
    is_flag=True,
    help="Also when deliveries to it are unfinished: they are cancelled (in their timelines).",
)
@REASON
@click.pass_obj
def systems_remove(settings: Settings, system_id: str, force: bool, reason: str | None) -> None:
    """Remove SYSTEM_ID (its messages and deliveries stay, under its id). Refused while
    deliveries to it are unfinished (in its inbox, on their way, retrying or dead) unless
    --force."""
    removed = run_with_store(
        settings,
        lambda store: lifecycle.remove_system(store, system_id, cli_operator(), force, reason),
    )
    cancelled = len(removed.cancelled)
    click.echo(
        f"{system_id} removed"
        + (
            f"; {cancelled} unfinished deliver{'y' if cancelled == 1 else 'ies'} cancelled"
            if cancelled
            else ""
        )
    )
