"""`lienthong migrate` and `lienthong serve`: create or upgrade a node, and run it."""

from __future__ import annotations

import logging.config
import os
from pathlib import Path

import click

from gateway.cli._bootstrap import migrate as migrate_node
from gateway.cli._bootstrap import run_with_store
from gateway.datadir import ensure_data_dir
from gateway.errors import InvalidRequest
from gateway.logs import logging_config
from gateway.ports import NodeStore
from gateway.records import AgencyRecord
from gateway.services.directory import add_system
from gateway.settings import Settings
from gateway.types import AgencyCode

DEMO_SYSTEMS = (("demo.sender", "000.00.01.H99"), ("demo.receiver", "000.00.02.H99"))


@click.command()
@click.pass_obj
def migrate(settings: Settings) -> None:
    """Create or upgrade the database schema (and the data directory, owner-only)."""
    migrate_node(settings)
    click.echo("database is at the latest schema")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--no-migrate", is_flag=True, help="Do not migrate the database first.")
@click.option(
    "--demo",
    is_flag=True,
    help="Register two demo systems (if missing) and print their credentials.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="LIENTHONG_WORKERS",
    help="Worker processes sharing the port (PostgreSQL + RabbitMQ only); one per core.",
)
@click.pass_obj
def serve(
    settings: Settings, host: str, port: int, no_migrate: bool, demo: bool, workers: int
) -> None:
    """Run the gateway (HTTP API, relay and consumers) until interrupted.

    One process migrates once it listens (`/readyz` says `migrating` meanwhile); with
    `--demo` (which registers systems first) or several workers it migrates before."""
    from gateway.api.server import check_workers
    from gateway.api.server import serve as serve_http

    try:
        check_workers(settings, workers)
    except InvalidRequest as error:
        raise click.UsageError(error.detail) from None

    logging.config.dictConfig(logging_config(settings.log_format, settings.log_level))
    ensure_data_dir(settings.data_dir)
    migrate_first = not no_migrate and (demo or workers > 1)
    if migrate_first:
        migrate_node(settings)
    if demo:
        _ensure_demo(settings, host, port)
    serve_http(settings, host, port, workers, migrate=not no_migrate and not migrate_first)


def _ensure_demo(settings: Settings, host: str, port: int) -> None:
    async def work(store: NodeStore) -> list[tuple[str, str, str]]:
        lines = []
        for system_id, code in DEMO_SYSTEMS:
            existing = await store.get_credentials(system_id)
            secret = existing.secret if existing else await add_system(store, system_id, [code])
            lines.append((system_id, code, secret))
        await store.upsert_agencies(
            [AgencyRecord(code=AgencyCode(code), name=f"Demo {sid}") for sid, code in DEMO_SYSTEMS]
        )
        return lines

    url = f"http://{LOOPBACK.get(host, host)}:{port}"
    click.echo(f"Demo systems on {url} (SDK endpoint /vxp, REST /api/v1, docs /docs):")
    demo = run_with_store(settings, work)
    for system_id, code, secret in demo:
        click.echo(f"  systemId={system_id}  serves={code}  secret={secret}")
    path = write_demo_env(settings.data_dir, url, demo)
    click.echo(f"  for a shell: . {path}  (README, 'First exchange')")


LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
"""Where a client on this machine reaches a node listening on every address."""


def write_demo_env(data_dir: Path, url: str, demo: list[tuple[str, str, str]]) -> Path:
    """`demo.env` in the data directory (owner-only, like the key beside it): the demo
    systems' credentials as shell variables, for the README's curl walkthrough."""
    (sender, sender_code, sender_secret), (receiver, receiver_code, receiver_secret) = demo
    path = data_dir / "demo.env"
    text = (
        "# Written by `lienthong serve --demo`: the demo systems' credentials (load with `. "
        f"{path}`).\n"
        f"DEMO_URL='{url}'\n"
        f"DEMO_SENDER_CODE='{sender_code}'\n"
        f"DEMO_RECEIVER_CODE='{receiver_code}'\n"
        f"DEMO_SENDER_AUTH='Authorization: Bearer {sender}:{sender_secret}'\n"
        f"DEMO_RECEIVER_AUTH='Authorization: Bearer {receiver}:{receiver_secret}'\n"
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    return path
