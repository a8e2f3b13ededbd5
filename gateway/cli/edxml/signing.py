"""`lienthong edxml sign` and `lienthong edxml verify`: XML-DSig for agency developers."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import click

from gateway.cli._bootstrap import sign_package, verifier
from gateway.edxml.parser import ParsedPackage, parse_package
from gateway.errors import PackageRejected
from gateway.services.package_facts import signing_time
from gateway.settings import Settings
from gateway.signatures import SignatureOutcome, SigningTime

ALGORITHMS = click.Choice(
    ["rsa-sha256", "rsa-sha384", "rsa-sha512", "rsa-sha1", "ecdsa-sha256", "ecdsa-sha384"]
)


@click.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The signer's private key (PEM).",
)
@click.option(
    "--cert",
    "cert_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The signer's certificate (PEM); more certificates after it in the file "
    "(the issuing CAs) go into KeyInfo too.",
)
@click.option("--algorithm", type=ALGORITHMS, default="rsa-sha256", show_default=True)
@click.option(
    "--c14n",
    "canonicalization",
    type=click.Choice(["exc-c14n", "c14n"]),
    default="exc-c14n",
    show_default=True,
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def sign(
    file: Path,
    key_file: Path,
    cert_file: Path,
    algorithm: str,
    canonicalization: str,
    output: Path | None,
) -> None:
    """Sign FILE with an enveloped XML-DSig over the whole package (Reference URI="")."""
    pem = cert_file.read_bytes()
    marker = b"-----BEGIN CERTIFICATE-----"
    certificates = [marker + part for part in pem.split(marker)[1:]]
    if not certificates:
        raise click.ClickException(f"{cert_file} holds no PEM certificate")
    signed = sign_package(
        file.read_bytes(),
        key_file.read_bytes(),
        certificates[0],
        algorithm=algorithm,  # type: ignore[arg-type]
        canonicalization=canonicalization,  # type: ignore[arg-type]
        extra_certs=certificates[1:],
    )
    if output is None:
        sys.stdout.buffer.write(signed)
    else:
        output.write_bytes(signed)
        click.echo(f"signed ({algorithm}, {canonicalization}) → {output}", err=True)


@click.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def verify(settings: Settings, file: Path) -> None:
    """Verify FILE's signature and its signer against LIENTHONG_TRUST_DIR (exit 0 if valid)."""
    at: SigningTime
    try:
        package = parse_package(file)
        at = partial(_signing_time, package)
    except PackageRejected:
        at = datetime.now(UTC)  # still say what the signature is worth
    report = asyncio.run(verifier(settings).verify(file.read_bytes(), at))
    for key, value in report.as_dict().items():
        if value not in (None, [], ""):
            shown = (
                json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value
            )
            click.echo(f"{key:<17} {shown}")
    if report.outcome is not SignatureOutcome.VALID:
        raise SystemExit(1)


def _signing_time(package: ParsedPackage, set_aside: int) -> datetime:
    return signing_time(package, set_aside=set_aside)
