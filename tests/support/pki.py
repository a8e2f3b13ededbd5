"""A PKI made at test time: root CA, intermediate, agency certificates in every state, CRL.

Stands in for the Government CA (Ban Cơ yếu Chính phủ) and commercial CAs: real structure
(basic constraints, key usage, CRL distribution points), keys small enough to be quick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
NOW = datetime.now(UTC).replace(microsecond=0)


def _name(common_name: str, organization: str = "Ban Co yeu Chinh phu (test)") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Issued:
    key: PrivateKey
    certificate: x509.Certificate

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        key, cert = directory / f"{stem}.key.pem", directory / f"{stem}.cert.pem"
        key.write_bytes(self.key_pem)
        cert.write_bytes(self.cert_pem)
        return key, cert


@dataclass
class Authority(Issued):
    revoked: list[x509.Certificate] = field(default_factory=list)
    crl_url: str | None = None

    def issue(
        self,
        common_name: str,
        *,
        ca: bool = False,
        key: PrivateKey | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key_usage: str = "signing",
        organization: str = "UBND tinh (test)",
        serial_number: str | None = None,
    ) -> Issued:
        key = key or rsa_key()
        subject = _name(common_name, organization)
        if serial_number:
            subject = x509.Name(
                [*subject, x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number)]
            )
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - timedelta(days=30))
            .not_valid_after(not_after or NOW + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
            .add_extension(_key_usage("ca" if ca else key_usage), True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if self.crl_url:
            builder = builder.add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(self.crl_url)], None, None, None
                        )
                    ]
                ),
                False,
            )
        certificate = builder.sign(self.key, hashes.SHA256())
        if ca:
            return Authority(key, certificate)
        return Issued(key, certificate)

    def revoke(self, issued: Issued) -> None:
        self.revoked.append(issued.certificate)

    def crl(self, this_update: datetime | None = None) -> x509.CertificateRevocationList:
        this_update = this_update or NOW - timedelta(hours=1)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(this_update)
            .next_update(this_update + timedelta(days=7))
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .add_extension(x509.CRLNumber(len(self.revoked) + 1), False)
        )
        for certificate in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(certificate.serial_number)
                .revocation_date(this_update - timedelta(minutes=5))
                .build()
            )
        return builder.sign(self.key, hashes.SHA256())

    def crl_pem(self) -> bytes:
        return self.crl().public_bytes(serialization.Encoding.PEM)


def _key_usage(kind: str) -> x509.KeyUsage:
    flags = dict(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    if kind == "ca":
        flags.update(key_cert_sign=True, crl_sign=True)
    elif kind == "signing":
        flags.update(digital_signature=True, content_commitment=True)
    elif kind == "encipherment":
        flags.update(key_encipherment=True)
    return x509.KeyUsage(**flags)


def root_authority(common_name: str = "Root CA (test)", crl_url: str | None = None) -> Authority:
    key = rsa_key()
    subject = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=3650))
        .not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .add_extension(_key_usage("ca"), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate, crl_url=crl_url)


def intermediate(
    root: Authority, common_name: str = "Intermediate CA (test)", crl_url: str | None = None
) -> Authority:
    issued = root.issue(common_name, ca=True)
    assert isinstance(issued, Authority)
    issued.crl_url = crl_url
    return issued


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
