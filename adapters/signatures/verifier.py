"""The package signature verifier: cryptographic check (xmldsig) + certificate trust (trust).

It answers one of valid / invalid (with a code and reason) / absent / unverifiable, with the
details an operator or a court needs (signer, issuer, fingerprint, algorithm, chain, CRL).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from adapters.signatures.trust import TrustResult, TrustStore
from adapters.signatures.xmldsig import SignatureCheck, check_signature
from gateway.signatures import SignatureOutcome, SignatureReport, SigningTime


class PackageVerifier:
    def __init__(self, trust: TrustStore) -> None:
        self._trust = trust

    async def verify(self, document: bytes, signing_time: SigningTime) -> SignatureReport:
        check = await asyncio.to_thread(check_signature, document)
        at = signing_time(check.trace_headers_set_aside) if callable(signing_time) else signing_time
        details = _details(check)
        if check.outcome == "absent":
            return SignatureReport(SignatureOutcome.ABSENT, None, check.reason, details)
        if check.outcome == "unverifiable":  # the certificate's trust would not change that
            return SignatureReport(SignatureOutcome.UNVERIFIABLE, check.code, check.reason, details)
        if check.outcome == "invalid" or check.signer is None:
            return SignatureReport(
                SignatureOutcome.INVALID,
                check.code or "SIGNATURE_INVALID",
                check.reason or "no signer certificate",
                details,
            )
        others = [c for c in check.certificates if c is not check.signer]
        trust = await self._trust.evaluate(check.signer, others, at=at, now=datetime.now(UTC))
        details.update(_trust_details(trust, at))
        if trust.outcome == "trusted":
            return SignatureReport(SignatureOutcome.VALID, None, None, details)
        outcome = (
            SignatureOutcome.UNVERIFIABLE
            if trust.outcome == "unverifiable"
            else SignatureOutcome.INVALID
        )
        return SignatureReport(outcome, trust.code, trust.reason, details)


def _details(check: SignatureCheck) -> dict[str, Any]:
    details: dict[str, Any] = {
        "signature_method": check.signature_method,
        "digest_method": check.digest_method,
        "canonicalization": check.canonicalization,
        "weak_algorithm": check.weak_algorithm,
        "namespace": check.namespace,
        "notes": list(check.notes),
        # Results stored before relays' TraceHeaders were set aside lack it: read it as 0.
        "trace_headers_set_aside": check.trace_headers_set_aside,
    }
    if check.signer is not None:
        details.update(certificate_summary(check.signer))
    return details


def certificate_summary(certificate: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": certificate.subject.rfc4514_string(),
        "issuer": certificate.issuer.rfc4514_string(),
        "serial": format(certificate.serial_number, "x"),
        "fingerprint": certificate.fingerprint(hashes.SHA256()).hex(),
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


def _trust_details(trust: TrustResult, signing_time: datetime) -> dict[str, Any]:
    return {
        "chain": list(trust.chain),
        "revocation": trust.revocation,
        "valid_now": trust.valid_now,
        "checked_at": signing_time.isoformat(),
    }
