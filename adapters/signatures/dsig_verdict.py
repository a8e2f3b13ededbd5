"""What the cryptographic check of a package signature answers: an outcome, a stable code,
a reason, and what was read on the way (reported with any verdict, even an early refusal).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from cryptography import x509

if TYPE_CHECKING:
    from adapters.signatures.dsig_digest import DigestInput

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
    trace_headers_set_aside: int = 0
    """How many TraceHeaders relays appended after signing were left out of the document
    this verdict is about (`dsig_relays`); 0 when it is about the package as received."""


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


def relays_note(count: int) -> str:
    return (
        f"verified without the last {count_of(count, 'TraceHeader')}, appended after "
        "signing (relays)"
    )


def relays_not_found_note(tried: int) -> str:
    return (
        "the digest does not match without the last TraceHeaders (relays') either: "
        f"{count_of(tried, 'candidate')} tried"
    )


def count_of(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


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
    digest: DigestInput | None = None
    """Set once the Reference digest can be computed: what a retry without relays'
    TraceHeaders needs (`dsig_relays`)."""
    set_aside: int = 0
    """How many relays' TraceHeaders the document being checked lacks."""

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
            trace_headers_set_aside=self.set_aside,
        )
