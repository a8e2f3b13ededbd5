"""`lienthong systems`: connected document systems, their credentials and signature policy."""

from __future__ import annotations

import click

from gateway.cli._bootstrap import run_with_store
from gateway.cli._support import POLICIES
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
            settings, lambda store: add_system(store, system_id, serves, secret, push_url)
        )
    )


@systems.command("list")
@click.pass_obj
def systems_list(settings: Settings) -> None:
    """List systems and what they serve (never their secrets)."""
    for system in run_with_store(settings, lambda store: store.list_systems()):
        click.echo(
            f"{system.system_id}\t{system.delivery_mode}\t"
            f"{','.join(p.text for p in system.patterns)}"
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
