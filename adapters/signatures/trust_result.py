"""What certificate trust answers: an outcome, a stable code, a reason, the chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["trusted", "untrusted", "revoked", "unverifiable"]
Revocation = Literal["good", "revoked", "unavailable", "not-checked"]


CERT_UNTRUSTED_ROOT = "CERT_UNTRUSTED_ROOT"
CERT_EXPIRED = "CERT_EXPIRED"
CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
CERT_KEY_USAGE = "CERT_KEY_USAGE"
CERT_REVOKED = "CERT_REVOKED"
CERT_CRL_UNAVAILABLE = "CERT_CRL_UNAVAILABLE"
CERT_CHAIN = "CERT_CHAIN"
TRUST_NOT_CONFIGURED = "TRUST_NOT_CONFIGURED"
TRUST_ERROR = "TRUST_ERROR"
"""An unexpected failure inside the evaluation itself (a bug, not the certificate's fault)."""


@dataclass(frozen=True, slots=True)
class TrustResult:
    outcome: Outcome
    code: str | None
    """CERT_UNTRUSTED_ROOT, CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_KEY_USAGE, CERT_REVOKED,
    CERT_CRL_UNAVAILABLE, CERT_CHAIN, TRUST_NOT_CONFIGURED, TRUST_ERROR; None when trusted."""
    reason: str | None
    """For a clerk or an operator: which certificate (subject CN), what, and the time checked.
    None for a trusted chain that is also valid now; a note otherwise."""
    chain: tuple[str, ...]
    """RFC 4514 subjects, signer first, root last (empty if no path was found)."""
    revocation: Revocation
    """Revoked or unavailable anywhere in the chain; else the signer certificate's status
    (``not-checked`` when it names no CRL and none is on file for its issuer)."""
    valid_now: bool
    """Trusted, and the chain is also within validity and unrevoked at the time of checking."""


class TrustRefusal(Exception):
    def __init__(self, result: TrustResult) -> None:
        super().__init__(result.reason)
        self.result = result
