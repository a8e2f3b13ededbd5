"""Signature outcomes and policies (SPEC §3.4): what a verification found, and what the
policy of the sending system or agency makes of it.

| policy            | valid  | absent  | invalid | unverifiable                  |
|-------------------|--------|---------|---------|-------------------------------|
| require           | accept | refuse  | refuse  | refuse                        |
| verify-if-present | accept | accept  | refuse  | accept, with a warning        |
| off               | not checked: accepted as `not-checked`                        |

`invalid` is a definite no (tampered, wrapped, forged, expired, revoked, wrong key usage,
untrusted root, another agency's certificate, HMAC or MD5); `unverifiable` means the node could
not decide (no trust anchors configured, a CRL out of reach, a non-standard algorithm or
transform URI such as the VPCP kit's, no usable certificate, a QCVN-namespace Signature whose
signed form cannot be established) and is stored and shown as such, so nobody is misled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.errors import Problem
from gateway.errors import SignatureRejected as SignatureRejected  # re-exported
from gateway.settings import SignaturePolicy


class SignatureOutcome(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    ABSENT = "absent"
    UNVERIFIABLE = "unverifiable"
    NOT_CHECKED = "not-checked"


@dataclass(frozen=True, slots=True)
class SignatureReport:
    outcome: SignatureOutcome
    code: str | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """Signer, issuer, fingerprint, algorithm, weak, chain, revocation, valid_now, notes."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "code": self.code,
            "reason": self.reason,
            **self.details,
        }


SigningTime = datetime | Callable[[int], datetime]
"""When the sender signed: a time, or the time given how many TraceHeaders were set aside as
appended by relays after signing. Only the TraceHeaders the signature covers are the sender's
claim: a relay, or anyone on the way, could write any time into one appended later
(`gateway.services.package_facts.signing_time`)."""


@dataclass(frozen=True, slots=True)
class CertificateBinding:
    """A certificate registered to an agency: by fingerprint, or by subject attributes."""

    agency_code: str
    fingerprint: str | None = None
    subject: str | None = None


def effective_policy(
    default: SignaturePolicy, system_policy: str | None, agency_policy: str | None
) -> SignaturePolicy:
    """The sending agency's own policy wins over its system's, which wins over the node's."""
    for chosen in (agency_policy, system_policy):
        if chosen:
            return SignaturePolicy(chosen)
    return default


def under_policy(policy: SignaturePolicy, report: SignatureReport) -> SignatureReport:
    """The outcome stored under `policy`: with `off` nothing is checked (`not-checked`)."""
    if policy is SignaturePolicy.OFF:
        return SignatureReport(SignatureOutcome.NOT_CHECKED, None, "signature policy off")
    return report


def enforce(policy: SignaturePolicy, report: SignatureReport) -> Problem | None:
    """None when the package may be accepted; else the refusal, or (for an unverifiable
    signature under verify-if-present) a warning to store with it."""
    outcome = report.outcome
    if outcome is SignatureOutcome.VALID or outcome is SignatureOutcome.NOT_CHECKED:
        return None
    if outcome is SignatureOutcome.ABSENT:
        if policy is SignaturePolicy.REQUIRE:
            return Problem(
                "SIGNATURE_REQUIRED",
                "Signature",
                "this sender must sign its packages (signature policy: require)"
                + (f"; {report.reason}" if report.reason else ""),
            )
        return None
    if outcome is SignatureOutcome.UNVERIFIABLE and policy is SignaturePolicy.VERIFY_IF_PRESENT:
        return Problem(
            report.code or "SIGNATURE_UNVERIFIABLE",
            "Signature",
            f"the signature could not be verified: {report.reason}",
            "warning",
        )
    return Problem(
        report.code or "SIGNATURE_INVALID",
        "Signature",
        report.reason or "the signature is not valid",
    )


def check_binding(
    report: SignatureReport, sender: str, bindings: list[CertificateBinding]
) -> SignatureReport:
    """A valid signature by a certificate registered to another agency, or by one that is
    not among the sender's registered certificates, is a spoofing attempt."""
    if report.outcome is not SignatureOutcome.VALID:
        return report
    fingerprint = str(report.details.get("fingerprint", "")).lower()
    subject = _attributes(str(report.details.get("subject", "")))

    def matches(binding: CertificateBinding) -> bool:
        if binding.fingerprint:
            return binding.fingerprint.lower().replace(":", "") == fingerprint
        wanted = _attributes(binding.subject or "")
        return bool(wanted) and wanted.items() <= subject.items()

    mine = [b for b in bindings if b.agency_code == sender]
    if any(matches(b) for b in mine):
        return report
    others = sorted({b.agency_code for b in bindings if b.agency_code != sender and matches(b)})
    if others:
        reason = (
            f"the certificate is registered to {', '.join(others)}, not to the sender "
            f"{sender}: spoofing attempt"
        )
    elif mine:
        reason = f"the certificate is not one registered for the sender {sender}"
    else:
        return report
    return SignatureReport(SignatureOutcome.INVALID, "SIGNATURE_SPOOFED", reason, report.details)


def _attributes(rfc4514: str) -> dict[str, str]:
    """`CN=A,O=B` → {"CN": "A", "O": "B"} (keys upper-case; values as written)."""
    pairs = (part.partition("=") for part in rfc4514.split(",") if "=" in part)
    return {key.strip().upper(): value.strip() for key, _, value in pairs}
