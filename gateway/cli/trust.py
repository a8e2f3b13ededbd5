"""`lienthong trust`: the CA certificates and CRLs signatures are checked against."""

from __future__ import annotations

from pathlib import Path

import click

from gateway.cli._bootstrap import trust_files
from gateway.settings import Settings


def _trust_dir(settings: Settings) -> Path:
    if settings.trust_dir is None:
        raise click.ClickException("set LIENTHONG_TRUST_DIR to the trust directory first")
    return settings.trust_dir


@click.group()
def trust() -> None:
    """Trusted CA certificates (Ban Cơ yếu Chính phủ, commercial CAs) and CRLs."""


@trust.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def trust_add(settings: Settings, file: Path) -> None:
    """Add the CA certificates (PEM) or the CRL (PEM/DER) in FILE; running nodes pick them up
    at their next start or `trust` reload."""
    try:
        for entry in trust_files.add_file(_trust_dir(settings), file):
            click.echo(f"added {entry.kind} {entry.fingerprint[:16]}  {entry.subject}")
    except ValueError as error:
        raise click.ClickException(str(error)) from None


@trust.command("list")
@click.pass_obj
def trust_list(settings: Settings) -> None:
    """Everything trusted: kind, fingerprint (SHA-256), subject, valid until / next update."""
    for entry in trust_files.list_dir(_trust_dir(settings)):
        click.echo(
            f"{entry.kind:<11} {entry.fingerprint[:16]}  {entry.valid_until[:10]}  {entry.subject}"
        )


@trust.command("remove")
@click.argument("fingerprint")
@click.pass_obj
def trust_remove(settings: Settings, fingerprint: str) -> None:
    """Remove the certificate or CRL whose SHA-256 fingerprint starts with FINGERPRINT."""
    try:
        removed = trust_files.remove(_trust_dir(settings), fingerprint)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if not removed:
        raise click.ClickException(f"nothing in the trust directory matches {fingerprint}")
    for path in removed:
        click.echo(f"removed {path.name}")
