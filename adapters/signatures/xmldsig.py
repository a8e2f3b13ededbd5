"""The enveloped XML-DSig over a whole edXML package: its cryptographic check, and signing.

SPEC §2.1 (signature) and §3.4. No trust decision is taken here: chain, CA, validity period,
revocation and key usage belong to the trust module, which receives the certificates found
in KeyInfo/X509Data (the signer first).

`check_signature` refuses, before any cryptography, every shape that lets a signature be
valid over something other than the package a recipient reads (signature wrapping): more than
one Signature, a Signature outside edXML/edXMLEnvelope/edXMLHeader, other than exactly one
Reference, a Reference to anything but the document root, a transform or canonicalization
that selects or rewrites content (XPath, XSLT, …, or any with parameters), KeyInfo that points
elsewhere, Object/Manifest; and HMAC or MD5 methods (`dsig_algorithms`). Only then does xmlsec
verify, with the signer certificate's key set on the context (KeyInfo is never resolved) and
only the accepted transforms enabled. When xmlsec refuses, the reference digest is recomputed
here to tell a document altered after signing from a SignatureValue that does not match
(altered SignedInfo or SignatureValue, or a certificate that is not the signer's).

A signature the node cannot check — a non-standard algorithm or transform URI (the VPCP kit
writes `http://www.w3.org/TR/xml-exc-c14n#`), no usable certificate — is *unverifiable*, not
*invalid* (SPEC §3.4). Whatever can still be checked is: the document digest when the
transforms are known (an altered document stays invalid), the SignatureValue over SignedInfo
when the certificate and methods are (an edited URI stays invalid, `signed_info`). So only a
signature that nobody could check is unverifiable, and the wrapping checks have run first.

A Signature written without its namespace declaration sits in the QCVN default namespace (seen
in real traffic). What its signer canonicalized was necessarily the XML-DSig form, so it is
verified as that form: the subtree is rebuilt in the XML-DSig namespace, declared as the
default namespace on Signature (the form of the XML-DSig-namespace samples), and a note says so.
Which form its signer canonicalized SignedInfo in cannot be proven, though: a SignatureValue
that does not match in that form is unverifiable (`SIGNATURE_QCVN_NAMESPACE`), while a digest
mismatch — the document altered, whatever the Signature's namespace — stays invalid.

Relays append TraceHeaders after the sender signed (SPEC §2.1, §3.5). A package whose digest
does not match as received is checked again without the last TraceHeaders (`dsig_relays`
finds how many). That check is made from the start on the reduced document, wrapping checks
included, and its verdict says how many were set aside.

The modules: `dsig_tree` (reading), `dsig_wrapping` (the shape checks), `dsig_transforms` (what
xmlsec runs), `dsig_algorithms` (which URIs are refused or unknown), `dsig_digest` (diagnosis
and partial checks), `signed_info` (the SignatureValue alone), `dsig_relays` (the relays'
TraceHeaders), `dsig_verdict` (the answer and its codes), `signing` (writing a signature).
This one runs the verification in that order.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapters.signatures.dsig_algorithms import unknown_uri
from adapters.signatures.dsig_digest import (
    SignatureParts,
    check_what_can_be,
    diagnose,
    digest_input,
)
from adapters.signatures.dsig_relays import find_set_aside
from adapters.signatures.dsig_transforms import (
    CANONICALIZATIONS,
    DIGESTS,
    SHA1_METHODS,
    SIGNATURE_METHODS,
)
from adapters.signatures.dsig_tree import (
    algorithm_of,
    check_children,
    count_word,
    dsig_children,
    has_value,
    namespace_of,
    only_child,
    parse_document,
    short,
    signature_elements,
)
from adapters.signatures.dsig_verdict import (
    DIGEST_MATCHES_NOTE,
    DIGEST_MISMATCH,
    MALFORMED,
    MULTIPLE,
    NO_CERTIFICATE,
    QCVN_NAMESPACE,
    QCVN_NOTE,
    SHA1_NOTE,
    SKELETON_REASON,
    UNSUPPORTED_ALGORITHM,
    VALUE_MATCHES_NOTE,
    VALUE_MISMATCH,
    WRAPPING,
    Findings,
    Refused,
    SignatureCheck,
    Unverifiable,
    relays_not_found_note,
    relays_note,
)
from adapters.signatures.dsig_wrapping import (
    as_xmldsig,
    check_key_info,
    check_methods,
    check_objects,
    check_placement,
    check_transforms,
    check_uri,
)
from adapters.signatures.signing import sign_package
from gateway.edxml.namespaces import QCVN_NS

# The verdict's names, and two internals the tests reach, stay importable from here.
_SIGNATURE_METHODS = SIGNATURE_METHODS
_as_xmldsig = as_xmldsig
__all__ = [
    "DIGEST_MATCHES_NOTE",
    "QCVN_NOTE",
    "SHA1_NOTE",
    "SKELETON_REASON",
    "VALUE_MATCHES_NOTE",
    "SignatureCheck",
    "_SIGNATURE_METHODS",
    "_as_xmldsig",
    "check_signature",
    "sign_package",
]


_C = xmlsec.constants


def check_signature(document: bytes) -> SignatureCheck:
    """Check the enveloped signature of a package: valid, invalid (reason, code), unverifiable
    (reason, code) or absent.

    When the document as received fails only on its digest, the check is made again over it
    without the TraceHeaders relays appended after signing (`dsig_relays`); the verdict then
    says how many were set aside (`trace_headers_set_aside`).

    Never raises on hostile or broken input: anything unexpected is an invalid signature."""
    found = Findings()
    received = _verdict(lambda: _check(parse_document(document), found), found)
    if received.code != DIGEST_MISMATCH or found.digest is None:
        return received
    try:
        set_aside, tried = find_set_aside(document, found.digest)
    except Exception:  # only a search: the verdict on the package as received stands
        return received
    if set_aside is None:
        if not tried:
            return received
        return replace(received, notes=(*received.notes, relays_not_found_note(tried)))
    again = Findings(set_aside=set_aside.count, notes=[relays_note(set_aside.count)])

    def reduced() -> SignatureCheck:
        root = parse_document(document)
        set_aside.apply(root)
        return _check(root, again)

    verdict = _verdict(reduced, again)
    # The digest matched without the relays' TraceHeaders: what is left to say is whether the
    # SignatureValue holds. Anything else would be a disagreement with the search, and the
    # verdict on the package as received stands.
    if verdict.outcome in ("valid", "unverifiable") or verdict.code == VALUE_MISMATCH:
        return verdict
    return received


def _verdict(check: Callable[[], SignatureCheck], found: Findings) -> SignatureCheck:
    try:
        return check()
    except Unverifiable as gap:
        return found.result("unverifiable", gap.reason, gap.code)
    except Refused as refusal:
        return found.result("invalid", refusal.reason, refusal.code)
    except Exception as exc:  # fail closed: untrusted bytes must not crash the pipeline
        return found.result(
            "invalid",
            f"the signature could not be processed: {type(exc).__name__}: {short(str(exc))}",
            MALFORMED,
        )


def _check(root: Any, found: Findings) -> SignatureCheck:
    signatures = signature_elements(root)
    if not signatures:
        return found.result("absent")
    found.namespace = "qcvn" if namespace_of(signatures[0]) == QCVN_NS else "xmldsig"
    if not any(has_value(signature) for signature in signatures):
        return found.result("absent", SKELETON_REASON)
    if len(signatures) > 1:
        raise Refused(MULTIPLE, f"{count_word(len(signatures))} Signature elements")
    signature = signatures[0]
    check_placement(root, signature)
    if found.namespace == "qcvn":
        signature = as_xmldsig(signature)
        found.notes.append(QCVN_NOTE)

    check_children(signature, "Signature", {"SignedInfo", "SignatureValue", "KeyInfo", "Object"})
    signed_info = only_child(signature, "SignedInfo", "Signature")
    check_children(
        signed_info, "SignedInfo", {"CanonicalizationMethod", "SignatureMethod", "Reference"}
    )
    references = dsig_children(signed_info, "Reference")
    found.canonicalization = algorithm_of(signed_info, "CanonicalizationMethod")
    found.signature_method = algorithm_of(signed_info, "SignatureMethod")
    found.digest_method = algorithm_of(references[0], "DigestMethod") if references else None
    if found.signature_method in SHA1_METHODS or found.digest_method in SHA1_METHODS:
        found.weak = True
        found.notes.append(SHA1_NOTE)
    if not references:
        raise Refused(MALFORMED, "SignedInfo has no Reference")
    if len(references) > 1:
        raise Refused(
            WRAPPING,
            f"SignedInfo has {len(references)} Reference elements: only "
            "one, over the whole document, is accepted",
        )
    reference = references[0]
    uri = reference.get("URI")
    id_attribute = check_uri(root, uri)
    transforms, transform_gaps = check_transforms(reference)
    check_methods(signed_info, reference)
    check_objects(signature)
    certificate_texts = check_key_info(signature)
    # Nothing left can make the signature cover something else than the document: what
    # follows only decides whether it holds, or cannot be checked here.

    gaps: list[Unverifiable] = []
    c14n = _known(found.canonicalization, CANONICALIZATIONS, "canonicalization method", gaps)
    method = _known(found.signature_method, SIGNATURE_METHODS, "signature method", gaps)
    digest = _known(found.digest_method, DIGESTS, "digest method", gaps)
    gaps += transform_gaps
    digest_value = _base64(only_child(reference, "DigestValue", "Reference"), "DigestValue")
    signature_value = _base64(
        only_child(signature, "SignatureValue", "Signature"), "SignatureValue"
    )
    if not signature_value:
        raise Refused(MALFORMED, "SignatureValue is empty")
    if digest is not None and not transform_gaps:
        found.digest = digest_input(uri or "", transforms, digest[1], digest_value)
    signer = _signer(certificate_texts, found, gaps)
    if signer is not None and method is not None:
        _check_key_type(signer, method[1], method[2])
    if gaps:
        check_what_can_be(
            SignatureParts(
                root, signature, signed_info, uri or "", transforms, digest_value, signature_value
            ),
            found,
            c14n,
            method,
            None if transform_gaps else digest,
            signer,
        )
        raise Unverifiable(gaps[0].code, "; ".join(gap.reason for gap in gaps))
    assert signer is not None and digest is not None
    try:
        _xmlsec_verify(root, signature, signer, id_attribute)
    except xmlsec.Error as exc:
        refusal, digest_matches = diagnose(
            root, signature, uri or "", transforms, digest[1], digest_value, exc
        )
        if found.namespace == "qcvn" and digest_matches:
            found.notes.append(DIGEST_MATCHES_NOTE)
            raise Unverifiable(QCVN_NAMESPACE, _QCVN_UNPROVEN) from exc
        raise refusal from exc
    return found.result("valid")


_QCVN_UNPROVEN = (
    "the Signature is in the QCVN namespace (no XML-DSig declaration) and its "
    "SignatureValue does not verify in the XML-DSig form: which form its signer "
    "signed cannot be established"
)


def _known(
    algorithm: str | None, table: dict[str, Any], what: str, gaps: list[Unverifiable]
) -> Any:
    """The table entry for `algorithm`; None, with the gap noted, when the node cannot run
    it (forbidden ones were refused by `check_methods` already)."""
    if algorithm in table:
        return table[algorithm]
    gaps.append(Unverifiable(UNSUPPORTED_ALGORITHM, short(unknown_uri(what, algorithm), 300)))
    return None


def _signer(texts: list[str], found: Findings, gaps: list[Unverifiable]) -> x509.Certificate | None:
    """The signer's certificate from KeyInfo; None, with the gap noted, when there is none
    or it cannot be read (nobody could check the SignatureValue then)."""
    if not texts:
        gaps.append(Unverifiable(NO_CERTIFICATE, "no certificate in KeyInfo/X509Data"))
        return None
    try:
        certificates = _certificates(texts)
    except Refused as unreadable:
        gaps.append(Unverifiable(NO_CERTIFICATE, unreadable.reason))
        return None
    signer = _choose_signer(certificates, found)
    found.signer = signer
    found.certificates = (signer, *[c for c in certificates if c is not signer])
    return signer


def _base64(element: Any, name: str) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except binascii.Error as exc:
        raise Refused(MALFORMED, f"{name} is not base64") from exc


def _certificates(texts: list[str]) -> list[x509.Certificate]:
    certificates = []
    for index, text in enumerate(texts, 1):
        try:
            der = base64.b64decode("".join(text.split()), validate=True)
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise Refused(
                MALFORMED,
                f"KeyInfo/X509Data/X509Certificate[{index}] is not a "
                "certificate (truncated or corrupt)",
            ) from exc
    return certificates


def _choose_signer(certificates: list[x509.Certificate], found: Findings) -> x509.Certificate:
    """The leaf: the certificate that issued none of the others; else the first."""
    leaves = [
        c
        for c in certificates
        if not any(other is not c and other.issuer == c.subject for other in certificates)
    ]
    if len(leaves) > 1:
        found.notes.append(
            f"{len(leaves)} end-entity certificates in KeyInfo: the first one "
            "is taken as the signer's"
        )
    return leaves[0] if leaves else certificates[0]


def _check_key_type(signer: x509.Certificate, key_type: str, method_name: str) -> None:
    public_key = signer.public_key()
    actual = (
        "RSA"
        if isinstance(public_key, rsa.RSAPublicKey)
        else "EC"
        if isinstance(public_key, ec.EllipticCurvePublicKey)
        else type(public_key).__name__
    )
    if actual != key_type:
        raise Refused(
            VALUE_MISMATCH,
            f"SignatureMethod {method_name} needs an {key_type} key; "
            f"the certificate's key is {actual}",
        )


def _xmlsec_verify(
    root: Any, signature: Any, signer: x509.Certificate, id_attribute: str | None
) -> None:
    """xmlsec's verdict (raises xmlsec.Error), with the signer certificate's key preset (so
    KeyInfo is never resolved) and only the accepted algorithms enabled."""
    context = xmlsec.SignatureContext()
    try:
        context.key = xmlsec.Key.from_memory(
            signer.public_bytes(serialization.Encoding.PEM), _C.KeyDataFormatCertPem
        )
    except xmlsec.Error as exc:
        raise Unverifiable(
            UNSUPPORTED_ALGORITHM, f"the signer certificate's key cannot be used: {exc}"
        ) from exc
    for transform in (
        _C.TransformEnveloped,
        *(c.transform for c in CANONICALIZATIONS.values()),
        *(digest for digest, _name in DIGESTS.values()),
    ):
        context.enable_reference_transform(transform)
    for transform in (
        *(c.transform for c in CANONICALIZATIONS.values()),
        *(sign for sign, _type, _name in SIGNATURE_METHODS.values()),
    ):
        context.enable_signature_transform(transform)
    if id_attribute is not None:
        # Only the root's Id is registered: no other element can be designated.
        context.register_id(root, id_attribute)
    context.verify(signature)
