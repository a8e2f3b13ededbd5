"""Certificates as the trust modules read and name them: DER and asn1crypto forms, subject
names for people, times in UTC, and pyhanko's messages in those words.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator.errors import ValidationError
from pyhanko_certvalidator.path import ValidationPath


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def fmt_time(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def der_bytes(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def to_asn1(certificate: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(der_bytes(certificate))


def from_asn1(certificate: Any) -> x509.Certificate:
    return x509.load_der_x509_certificate(certificate.dump())


def path_certificates(path: ValidationPath) -> list[x509.Certificate]:
    """Root first, signer last."""
    return [from_asn1(c) for c in path.iter_certs(include_root=True)]


def lower_first(sentence: str) -> str:
    """A sentence to go after a colon."""
    return (sentence[:1].lower() + sentence[1:]).rstrip(".")


def error_path_certificates(exc: ValidationError) -> list[x509.Certificate]:
    path = getattr(exc, "current_path", None)
    return path_certificates(path) if isinstance(path, ValidationPath) else []


def subjects(certs: list[x509.Certificate]) -> tuple[str, ...]:
    """RFC 4514 subjects, signer first (``certs`` is root first)."""
    return tuple(c.subject.rfc4514_string() for c in reversed(certs))


_POSITION = re.compile(r"(?:the )?(intermediate certificate (\d+)|end-entity certificate)")


def humanize(message: str, certs: list[x509.Certificate]) -> str:
    """pyhanko names certificates by position ("intermediate certificate 1", counted from
    the root, "the end-entity certificate"): name them by subject CN instead."""

    def name(match: re.Match[str]) -> str:
        if match.group(2) is None:
            return f"the signer's certificate {describe(certs[-1])}" if certs else match.group(0)
        index = int(match.group(2))
        return (
            f"the certificate {describe(certs[index])}"
            if 0 < index < len(certs)
            else match.group(0)
        )

    text = _POSITION.sub(name, message.removeprefix("The path could not be validated because "))
    return text[:1].upper() + text[1:]


def common_name(certificate: x509.Certificate) -> str:
    try:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            value = names[0].value
            return value if isinstance(value, str) else value.decode(errors="replace")
        return certificate.subject.rfc4514_string() or "(empty subject)"
    except ValueError:
        return "(unreadable subject)"


def describe(certificate: x509.Certificate) -> str:
    return f"'{common_name(certificate)}'"


def is_ca_certificate(certificate: x509.Certificate) -> bool | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None


def is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except Exception:  # InvalidSignature, ValueError, TypeError (unsupported key types)
        return False
    return True


def is_issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, ValueError, TypeError, unsupported key types
        return False
    return True


def role_of(index: int, certs: list[x509.Certificate]) -> str:
    if index == len(certs) - 1:
        return "signer's certificate"
    return "root CA certificate" if index == 0 else "CA certificate"


def explain(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    text = (str(exc) or type(exc).__name__).splitlines()[0].rstrip(".")
    return text if len(text) < 200 else text[:197] + "..."
