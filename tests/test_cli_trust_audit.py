"""`lienthong trust`, `edxml sign|verify` and `audit` as an operator runs them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from adapters.db.models import EvidenceEntry
from gateway.runtime import build_store
from tests.support.cli import run
from tests.support.nodes import Backing
from tests.support.pki import intermediate, root_authority
from tests.support.samples import document


def test_trust_add_list_remove(backing: Backing, tmp_path: Path) -> None:
    trust_dir = tmp_path / "trust"
    root = root_authority("Root for CLI")
    ca = intermediate(root)
    (tmp_path / "chain.pem").write_bytes(root.cert_pem + ca.cert_pem)
    (tmp_path / "ca.crl").write_bytes(ca.crl_pem())
    (tmp_path / "junk.pem").write_bytes(b"not a certificate")
    env = {"LIENTHONG_TRUST_DIR": str(trust_dir)}
    added = run(backing, "trust", "add", str(tmp_path / "chain.pem"), **env)
    assert added.exit_code == 0 and added.output.count("added certificate") == 2
    assert run(backing, "trust", "add", str(tmp_path / "ca.crl"), **env).exit_code == 0
    listing = run(backing, "trust", "list", **env).output
    assert "Root for CLI" in listing and listing.count("crl") == 1
    junk = run(backing, "trust", "add", str(tmp_path / "junk.pem"), **env)
    assert junk.exit_code == 1 and "neither PEM certificates nor a CRL" in junk.output
    fingerprint = listing.splitlines()[0].split()[1]
    assert run(backing, "trust", "remove", fingerprint, **env).exit_code == 0
    assert len(run(backing, "trust", "list", **env).output.splitlines()) == 2


def test_sign_then_verify(backing: Backing, tmp_path: Path) -> None:
    root = root_authority()
    ca = intermediate(root)
    signer = ca.issue("Van thu H53")
    key, cert = signer.write(tmp_path, "signer")
    cert.write_bytes(signer.cert_pem + ca.cert_pem)  # the CA travels in KeyInfo
    (tmp_path / "trust").mkdir()
    (tmp_path / "trust" / "root.pem").write_bytes(root.cert_pem)
    package = tmp_path / "package.edxml"
    package.write_bytes(document("000.00.01.H53", ["000.00.02.H53"]))
    signed = tmp_path / "signed.edxml"
    made = run(
        backing,
        "edxml",
        "sign",
        str(package),
        "--key",
        str(key),
        "--cert",
        str(cert),
        "-o",
        str(signed),
    )
    assert made.exit_code == 0, made.output
    env = {"LIENTHONG_TRUST_DIR": str(tmp_path / "trust")}
    checked = run(backing, "edxml", "verify", str(signed), **env)
    assert checked.exit_code == 0 and "outcome           valid" in checked.output
    assert "Van thu H53" in checked.output
    signed.write_bytes(signed.read_bytes().replace(b"V/v k", b"V/v K", 1))
    tampered = run(backing, "edxml", "verify", str(signed), **env)
    assert tampered.exit_code == 1 and "SIGNATURE_DIGEST_MISMATCH" in tampered.output


@pytest.fixture
def evidence(backing: Backing) -> Backing:
    async def fill() -> None:
        store = build_store(backing.settings())
        try:
            for index in range(5):
                await store.record_refusal("system:cli", f"{index:064x}", "TEST", "made by test")
        finally:
            await store.close()

    asyncio.run(fill())
    return backing


def test_audit_verify_and_export(evidence: Backing, tmp_path: Path) -> None:
    result = run(evidence, "audit", "verify")
    assert result.exit_code == 0 and "intact: 5 entries" in result.output
    today = datetime.now(UTC).date().isoformat()
    bundle = tmp_path / "bundle.zip"
    exported = run(evidence, "audit", "export", "--from", today, "--to", today, "-o", str(bundle))
    assert exported.exit_code == 0 and "5 entries" in exported.output
    assert run(evidence, "audit", "verify", "--bundle", str(bundle)).exit_code == 0

    async def forge() -> None:
        store = build_store(evidence.settings())
        try:
            async with store.transaction() as session:
                await session.execute(
                    update(EvidenceEntry)
                    .where(EvidenceEntry.seq == 4)
                    .values(details={"code": "FORGED"})
                )
        finally:
            await store.close()

    asyncio.run(forge())
    broken = run(evidence, "audit", "verify")
    assert broken.exit_code == 1 and "BROKEN at entry 4" in broken.output


def forge(backing: Backing, seq: int) -> None:
    async def change() -> None:
        store = build_store(backing.settings())
        try:
            async with store.transaction() as session:
                await session.execute(
                    update(EvidenceEntry)
                    .where(EvidenceEntry.seq == seq)
                    .values(details={"code": "FORGED"})
                )
        finally:
            await store.close()

    asyncio.run(change())


def test_audit_verify_counts_and_chains_pending_entries(evidence: Backing) -> None:
    """No sequencer ran (no node): the five entries are pending until `audit verify`."""
    pending = run(evidence, "audit", "verify", "--no-chain")
    assert pending.exit_code == 0 and "intact: 0 entries" in pending.output, pending.output
    assert "not yet chained: 5 entries (oldest" in pending.output
    chained = run(evidence, "audit", "verify")
    assert chained.exit_code == 0 and "intact: 5 entries, last 5" in chained.output
    assert "not yet chained: 0 entries" in chained.output
    forge(evidence, 2)
    broken = run(evidence, "audit", "verify", "--no-chain")
    assert broken.exit_code == 1 and "BROKEN at entry 2" in broken.output
    assert "altered" in broken.output and "not yet chained: 0 entries" in broken.output
