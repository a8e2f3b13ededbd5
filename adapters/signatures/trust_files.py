"""The trust directory as operators manage it: one file per CA certificate or CRL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization


@dataclass(frozen=True, slots=True)
class TrustEntry:
    kind: str  # "certificate" or "crl"
    fingerprint: str
    subject: str
    valid_until: str
    path: Path


def add_file(trust_dir: Path, source: Path) -> list[TrustEntry]:
    """Copy the CA certificates (PEM, several allowed) or the CRL (PEM or DER) in `source`
    into the trust directory, one file each, named by fingerprint; refuse anything else."""
    data = source.read_bytes()
    trust_dir.mkdir(parents=True, exist_ok=True)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        certificates = []
    if certificates:
        added = []
        for certificate in certificates:
            fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
            path = trust_dir / f"{fingerprint[:16]}.pem"
            path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
            added.append(_certificate_entry(certificate, path))
        return added
    crl = _load_crl(data)
    if crl is None:
        raise ValueError(f"{source} holds neither PEM certificates nor a CRL")
    der = crl.public_bytes(serialization.Encoding.DER)
    path = trust_dir / f"{hashlib.sha256(der).hexdigest()[:16]}.crl"
    path.write_bytes(der)
    return [_crl_entry(crl, der, path)]


def list_dir(trust_dir: Path) -> list[TrustEntry]:
    entries: list[TrustEntry] = []
    for path in sorted(trust_dir.glob("*")):
        data = path.read_bytes()
        try:
            entries += [_certificate_entry(c, path) for c in x509.load_pem_x509_certificates(data)]
            continue
        except ValueError:
            pass
        crl = _load_crl(data)
        if crl is not None:
            entries.append(_crl_entry(crl, crl.public_bytes(serialization.Encoding.DER), path))
    return entries


def remove(trust_dir: Path, fingerprint_prefix: str) -> list[Path]:
    prefix = fingerprint_prefix.lower().replace(":", "")
    if len(prefix) < 8:
        raise ValueError("give at least 8 hex digits of the fingerprint")
    paths = sorted({e.path for e in list_dir(trust_dir) if e.fingerprint.startswith(prefix)})
    for path in paths:
        path.unlink()
    return paths


def _load_crl(data: bytes) -> x509.CertificateRevocationList | None:
    for loader in (x509.load_pem_x509_crl, x509.load_der_x509_crl):
        try:
            return loader(data)
        except ValueError:
            continue
    return None


def _certificate_entry(certificate: x509.Certificate, path: Path) -> TrustEntry:
    return TrustEntry(
        "certificate",
        certificate.fingerprint(hashes.SHA256()).hex(),
        certificate.subject.rfc4514_string(),
        certificate.not_valid_after_utc.isoformat(),
        path,
    )


def _crl_entry(crl: x509.CertificateRevocationList, der: bytes, path: Path) -> TrustEntry:
    next_update = crl.next_update_utc.isoformat() if crl.next_update_utc else ""
    return TrustEntry(
        "crl", hashlib.sha256(der).hexdigest(), crl.issuer.rfc4514_string(), next_update, path
    )
