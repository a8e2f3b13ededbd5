"""`lienthong agencies`: the agency directory, signature policies and certificate bindings."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli._bootstrap import run_with_peers, run_with_store
from gateway.cli._support import POLICIES, cli_operator
from gateway.directory_sync import SyncReport
from gateway.errors import GatewayError
from gateway.peers import PeerUnreachable
from gateway.ports import NodeStore, PeerCaller
from gateway.services.directory import read_agency_file
from gateway.services.directory_sync import PAGE_SIZE, DirectorySync, DirectorySyncFailed
from gateway.services.reorganisation import merge_agency, rename_agency, retire_agency
from gateway.settings import Settings


@click.group()
def agencies() -> None:
    """The agency directory (danh bạ mã định danh)."""


@agencies.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def agencies_import(settings: Settings, file: Path) -> None:
    """Import a CSV (code,name,parent,mail) or JSON list; known codes are updated."""
    try:
        records = read_agency_file(file)
    except GatewayError as error:
        raise click.ClickException(error.detail) from None
    added, updated = run_with_store(settings, lambda store: store.upsert_agencies(records))
    click.echo(f"{added} added, {updated} updated")


@agencies.command("add")
@click.argument("code")
@click.option("--name", required=True)
@click.option("--parent", default=None)
@click.option("--mail", default=None)
@click.pass_obj
def agencies_add(
    settings: Settings, code: str, name: str, parent: str | None, mail: str | None
) -> None:
    """Add (or update) one agency."""
    from gateway.services.directory import agency_records

    try:
        records = agency_records(
            [("argument", {"code": code, "name": name, "parent": parent, "mail": mail})]
        )
    except GatewayError as error:
        raise click.ClickException(error.detail) from None
    added, updated = run_with_store(settings, lambda store: store.upsert_agencies(records))
    click.echo(f"{code} {'added' if added else 'updated' if updated else 'unchanged'}")


@agencies.command("list")
@click.pass_obj
def agencies_list(settings: Settings) -> None:
    """List the directory (with the successor of a merged agency, and the peer an entry was
    learned from)."""
    for agency in run_with_store(settings, lambda store: store.list_agencies()):
        extra = f" -> {agency.successor_code}" if agency.successor_code else ""
        extra += f"\t(from peer {agency.peer})" if agency.peer else ""
        click.echo(f"{agency.code}\t{agency.status}\t{agency.name}{extra}")


@agencies.command("sync")
@click.option("--from", "peer", required=True, help="The peer whose directory is pulled.")
@click.option("--full", is_flag=True, help="From the start, not from the last synced version.")
@click.option(
    "--adopt",
    is_flag=True,
    help="Also take over entries this node has without a peer (imported before it was "
    "connected) for codes routed to that peer.",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 100_000),
    default=PAGE_SIZE,
    show_default=True,
    help="Units asked per getSynchronizeUnit call.",
)
@click.pass_obj
def agencies_sync(settings: Settings, peer: str, full: bool, adopt: bool, page_size: int) -> None:
    """Pull the directory of peer NAME: getSynchronizeUnit since the last synced version
    (tombstones, merges, renames), getAgenciesList when the peer lacks it. Entries served
    by a local system or managed here are never overwritten."""

    async def work(store: NodeStore, peers: PeerCaller) -> SyncReport:
        try:
            sync = DirectorySync(store, peers, page_size)
            return await sync.sync(peer, full=full, adopt=adopt)
        except (PeerUnreachable, DirectorySyncFailed) as error:
            raise click.ClickException(f"{peer}: {error}") from None

    click.echo(run_with_peers(settings, work).summary())


@agencies.command("merge")
@click.argument("old")
@click.option(
    "--into", "new", required=True, help="The successor agency (already in the directory)."
)
@click.pass_obj
def agencies_merge(settings: Settings, old: str, new: str) -> None:
    """Merge OLD into NEW: packages to OLD go to NEW (the sender is warned), and deliveries
    pending to OLD that were not downloaded follow to NEW's route."""
    actor = cli_operator().actor
    outcome = run_with_store(
        settings,
        lambda store: merge_agency(store, old, new, settings.broker_shards, actor),
    )
    head = (
        f"{old} merged into {new}"
        if outcome.change == "merged"
        else f"{old} was already merged into {new}"
    )
    if outcome.successor != new:
        head += f" (whose successor is {outcome.successor})"
    click.echo(f"{head}; directory version {outcome.version}")
    click.echo(
        f"{len(outcome.redirected)} pending deliveries re-routed to {outcome.successor} "
        f"({outcome.route}), {len(outcome.cancelled)} cancelled ({outcome.successor} has "
        "its own delivery of the package)"
    )
    for delivery, why in outcome.left:
        click.echo(f"left with {old}: {delivery}: {why}")


@agencies.command("rename")
@click.argument("code")
@click.option("--name", required=True)
@click.pass_obj
def agencies_rename(settings: Settings, code: str, name: str) -> None:
    """Give agency CODE a new name (same code)."""
    actor = cli_operator().actor
    change = run_with_store(settings, lambda store: rename_agency(store, code, name, actor))
    click.echo(f"{code} {change.change}; directory version {change.version}")


@agencies.command("retire")
@click.argument("code")
@click.pass_obj
def agencies_retire(settings: Settings, code: str) -> None:
    """Close agency CODE: packages to it are refused (RECIPIENT_CLOSED, 23); peers sync it
    as deleted."""
    actor = cli_operator().actor
    change = run_with_store(settings, lambda store: retire_agency(store, code, actor))
    click.echo(f"{code} {change.change}; directory version {change.version}")


@agencies.command("policy")
@click.argument("code")
@click.argument("policy", type=POLICIES)
@click.pass_obj
def agencies_policy(settings: Settings, code: str, policy: str) -> None:
    """Signature policy for packages this agency sends; wins over its system's."""
    run_with_store(
        settings,
        lambda store: store.set_signature_policy(
            agency_code=code, policy=None if policy == "default" else policy
        ),
    )
    click.echo(f"{code}: signature policy {policy}")


@agencies.command("bind")
@click.argument("code")
@click.option(
    "--cert",
    "cert_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A PEM certificate the agency signs with.",
)
@click.option("--fingerprint", help="SHA-256 fingerprint of such a certificate.")
@click.option("--subject", help="Subject attributes its certificates carry: 'CN=…,O=…'.")
@click.pass_obj
def agencies_bind(
    settings: Settings,
    code: str,
    cert_file: Path | None,
    fingerprint: str | None,
    subject: str | None,
) -> None:
    """Register a certificate of the agency: a valid signature by it for another agency, or by
    another certificate for this one, is then refused as spoofing."""
    if cert_file is not None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        fingerprint = (
            x509.load_pem_x509_certificate(cert_file.read_bytes())
            .fingerprint(hashes.SHA256())
            .hex()
        )
    if bool(fingerprint) == bool(subject):
        raise click.ClickException("give exactly one of --cert, --fingerprint or --subject")
    normalized = fingerprint.lower().replace(":", "") if fingerprint else None
    run_with_store(settings, lambda store: store.add_binding(code, normalized, subject))
    click.echo(f"{code}: bound to {normalized or subject}")
