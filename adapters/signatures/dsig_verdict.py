"""What the cryptographic check of a package signature answers: an outcome, a stable code,
a reason, and what was read on the way (reported with any verdict, even an early refusal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509

Outcome = Literal["valid", "invalid", "absent", "unverifiable"]


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The cryptographic verdict on a package's signature (trust is decided elsewhere)."""

    outcome: Outcome
    reason: str | None
    code: str | None
    signature_method: str | None
    digest_method: str | None
    canonicalization: str | None
    weak_algorithm: bool
    certificates: tuple[x509.Certificate, ...]
    signer: x509.Certificate | None
    namespace: Literal["xmldsig", "qcvn"] | None
    notes: tuple[str, ...] = ()


DIGEST_MISMATCH = "SIGNATURE_DIGEST_MISMATCH"
VALUE_MISMATCH = "SIGNATURE_VALUE_MISMATCH"
WRAPPING = "SIGNATURE_WRAPPING"
MULTIPLE = "SIGNATURE_MULTIPLE"
MISPLACED = "SIGNATURE_MISPLACED"
KEYINFO = "SIGNATURE_KEYINFO"
MALFORMED = "SIGNATURE_MALFORMED"
FORBIDDEN_ALGORITHM = "SIGNATURE_FORBIDDEN_ALGORITHM"
# The codes above are always `invalid`; those below always `unverifiable`.
UNSUPPORTED_TRANSFORM = "SIGNATURE_UNSUPPORTED_TRANSFORM"
UNSUPPORTED_ALGORITHM = "SIGNATURE_UNSUPPORTED_ALGORITHM"
NO_CERTIFICATE = "SIGNATURE_NO_CERTIFICATE"
QCVN_NAMESPACE = "SIGNATURE_QCVN_NAMESPACE"


SKELETON_REASON = "empty signature skeleton (no SignatureValue)"
SHA1_NOTE = "SHA-1 is accepted for legacy traffic and reported"
QCVN_NOTE = (
    "Signature found in the QCVN namespace (its XML-DSig namespace declaration was "
    "dropped): verified as its XML-DSig form"
)
DIGEST_MATCHES_NOTE = "the document digest matches: the document was not altered after signing"
VALUE_MATCHES_NOTE = "the SignatureValue matches SignedInfo with the certificate's key"


class Refused(Exception):
    """The signature is invalid: proven false, or shaped so that it could be valid over
    something else than the document."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Unverifiable(Refused):
    """The signature cannot be checked by this node; nothing found proves it false."""


@dataclass
class Findings:
    """What has been read so far: reported with any verdict, even an early refusal."""

    namespace: Literal["xmldsig", "qcvn"] | None = None
    signature_method: str | None = None
    digest_method: str | None = None
    canonicalization: str | None = None
    weak: bool = False
    certificates: tuple[x509.Certificate, ...] = ()
    signer: x509.Certificate | None = None
    notes: list[str] = field(default_factory=list)

    def result(
        self, outcome: Outcome, reason: str | None = None, code: str | None = None
    ) -> SignatureCheck:
        return SignatureCheck(
            outcome=outcome,
            reason=reason,
            code=code,
            signature_method=self.signature_method,
            digest_method=self.digest_method,
            canonicalization=self.canonicalization,
            weak_algorithm=self.weak,
            certificates=self.certificates,
            signer=self.signer,
            namespace=self.namespace,
            notes=tuple(self.notes),
        )
