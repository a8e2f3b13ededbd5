"""`lienthong peers`: the other nodes this one forwards to and polls (SPEC §3.5)."""

from __future__ import annotations

from datetime import datetime

import click

from gateway.cli._bootstrap import run_with_store
from gateway.peers import PeerStatus
from gateway.settings import Settings


@click.group()
def peers() -> None:
    """Peer nodes (the national axis, other provinces): routes, reachability, backlog."""


@peers.command("add")
@click.argument("name")
@click.option("--url", required=True, help="The peer's /vxp base, e.g. https://axis.example/vxp")
@click.option(
    "--system-id", "system_id", required=True, help="The systemId the peer gave this node."
)
@click.option("--secret", required=True, help="The secret the peer gave this node (stored sealed).")
@click.option(
    "--prefix",
    "prefixes",
    multiple=True,
    help="Codes behind the peer, as a pattern: #.H54, *.*.*.G01, 000.00.00.H54 (repeatable).",
)
@click.option(
    "--default", "is_default", is_flag=True, help="Route here what no system or prefix covers."
)
@click.pass_obj
def peers_add(
    settings: Settings,
    name: str,
    url: str,
    system_id: str,
    secret: str,
    prefixes: tuple[str, ...],
    is_default: bool,
) -> None:
    """Connect peer NAME: recipients no local system serves go to the peer whose prefix is
    most specific, else to the default peer."""
    peer = run_with_store(
        settings,
        lambda store: store.add_peer(name, url, system_id, secret, prefixes, is_default),
    )
    routes = ", ".join(p.text for p in peer.prefixes) or "-"
    click.echo(
        f"{peer.name}: {peer.url} as {peer.system_id}; prefixes {routes}"
        + ("; default route" if peer.is_default else "")
    )


@peers.command("list")
@click.pass_obj
def peers_list(settings: Settings) -> None:
    """Each peer: URL, routes, reachability, last poll, backlog."""
    statuses = run_with_store(settings, lambda store: store.peer_statuses())
    if not statuses:
        click.echo("no peers (lienthong peers add NAME --url URL --system-id ID --secret S ...)")
    for status in statuses:
        click.echo(_line(status))


@peers.command("remove")
@click.argument("name")
@click.pass_obj
def peers_remove(settings: Settings, name: str) -> None:
    """Disconnect peer NAME (what still waits for it goes dead at its next attempt)."""
    run_with_store(settings, lambda store: store.remove_peer(name))
    click.echo(f"{name}: removed")


@peers.command("refused")
@click.argument("name", required=False)
@click.option("--limit", default=50, show_default=True)
@click.pass_obj
def peers_refused(settings: Settings, name: str | None, limit: int) -> None:
    """Items polled from peers that this node refused (acknowledged `fail`), with the reason."""
    for item in run_with_store(settings, lambda store: store.refused_peer_items(name, limit)):
        click.echo(
            f"{item['seenAt']}\t{item['peer']}\t{item['kind']}\t{item['item']}\t"
            f"{item['recipient'] or '-'}\t{item['reason']}"
        )


def _line(status: PeerStatus) -> str:
    peer = status.peer
    reachable = {None: "not tried yet", True: "reachable", False: "unreachable"}[status.reachable]
    routes = ",".join(p.text for p in peer.prefixes) + (" (default)" if peer.is_default else "")
    poll = _when(status.last_poll_at) + (
        f" ({status.last_poll_error})" if status.last_poll_error else ""
    )
    return (
        f"{peer.name}\t{peer.url}\tas {peer.system_id}\troutes {routes or '-'}\t{reachable}"
        f"\tlast poll {poll}\tbacklog {status.backlog}\tdead {status.dead}"
        f"\tforwarded {status.forwarded}\trefused items {status.refused_items}"
    )


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"
