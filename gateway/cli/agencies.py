"""`lienthong agencies`: the agency directory, signature policies and certificate bindings."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli._bootstrap import run_with_store
from gateway.cli._support import POLICIES
from gateway.errors import GatewayError
from gateway.services.directory import read_agency_file
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
    """List the directory."""
    for agency in run_with_store(settings, lambda store: store.list_agencies()):
        click.echo(f"{agency.code}\t{agency.status}\t{agency.name}")


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
