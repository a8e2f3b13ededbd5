"""`lienthong`: run the node, migrate it, and manage systems and the directory."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TypeVar

import click

from adapters.db.migrate import migrate as run_migrations
from adapters.db.store import SqlStore
from gateway.cli_audit import audit
from gateway.cli_edxml import edxml
from gateway.cli_messages import messages
from gateway.cli_operators import operators
from gateway.cli_signatures import sign, verify  # noqa: F401  (adds `edxml sign|verify`)
from gateway.cli_support import run_with_store
from gateway.cli_trust import trust
from gateway.datadir import ensure_data_dir
from gateway.errors import GatewayError
from gateway.records import AgencyRecord
from gateway.services.directory import add_system, read_agency_file
from gateway.settings import Settings, load_settings
from gateway.types import AgencyCode

T = TypeVar("T")

DEMO_SYSTEMS = (("demo.sender", "000.00.01.H99"), ("demo.receiver", "000.00.02.H99"))


@click.group()
@click.pass_context
def main(context: click.Context) -> None:
    """lienthong-gateway: a node of the document-exchange axis (trục liên thông)."""
    context.obj = load_settings()


@main.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Create or upgrade the database schema (and the data directory, owner-only)."""
    ensure_data_dir(settings.data_dir)
    run_migrations(settings.resolved_database_url)
    click.echo("database is at the latest schema")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--no-migrate", is_flag=True, help="Do not migrate the database first.")
@click.option("--demo", is_flag=True,
              help="Register two demo systems (if missing) and print their credentials.")
@click.pass_obj
def serve(settings: Settings, host: str, port: int, no_migrate: bool, demo: bool) -> None:
    """Run the gateway (HTTP API, relay and consumers) until interrupted."""
    from gateway.api.server import serve as serve_http

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                                                   "%(message)s")
    ensure_data_dir(settings.data_dir)
    if not no_migrate:
        run_migrations(settings.resolved_database_url)
    if demo:
        _ensure_demo(settings, host, port)
    serve_http(settings, host, port)


def _ensure_demo(settings: Settings, host: str, port: int) -> None:
    async def work(store: SqlStore) -> list[tuple[str, str, str]]:
        lines = []
        for system_id, code in DEMO_SYSTEMS:
            existing = await store.get_credentials(system_id)
            secret = existing.secret if existing else await add_system(store, system_id, [code])
            lines.append((system_id, code, secret))
        await store.upsert_agencies([AgencyRecord(code=AgencyCode(code), name=f"Demo {sid}")
                                     for sid, code in DEMO_SYSTEMS])
        return lines
    click.echo(f"Demo systems on http://{host}:{port} (SDK endpoint /vxp, REST /api/v1, "
               "docs /docs):")
    for system_id, code, secret in run_with_store(settings, work):
        click.echo(f"  systemId={system_id}  serves={code}  secret={secret}")


@main.group()
def systems() -> None:
    """Connected document systems and their credentials."""


@systems.command("add")
@click.argument("system_id")
@click.option("--serves", "serves", multiple=True, required=True,
              help="Code or pattern served: 000.00.13.H53, *.*.13.H53, #.H53 (repeatable).")
@click.option("--secret", default=None, help="Use this secret instead of generating one.")
@click.option("--push-url", default=None,
              help="POST its packages here (signed with its secret) instead of polling.")
@click.pass_obj
def systems_add(settings: Settings, system_id: str, serves: tuple[str, ...],
                secret: str | None, push_url: str | None) -> None:
    """Register SYSTEM_ID and print its secret (shown once; stored encrypted)."""
    click.echo(run_with_store(settings, lambda store: add_system(store, system_id, serves,
                                                                 secret, push_url)))


@systems.command("list")
@click.pass_obj
def systems_list(settings: Settings) -> None:
    """List systems and what they serve (never their secrets)."""
    for system in run_with_store(settings, lambda store: store.list_systems()):
        click.echo(f"{system.system_id}\t{system.delivery_mode}\t"
                   f"{','.join(p.text for p in system.patterns)}")


@main.group()
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
def agencies_add(settings: Settings, code: str, name: str, parent: str | None,
                 mail: str | None) -> None:
    """Add (or update) one agency."""
    from gateway.services.directory import agency_records
    try:
        records = agency_records([("argument", {"code": code, "name": name, "parent": parent,
                                                 "mail": mail})])
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


POLICIES = click.Choice(["require", "verify-if-present", "off", "default"])


@systems.command("policy")
@click.argument("system_id")
@click.argument("policy", type=POLICIES)
@click.pass_obj
def systems_policy(settings: Settings, system_id: str, policy: str) -> None:
    """Signature policy for packages this system sends (`default`: the node's)."""
    run_with_store(settings, lambda store: store.set_signature_policy(
        system_id=system_id, policy=None if policy == "default" else policy))
    click.echo(f"{system_id}: signature policy {policy}")


@agencies.command("policy")
@click.argument("code")
@click.argument("policy", type=POLICIES)
@click.pass_obj
def agencies_policy(settings: Settings, code: str, policy: str) -> None:
    """Signature policy for packages this agency sends; wins over its system's."""
    run_with_store(settings, lambda store: store.set_signature_policy(
        agency_code=code, policy=None if policy == "default" else policy))
    click.echo(f"{code}: signature policy {policy}")


@agencies.command("bind")
@click.argument("code")
@click.option("--cert", "cert_file", type=click.Path(exists=True, dir_okay=False,
                                                     path_type=Path),
              help="A PEM certificate the agency signs with.")
@click.option("--fingerprint", help="SHA-256 fingerprint of such a certificate.")
@click.option("--subject", help="Subject attributes its certificates carry: 'CN=…,O=…'.")
@click.pass_obj
def agencies_bind(settings: Settings, code: str, cert_file: Path | None,
                  fingerprint: str | None, subject: str | None) -> None:
    """Register a certificate of the agency: a valid signature by it for another agency, or by
    another certificate for this one, is then refused as spoofing."""
    if cert_file is not None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        fingerprint = x509.load_pem_x509_certificate(cert_file.read_bytes()).fingerprint(
            hashes.SHA256()).hex()
    if bool(fingerprint) == bool(subject):
        raise click.ClickException("give exactly one of --cert, --fingerprint or --subject")
    normalized = fingerprint.lower().replace(":", "") if fingerprint else None
    run_with_store(settings, lambda store: store.add_binding(code, normalized, subject))
    click.echo(f"{code}: bound to {normalized or subject}")


main.add_command(edxml)
main.add_command(audit)
main.add_command(trust)
main.add_command(operators)
main.add_command(messages)

if __name__ == "__main__":
    sys.exit(main())
