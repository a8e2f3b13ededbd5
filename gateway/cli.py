"""`lienthong`: run the node, migrate it, and manage systems and the directory."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from adapters.db.migrate import migrate as run_migrations
from adapters.db.store import SqlStore
from gateway.cli_edxml import edxml
from gateway.errors import GatewayError
from gateway.records import AgencyRecord
from gateway.runtime import build_store
from gateway.services.directory import add_system, read_agency_file
from gateway.settings import Settings, load_settings
from gateway.types import AgencyCode

T = TypeVar("T")

DEMO_SYSTEMS = (("demo.sender", "000.00.01.H99"), ("demo.receiver", "000.00.02.H99"))


def _with_store(settings: Settings, work: Callable[[SqlStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = build_store(settings)
        try:
            return await work(store)
        finally:
            await store.close()
    try:
        return asyncio.run(run())
    except GatewayError as error:
        raise click.ClickException(error.detail) from None


@click.group()
@click.pass_context
def main(context: click.Context) -> None:
    """lienthong-gateway: a node of the document-exchange axis (trục liên thông)."""
    context.obj = load_settings()


@main.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Create or upgrade the database schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
    import uvicorn

    from gateway.api.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                                                   "%(message)s")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not no_migrate:
        run_migrations(settings.resolved_database_url)
    if demo:
        _ensure_demo(settings, host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")


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
    for system_id, code, secret in _with_store(settings, work):
        click.echo(f"  systemId={system_id}  serves={code}  secret={secret}")


@main.group()
def systems() -> None:
    """Connected document systems and their credentials."""


@systems.command("add")
@click.argument("system_id")
@click.option("--serves", "serves", multiple=True, required=True,
              help="Code or pattern served: 000.00.13.H53, *.*.13.H53, #.H53 (repeatable).")
@click.option("--secret", default=None, help="Use this secret instead of generating one.")
@click.pass_obj
def systems_add(settings: Settings, system_id: str, serves: tuple[str, ...],
                secret: str | None) -> None:
    """Register SYSTEM_ID and print its secret (shown once; stored encrypted)."""
    click.echo(_with_store(settings, lambda store: add_system(store, system_id, serves, secret)))


@systems.command("list")
@click.pass_obj
def systems_list(settings: Settings) -> None:
    """List systems and what they serve (never their secrets)."""
    for system in _with_store(settings, lambda store: store.list_systems()):
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
    added, updated = _with_store(settings, lambda store: store.upsert_agencies(records))
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
    added, _ = _with_store(settings, lambda store: store.upsert_agencies(records))
    click.echo(f"{code} {'added' if added else 'updated'}")


@agencies.command("list")
@click.pass_obj
def agencies_list(settings: Settings) -> None:
    """List the directory."""
    for agency in _with_store(settings, lambda store: store.list_agencies()):
        click.echo(f"{agency.code}\t{agency.status}\t{agency.name}")


main.add_command(edxml)

if __name__ == "__main__":
    sys.exit(main())
