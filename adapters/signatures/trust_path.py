"""Path building and PKIX validation at the signing time (pyhanko-certvalidator), and the
checks pyhanko leaves to us: every certificate's validity period, the signer's key usage.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import DisallowWeakAlgorithmsPolicy

from adapters.signatures.certificates import (
    der_bytes,
    describe,
    error_path_certificates,
    explain,
    fmt_time,
    humanize,
    is_issued_by,
    is_self_signed,
    lower_first,
    path_certificates,
    role_of,
    subjects,
    to_asn1,
)
from adapters.signatures.trust_anchors import TrustMaterial
from adapters.signatures.trust_result import (
    CERT_CHAIN,
    CERT_EXPIRED,
    CERT_NOT_YET_VALID,
    CERT_UNTRUSTED_ROOT,
    TrustRefusal,
    TrustResult,
)

log = logging.getLogger(__name__)


ALGORITHM_POLICY = DisallowWeakAlgorithmsPolicy(  # type: ignore[no-untyped-call]
    weak_hash_algos=frozenset({"md2", "md5"}), rsa_key_size_threshold=1024
)


async def build_path(
    signer: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    material: TrustMaterial,
    at: datetime,
) -> ValidationPath:
    """Path building and PKIX validation at the signing time, without revocation; a path
    that cannot be built or is not valid raises `TrustRefusal` with the reason in words."""
    name = describe(signer)
    try:
        leaf = to_asn1(signer)
        others = [to_asn1(c) for c in (*intermediates, *material.cas)]
        context = ValidationContext(
            trust_roots=[to_asn1(c) for c in material.anchors],
            other_certs=others,
            moment=at,
            revocation_mode="none",
            algorithm_usage_policy=ALGORITHM_POLICY,
        )
        return await CertificateValidator(leaf, validation_context=context).async_validate_path()
    except (ExpiredError, NotYetValidError) as exc:
        certs = path_certificates(exc.current_path)
        chain = subjects(certs)
        problem = validity_problem(certs, at)
        if problem:
            raise TrustRefusal(
                TrustResult("untrusted", problem[0], problem[1], chain, "not-checked", False)
            ) from exc
        code = CERT_EXPIRED if isinstance(exc, ExpiredError) else CERT_NOT_YET_VALID
        raise TrustRefusal(
            TrustResult(
                "untrusted",
                code,
                f"{humanize(exc.failure_msg, certs)} (signing time {fmt_time(at)}).",
                chain,
                "not-checked",
                False,
            )
        ) from exc
    except (PathBuildingError, InvalidCertificateError, PathError) as exc:
        reason = _missing_link(signer, intermediates, material)
        log.info("no path for %s: %s", name, exc)
        raise TrustRefusal(
            TrustResult("untrusted", CERT_UNTRUSTED_ROOT, reason, (), "not-checked", False)
        ) from exc
    except DisallowedAlgorithmError as exc:
        certs = error_path_certificates(exc)
        raise TrustRefusal(
            TrustResult(
                "untrusted",
                CERT_CHAIN,
                f"The certificate chain of {name} uses an algorithm "
                f"this node does not accept: {lower_first(humanize(exc.failure_msg, certs))}.",
                subjects(certs),
                "not-checked",
                False,
            )
        ) from exc
    except ValidationError as exc:
        certs = error_path_certificates(exc)
        raise TrustRefusal(
            TrustResult(
                "untrusted",
                CERT_CHAIN,
                f"The certificate chain of {name} is not valid at the "
                f"signing time {fmt_time(at)}: {lower_first(humanize(exc.failure_msg, certs))}.",
                subjects(certs),
                "not-checked",
                False,
            )
        ) from exc
    except ValueError as exc:  # asn1crypto could not parse a certificate
        raise TrustRefusal(
            TrustResult(
                "untrusted",
                CERT_CHAIN,
                f"A certificate of the chain of {name} could not be read: {explain(exc)}.",
                (),
                "not-checked",
                False,
            )
        ) from exc


def validity_problem(certs: list[x509.Certificate], at: datetime) -> tuple[str, str] | None:
    """The first certificate (from the root) not valid at ``at``: (code, reason)."""
    for index, certificate in enumerate(certs):
        role, name = role_of(index, certs), describe(certificate)
        if at < certificate.not_valid_before_utc:
            return CERT_NOT_YET_VALID, (
                f"The {role} {name} is valid only from "
                f"{fmt_time(certificate.not_valid_before_utc)}, after the signing time "
                f"{fmt_time(at)}."
            )
        if at > certificate.not_valid_after_utc:
            return CERT_EXPIRED, (
                f"The {role} {name} expired on {fmt_time(certificate.not_valid_after_utc)}, before "
                f"the signing time {fmt_time(at)}."
            )
    return None


_USAGE_NAMES = {
    "digital_signature": "digitalSignature",
    "content_commitment": "nonRepudiation",
    "key_encipherment": "keyEncipherment",
    "data_encipherment": "dataEncipherment",
    "key_agreement": "keyAgreement",
    "key_cert_sign": "keyCertSign",
    "crl_sign": "cRLSign",
}


def key_usage_problem(signer: x509.Certificate) -> str | None:
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if usage.digital_signature or usage.content_commitment:
        return None
    present = [label for attribute, label in _USAGE_NAMES.items() if getattr(usage, attribute)]
    return (
        f"The signer's certificate {describe(signer)} is not meant for signatures: its key "
        f"usage ({', '.join(present) or 'none'}) has neither digitalSignature nor "
        f"nonRepudiation."
    )


def _missing_link(
    signer: x509.Certificate, intermediates: Sequence[x509.Certificate], material: TrustMaterial
) -> str:
    """Where the chain of ``signer`` stops, in words."""
    known = [*intermediates, *material.cas, *material.anchors]
    current, seen = signer, {der_bytes(signer)}
    while True:
        which = (
            "The signer's certificate"
            if current is signer
            else f"The chain of the signer's certificate {describe(signer)} reaches the "
            f"CA certificate"
        )
        if is_self_signed(current):
            if current is signer:
                return (
                    f"The signer's certificate {describe(signer)} is self-signed and is "
                    f"not one of the root CAs this node trusts."
                )
            return (
                f"The chain of the signer's certificate {describe(signer)} ends at the "
                f"root CA {describe(current)}, which is not one of the root CAs this node "
                f"trusts."
            )
        parent = next(
            (
                c
                for c in known
                if c.subject == current.issuer
                and der_bytes(c) not in seen
                and is_issued_by(current, c)
            ),
            None,
        )
        if parent is None:
            issuer = current.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
            label = f"'{issuer[0].value!s}'" if issuer else f"'{current.issuer.rfc4514_string()}'"
            return (
                f"{which} {describe(current)}, issued by {label}: that CA is neither a "
                f"root this node trusts nor among its CA certificates or those sent with "
                f"the package."
            )
        if any(der_bytes(parent) == der_bytes(anchor) for anchor in material.anchors):
            return (
                f"The chain of the signer's certificate {describe(signer)} reaches the "
                f"trusted root {describe(parent)} but could not be validated."
            )
        current = parent
        seen.add(der_bytes(parent))
