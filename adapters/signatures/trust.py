"""Certificate trust for package signatures (SPEC §3.4).

Does the signer's certificate chain to a CA this node trusts, and was every certificate of
that chain within its validity period, unrevoked and fit for its purpose when the package was
signed (the TraceHeader timestamp)?

* Trust anchors are the self-signed CA certificates in the trust directory; other CA
  certificates there, and the certificates the package carries in its KeyInfo, are candidates
  for the path.
* Path building and PKIX validation (signatures, names, basic constraints, path length,
  validity) are pyhanko-certvalidator's, at the signing time. Key usage of the signer is
  checked here: pyhanko's ``validate_usage`` wants *all* the usages listed (we accept
  digitalSignature *or* nonRepudiation) and fails a certificate without the extension.
* Revocation is by CRL: files in the trust directory, and for each certificate with an
  HTTP(S) distribution point, the CRL fetched with httpx (bounded by ``fetch_timeout``) and
  cached on disk as ``<cache_dir>/<sha256 of the URL>.crl`` (DER; the file's mtime is the
  fetch time). A cached CRL is reused while younger than ``crl_max_age`` and before its
  nextUpdate, refetched otherwise; a failed download is not retried for
  ``FETCH_FAILURE_BACKOFF`` seconds. A CRL is used (and cached) only once verified: issuer
  name equal to the certificate's issuer, signature by that issuer's key.
* pyhanko checks each certificate against those CRLs (scope, freshness at the signing time,
  revocation time), one certificate at a time so that a problem is reported against the
  right one. CRLs issued after the signing time count: the revocation date decides. A
  verified CRL listing the certificate as revoked at or before the signing time is proof of
  revocation even when pyhanko finds it out of date (certificate holds excepted).
* A revocation status that cannot be established (download failed or timed out and no fresh
  cached copy, a CRL not signed by the issuer, a CRL out of date for the signing time) for a
  certificate that declares where its CRL is, or whose issuer has CRL files, is a distinct
  outcome: ``unverifiable`` / CERT_CRL_UNAVAILABLE, never ``trusted``. A certificate that
  declares no CRL, and whose issuer has no CRL file, is revocation ``not-checked``.

Algorithm policy: SHA-1 and RSA keys from 1024 bits are accepted in certificates and CRLs
(legacy CAs, SPEC §3.4); MD2/MD5 are not.

``evaluate`` never raises: every problem, including malformed input, is a ``TrustResult``.

The modules: `trust_anchors` (the trust directory read into anchors, CA certificates, CRLs),
`trust_path` (path building and validation, validity periods, key usage), `revocation` (CRLs
checked one certificate at a time), `crl_fetch` (download, verification and the on-disk cache),
`certificates` (names and forms shared by them), `trust_result` (the answer and its codes),
`trust_cache` (trusted verdicts served again while their certificates and CRLs are unchanged).
This one holds `TrustStore`, which runs them in that order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from adapters.signatures.certificates import (
    as_utc,
    describe,
    fmt_time,
    path_certificates,
    role_of,
    subjects,
)
from adapters.signatures.crl_fetch import CrlFetcher
from adapters.signatures.revocation import ChainLink, check_revocation, revocation_entry
from adapters.signatures.trust_anchors import TrustMaterial, load_trust_dir
from adapters.signatures.trust_cache import VerdictCache, verdict_key
from adapters.signatures.trust_path import build_path, key_usage_problem, validity_problem
from adapters.signatures.trust_result import (
    CERT_CRL_UNAVAILABLE,
    CERT_KEY_USAGE,
    CERT_REVOKED,
    TRUST_ERROR,
    TRUST_NOT_CONFIGURED,
    Revocation,
    TrustRefusal,
    TrustResult,
)

__all__ = ["TrustResult", "TrustStore"]

log = logging.getLogger(__name__)


class TrustStore:
    """The trust directory's material and the CRL cache; evaluates signer certificates."""

    def __init__(
        self,
        trust_dir: Path | None,
        *,
        cache_dir: Path,
        crl_max_age: timedelta = timedelta(hours=24),
        fetch_timeout: float = 5.0,
        fetch_crls: bool = True,
    ) -> None:
        self._trust_dir = trust_dir
        self._crls = CrlFetcher(
            cache_dir, max_age=crl_max_age, fetch_timeout=fetch_timeout, enabled=fetch_crls
        )
        self._material = TrustMaterial()
        self._generation = 0
        self.verdicts = VerdictCache(crl_max_age)
        self.reload()

    # -- trust directory ------------------------------------------------------------------

    def reload(self) -> None:
        """(Re)read the trust directory (`trust_anchors.load_trust_dir`); verdicts decided
        with the previous material are not served again (`trust_cache`)."""
        self._material = load_trust_dir(self._trust_dir)
        self._generation += 1
        self.verdicts.clear()

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self._material.anchors

    # -- evaluation -----------------------------------------------------------------------

    async def evaluate(
        self,
        signer: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: datetime,
        now: datetime | None = None,
    ) -> TrustResult:
        try:
            return await self._evaluate(
                signer, intermediates, as_utc(at), as_utc(now or datetime.now(UTC))
            )
        except TrustRefusal as refusal:
            return refusal.result
        except Exception as exc:  # never raise: a bug must not pass a package as trusted
            log.exception("certificate trust evaluation failed")
            return TrustResult(
                "unverifiable",
                TRUST_ERROR,
                f"The certificate trust could not be evaluated ({exc}).",
                (),
                "not-checked",
                False,
            )

    async def _evaluate(
        self,
        signer: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: datetime,
        now: datetime,
    ) -> TrustResult:
        material = self._material
        name = describe(signer)
        if not material.anchors:
            where = (
                f"the trust directory {self._trust_dir} holds none"
                if self._trust_dir
                else "no trust directory is configured"
            )
            return TrustResult(
                "unverifiable",
                TRUST_NOT_CONFIGURED,
                f"This node has no trusted root CA certificate ({where}), so "
                f"the signer's certificate {name} could not be checked "
                f"(signing time {fmt_time(at)}).",
                (),
                "not-checked",
                False,
            )

        key = verdict_key(signer, intermediates, self._generation)
        kept = await self.verdicts.serve(key, at, now, material.crls, self._crls)
        if kept is not None:
            return kept

        path = await build_path(signer, intermediates, material, at)
        certs = path_certificates(path)
        chain = subjects(certs)
        links = [
            ChainLink(cert, certs[index - 1], role_of(index, certs))
            for index, cert in enumerate(certs)
            if index > 0
        ]

        # pyhanko does not check the trust anchor's own validity period: do it for all.
        problem = validity_problem(certs, at)
        if problem:
            return TrustResult("untrusted", problem[0], problem[1], chain, "not-checked", False)

        usage = key_usage_problem(signer)
        if usage:
            return TrustResult("untrusted", CERT_KEY_USAGE, usage, chain, "not-checked", False)

        await check_revocation(path, links, certs[0], at, material.crls, self._crls)

        revoked = [link for link in links if link.status == "revoked"]
        if revoked:
            link = revoked[0]
            assert link.revoked_at is not None
            return TrustResult(
                "revoked",
                CERT_REVOKED,
                f"The {link.role} {describe(link.cert)} was revoked on "
                f"{fmt_time(link.revoked_at)} (reason: {link.revoked_reason}), "
                f"at or before the signing time {fmt_time(at)}.",
                chain,
                "revoked",
                False,
            )
        unavailable = [link for link in links if link.status == "unavailable"]
        if unavailable:
            link = unavailable[0]
            return TrustResult(
                "unverifiable",
                CERT_CRL_UNAVAILABLE,
                f"The revocation status of the {link.role} "
                f"{describe(link.cert)} at the signing time {fmt_time(at)} could "
                f"not be established: {link.problem}.",
                chain,
                "unavailable",
                False,
            )

        # (no links: the signer's certificate is itself one of the trusted roots)
        revocation: Revocation = "good" if links and links[-1].status == "good" else "not-checked"
        later = _now_problem(certs, links, now)
        result = TrustResult("trusted", None, later, chain, revocation, later is None)
        self.verdicts.keep(key, result, certs, links, at, now)
        return result


def _now_problem(
    certs: list[x509.Certificate], links: list[ChainLink], now: datetime
) -> str | None:
    for index, cert in enumerate(certs):
        role, name = role_of(index, certs), describe(cert)
        if now > cert.not_valid_after_utc:
            return (
                f"The signature was made while the chain was valid; the {role} {name} "
                f"has since expired ({fmt_time(cert.not_valid_after_utc)}; "
                f"checked {fmt_time(now)})."
            )
        if now < cert.not_valid_before_utc:
            return (
                f"The {role} {name} is valid only from "
                f"{fmt_time(cert.not_valid_before_utc)}, "
                f"after the time of checking {fmt_time(now)}."
            )
    for link in links:
        entry = revocation_entry(link)
        if entry and entry[0] <= now:
            return (
                f"The signature was made before the {link.role} {describe(link.cert)} "
                f"was revoked ({fmt_time(entry[0])}, reason: {entry[1]}); "
                f"checked {fmt_time(now)}."
            )
    return None
