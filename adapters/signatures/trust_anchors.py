"""The trust directory read into trust material: root CAs (the anchors), other CA
certificates (candidates for a path) and CRL files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from adapters.signatures.certificates import (
    common_name,
    der_bytes,
    is_ca_certificate,
    is_self_signed,
)

log = logging.getLogger(__name__)


_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_TRUST_SUFFIXES = (".pem", ".crt", ".cer", ".crl")
_CRL_SUFFIXES = (".crl", ".crl.pem")


@dataclass(frozen=True, slots=True)
class TrustMaterial:
    anchors: tuple[x509.Certificate, ...] = ()
    cas: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()


def load_trust_dir(directory: Path | None) -> TrustMaterial:
    """Read the trust directory: certificates from *.pem, *.crt, *.cer (PEM, possibly
    several per file, or a single DER certificate) and CRLs from *.crl, *.crl.pem (PEM or
    DER). Unreadable files are logged and skipped."""
    anchors: dict[bytes, x509.Certificate] = {}
    cas: dict[bytes, x509.Certificate] = {}
    crls: list[x509.CertificateRevocationList] = []
    if directory is not None and not directory.is_dir():
        log.warning("trust directory %s does not exist: no trusted CA", directory)
    elif directory is not None:
        for path in sorted(directory.iterdir()):
            name = path.name.lower()
            if not path.is_file() or not name.endswith(_TRUST_SUFFIXES):
                continue
            try:
                certificates, lists = _parse_trust_file(
                    path.read_bytes(), name.endswith(_CRL_SUFFIXES)
                )
            except (OSError, ValueError) as exc:
                log.warning("trust file %s skipped: %s", path, exc)
                continue
            crls.extend(lists)
            for certificate in certificates:
                der = der_bytes(certificate)
                is_ca = is_ca_certificate(certificate)
                if is_self_signed(certificate) and is_ca is not False:
                    anchors[der] = certificate
                elif is_ca:
                    cas[der] = certificate
                else:
                    log.warning(
                        "trust file %s: %s is not a CA certificate, ignored",
                        path,
                        common_name(certificate),
                    )
    log.info(
        "trust store: %d root(s), %d other CA certificate(s), %d CRL(s)",
        len(anchors),
        len(cas),
        len(crls),
    )
    return TrustMaterial(tuple(anchors.values()), tuple(cas.values()), tuple(crls))


def _parse_trust_file(
    data: bytes, crl_file: bool
) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
    certificates: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    if b"-----BEGIN" not in data:
        if crl_file:
            crls.append(x509.load_der_x509_crl(data))
        else:
            certificates.append(x509.load_der_x509_certificate(data))
        return certificates, crls
    for match in _PEM_BLOCK.finditer(data):
        label = match.group(1)
        try:
            if label in (b"CERTIFICATE", b"X509 CERTIFICATE"):
                certificates.append(x509.load_pem_x509_certificate(match.group(0)))
            elif label == b"X509 CRL":
                crls.append(x509.load_pem_x509_crl(match.group(0)))
        except ValueError as exc:
            log.warning("trust file: a %s block could not be read: %s", label.decode(), exc)
    return certificates, crls
