"""Verdicts of certificate trust kept for the next package signed with the same certificate.

Path building and PKIX validation (pyhanko) cost more than anything else in a signed package;
agencies sign thousands of packages with one certificate. A verdict is kept only when it was
"trusted, valid now, and no CRL of the chain lists any of its certificates", and it is served
again only while everything it was decided on still holds:

* the same signer and package intermediates, and the same trust directory (its generation
  changes on every `TrustStore.reload`);
* the same CRLs: the CRLs that would be used now are collected as for a full evaluation (the
  trust directory's, and each distribution point's through the fetcher, which refetches a
  copy older than ``crl_max_age``) and must be the very objects the verdict was decided with
  — a new CRL, downloaded here or by another process sharing the cache directory, is a new
  object, so a newly revoked certificate is evaluated afresh and refused;
* never at or past the earliest nextUpdate of those CRLs, nor ``crl_max_age`` after it was
  decided;
* the new signing time is within every certificate's validity, on the same side of each CRL's
  thisUpdate as the one decided, and the chain is still valid at the time of checking.

Anything else is a full evaluation (whose answer may replace the verdict).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from adapters.signatures.crl_fetch import CrlFetcher
from adapters.signatures.revocation import ChainLink, collect_crls, revocation_entry
from adapters.signatures.trust_path import validity_problem
from adapters.signatures.trust_result import TrustResult

MAX_VERDICTS = 4096

VerdictKey = tuple[bytes, tuple[bytes, ...], int]


def verdict_key(
    signer: x509.Certificate, intermediates: Sequence[x509.Certificate], generation: int
) -> VerdictKey:
    sha256 = hashes.SHA256()
    return (
        signer.fingerprint(sha256),
        tuple(c.fingerprint(sha256) for c in intermediates),
        generation,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    result: TrustResult
    certs: tuple[x509.Certificate, ...]
    """The path, root first."""
    links: tuple[tuple[x509.Certificate, x509.Certificate, str], ...]
    """(certificate, issuer, role) below the root."""
    crls: tuple[tuple[x509.CertificateRevocationList, ...], ...]
    """Per link, the CRLs it was decided with."""
    after_this_update: tuple[bool, ...]
    """Per CRL (in order), whether the signing time was at or after its thisUpdate."""
    expires: datetime


class VerdictCache:
    def __init__(self, max_age: timedelta, limit: int = MAX_VERDICTS) -> None:
        self._max_age = max_age
        self._limit = limit
        self._verdicts: OrderedDict[VerdictKey, Verdict] = OrderedDict()
        self.hits = 0

    def __len__(self) -> int:
        return len(self._verdicts)

    def clear(self) -> None:
        self._verdicts.clear()

    def keep(
        self,
        key: VerdictKey,
        result: TrustResult,
        certs: Sequence[x509.Certificate],
        links: Sequence[ChainLink],
        at: datetime,
        now: datetime,
    ) -> None:
        """Keep a verdict that may be served again (see the module's note); others are not."""
        if result.outcome != "trusted" or not result.valid_now:
            return
        if any(link.status not in ("good", "not-checked") for link in links):
            return
        if any(revocation_entry(link) is not None for link in links):
            return
        crls = [crl for link in links for crl in link.crls]
        expires = now + self._max_age
        for crl in crls:
            if crl.next_update_utc is not None:
                expires = min(expires, crl.next_update_utc)
        if expires <= now:
            return
        self._verdicts[key] = Verdict(
            result=result,
            certs=tuple(certs),
            links=tuple((link.cert, link.issuer, link.role) for link in links),
            crls=tuple(tuple(link.crls) for link in links),
            after_this_update=tuple(at >= crl.last_update_utc for crl in crls),
            expires=expires,
        )
        self._verdicts.move_to_end(key)
        while len(self._verdicts) > self._limit:
            self._verdicts.popitem(last=False)

    async def serve(
        self,
        key: VerdictKey,
        at: datetime,
        now: datetime,
        on_file: Sequence[x509.CertificateRevocationList],
        fetcher: CrlFetcher,
    ) -> TrustResult | None:
        """The kept verdict if everything it was decided on still holds, else None."""
        verdict = self._verdicts.get(key)
        if verdict is None:
            return None
        if now >= verdict.expires or at >= verdict.expires:
            del self._verdicts[key]
            return None
        if validity_problem(list(verdict.certs), at) or validity_problem(list(verdict.certs), now):
            return None
        links = [ChainLink(cert, issuer, role) for cert, issuer, role in verdict.links]
        await asyncio.gather(*(collect_crls(link, on_file, fetcher) for link in links))
        for link, kept in zip(links, verdict.crls, strict=True):
            if link.status == "unavailable" or len(link.crls) != len(kept):
                return None
            if any(now_used is not used for now_used, used in zip(link.crls, kept, strict=True)):
                return None
        crls = [crl for link in links for crl in link.crls]
        if tuple(at >= crl.last_update_utc for crl in crls) != verdict.after_this_update:
            return None
        self._verdicts.move_to_end(key)
        self.hits += 1
        return verdict.result
