"""Revocation by CRL, one certificate of the path at a time, so that a problem is reported
against the right one (pyhanko-certvalidator checks scope, freshness and revocation time).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import (
    InsufficientRevinfoError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.ltv.poe import POEManager
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    NonRevokedStatusAssertion,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import CertificateRegistry, SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import process_legacy_crl_input
from pyhanko_certvalidator.revinfo.manager import RevinfoManager
from pyhanko_certvalidator.validate import async_validate_path

from adapters.signatures.certificates import as_utc, der_bytes, describe, humanize, to_asn1
from adapters.signatures.crl_fetch import CrlFetcher, crl_signed_by, crl_urls
from adapters.signatures.trust_path import ALGORITHM_POLICY
from adapters.signatures.trust_result import Revocation


@dataclass(slots=True)
class ChainLink:
    """A certificate of the path below the trust anchor, with its issuer."""

    cert: x509.Certificate
    issuer: x509.Certificate
    role: str
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    status: Revocation = "not-checked"
    problem: str | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None


async def check_revocation(
    path: ValidationPath,
    links: list[ChainLink],
    anchor: x509.Certificate,
    at: datetime,
    on_file: Sequence[x509.CertificateRevocationList],
    fetcher: CrlFetcher,
) -> None:
    """Set each link's revocation status: its issuer's CRL files (``on_file``) and the CRL
    at its distribution point (``fetcher``), checked by pyhanko one certificate at a time."""
    await asyncio.gather(*(collect_crls(link, on_file, fetcher) for link in links))
    for index, link in enumerate(links):
        if not link.crls:
            continue
        await _pyhanko_revocation(path, links, index, anchor, at)
        if link.status == "revoked":
            continue
        # pyhanko takes a revocation exactly at the validation time as not yet effective
        # (the SPEC says "at or before"), and ignores a CRL that is out of date for the
        # signing time, even one (verified) that lists the certificate as revoked before.
        entry = revocation_entry(link)
        if entry and entry[0] <= at and (link.status == "good" or entry[1] != "certificateHold"):
            link.status, link.revoked_at, link.revoked_reason = "revoked", *entry


async def collect_crls(
    link: ChainLink, files: Sequence[x509.CertificateRevocationList], fetcher: CrlFetcher
) -> None:
    """The verified CRLs of ``link``'s issuer: its files, then the first distribution point
    that yields one; ``unavailable`` (with the reasons) when a CRL was expected but none is
    usable."""
    issuer = link.issuer
    on_file = [c for c in files if c.issuer == issuer.subject]
    link.crls = [c for c in on_file if crl_signed_by(c, issuer)]
    problems = []
    urls = crl_urls(link.cert)
    for url in urls:
        crl, problem = await fetcher.fetch(url, issuer)
        if crl is not None:
            link.crls.append(crl)
            break
        problems.append(problem)
    if link.crls:
        return
    if len(on_file) > len(link.crls):
        problems.append(
            f"the CRL file(s) in the trust directory for its issuer "
            f"{describe(issuer)} are not signed by that CA's key"
        )
    elif problems:
        problems.append(f"no CRL file for its issuer {describe(issuer)} is in the trust directory")
    if problems:
        link.status = "unavailable"
        link.problem = "; ".join(problems)


async def _pyhanko_revocation(
    path: ValidationPath, links: list[ChainLink], index: int, anchor: x509.Certificate, at: datetime
) -> None:
    """Check ``links[index]`` alone against its CRLs (the other CA certificates are
    asserted unrevoked for this run, the signer's rule is "no check" unless it is the
    one being checked). CRLs issued after the signing time count (``retroactive``):
    the revocation date in them decides."""
    link = links[index]
    is_signer = index == len(links) - 1
    required, skip = RevocationCheckingRule.CRL_REQUIRED, RevocationCheckingRule.NO_CHECK
    policy = CertRevTrustPolicy(
        RevocationCheckingPolicy(required if is_signer else skip, skip if is_signer else required),
        retroactive_revinfo=True,
    )
    assertions = [
        NonRevokedStatusAssertion(hashlib.sha256(der_bytes(other.cert)).digest(), at)
        for other in links[:-1]
        if other is not link
    ]
    registry = CertificateRegistry.build([to_asn1(other.cert) for other in links])
    revinfo = RevinfoManager(
        certificate_registry=registry,
        poe_manager=POEManager(),
        crls=process_legacy_crl_input(
            [c.public_bytes(serialization.Encoding.DER) for c in link.crls]
        ),
        ocsps=(),
        assertions=assertions,
    )
    context = ValidationContext(
        trust_manager=SimpleTrustManager.build(trust_roots=[to_asn1(anchor)]),
        certificate_registry=registry,
        revinfo_manager=revinfo,
        moment=at,
        revinfo_policy=policy,
        algorithm_usage_policy=ALGORITHM_POLICY,
    )
    try:
        await async_validate_path(context, path)
    except RevokedError as exc:
        entry = revocation_entry(link)
        link.status = "revoked"
        link.revoked_at = entry[0] if entry else as_utc(exc.revocation_dt)
        link.revoked_reason = entry[1] if entry else str(exc.reason.human_friendly)
        return
    except ValidationError as exc:
        detail = exc.failure_msg
        if isinstance(exc, InsufficientRevinfoError):
            detail = detail.partition(" failed: ")[2] or detail
        link.status = "unavailable"
        link.problem = (
            f"the CRL from its issuer {describe(link.issuer)} could not be "
            f"used: {humanize(detail, [])}"
        )
        return
    link.status = "good"


def revocation_entry(link: ChainLink) -> tuple[datetime, str] | None:
    """The earliest revocation of ``link.cert`` in its verified CRLs (certificates taken off
    hold, reason removeFromCRL, do not count)."""
    found: list[tuple[datetime, str]] = []
    for crl in link.crls:
        entry = crl.get_revoked_certificate_by_serial_number(link.cert.serial_number)
        if entry is None:
            continue
        reason = "unspecified"
        with contextlib.suppress(x509.ExtensionNotFound):
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        if reason != "removeFromCRL":
            found.append((entry.revocation_date_utc, reason))
    return min(found) if found else None
