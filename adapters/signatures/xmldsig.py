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
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from adapters.signatures.dsig_algorithms import forbidden_method, selection_risk, unknown_uri
from adapters.signatures.signed_info import signed_info_octets, value_matches
from gateway.edxml.namespaces import DSIG_NS, QCVN_NS
from gateway.edxml.parser import PROLOG_BYTES, check_prolog, hardened_parser
from gateway.errors import PackageRejected

_C = xmlsec.constants

Outcome = Literal["valid", "invalid", "absent", "unverifiable"]
SigningAlgorithm = Literal["rsa-sha1", "rsa-sha256", "rsa-sha384", "rsa-sha512",
                           "ecdsa-sha256", "ecdsa-sha384"]
Canonicalization = Literal["c14n", "exc-c14n"]


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
QCVN_NOTE = ("Signature found in the QCVN namespace (its XML-DSig namespace declaration was "
             "dropped): verified as its XML-DSig form")
DIGEST_MATCHES_NOTE = "the document digest matches: the document was not altered after signing"
VALUE_MATCHES_NOTE = "the SignatureValue matches SignedInfo with the certificate's key"

ENVELOPED = _C.TransformEnveloped.href
_ID_ATTRIBUTES = ("Id", "ID", "id")


@dataclass(frozen=True, slots=True)
class _C14n:
    transform: Any  # xmlsec.constants.__Transform
    exclusive: bool

    @property
    def with_comments(self) -> bool:
        return "WithComments" in str(self.transform.href)


# C14N 1.1 is recomputed as 1.0: for the whole document minus the Signature subtree (no
# orphaned xml:* attributes) both give the same octets. "WithComments" changes nothing either:
# the node-set of URI="" or "#id" holds no comments (XML-DSig §4.4.3.3).
_CANONICALIZATIONS: dict[str, _C14n] = {
    t.href: _C14n(t, exclusive)
    for t, exclusive in ((_C.TransformInclC14N, False), (_C.TransformInclC14NWithComments, False),
                         (_C.TransformInclC14N11, False),
                         (_C.TransformInclC14N11WithComments, False),
                         (_C.TransformExclC14N, True), (_C.TransformExclC14NWithComments, True))}

_DIGESTS: dict[str, tuple[Any, str]] = {
    _C.TransformSha1.href: (_C.TransformSha1, "sha1"),
    _C.TransformSha256.href: (_C.TransformSha256, "sha256"),
    _C.TransformSha384.href: (_C.TransformSha384, "sha384"),
    _C.TransformSha512.href: (_C.TransformSha512, "sha512"),
}

_RSA_METHODS = {"rsa-sha1": (_C.TransformRsaSha1, _C.TransformSha1),
                "rsa-sha256": (_C.TransformRsaSha256, _C.TransformSha256),
                "rsa-sha384": (_C.TransformRsaSha384, _C.TransformSha384),
                "rsa-sha512": (_C.TransformRsaSha512, _C.TransformSha512)}
# ECDSA exists only when libxmlsec1 was built with it (the 1.3.17 wheels are).
_ECDSA_METHODS = {name: (getattr(_C, sign), getattr(_C, digest))
                  for name, sign, digest in (
                      ("ecdsa-sha256", "TransformEcdsaSha256", "TransformSha256"),
                      ("ecdsa-sha384", "TransformEcdsaSha384", "TransformSha384"))
                  if hasattr(_C, sign)}
_SIGNING: dict[str, tuple[Any, Any]] = {**_RSA_METHODS, **_ECDSA_METHODS}
# href -> (transform, key type, short name)
_SIGNATURE_METHODS: dict[str, tuple[Any, str, str]] = {
    sign.href: (sign, "EC" if name.startswith("ecdsa") else "RSA", name)
    for name, (sign, _digest) in _SIGNING.items()}
_SHA1 = {_C.TransformSha1.href, _C.TransformRsaSha1.href}

_SIGNING_C14N = {"c14n": _C.TransformInclC14N, "exc-c14n": _C.TransformExclC14N}


class _Refused(Exception):
    """The signature is invalid: proven false, or shaped so that it could be valid over
    something else than the document."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Unverifiable(_Refused):
    """The signature cannot be checked by this node; nothing found proves it false."""


@dataclass
class _Found:
    """What has been read so far: reported with any verdict, even an early refusal."""

    namespace: Literal["xmldsig", "qcvn"] | None = None
    signature_method: str | None = None
    digest_method: str | None = None
    canonicalization: str | None = None
    weak: bool = False
    certificates: tuple[x509.Certificate, ...] = ()
    signer: x509.Certificate | None = None
    notes: list[str] = field(default_factory=list)

    def result(self, outcome: Outcome, reason: str | None = None,
               code: str | None = None) -> SignatureCheck:
        return SignatureCheck(outcome=outcome, reason=reason, code=code,
                              signature_method=self.signature_method,
                              digest_method=self.digest_method,
                              canonicalization=self.canonicalization,
                              weak_algorithm=self.weak, certificates=self.certificates,
                              signer=self.signer, namespace=self.namespace,
                              notes=tuple(self.notes))


def check_signature(document: bytes) -> SignatureCheck:
    """Check the enveloped signature of a package: valid, invalid (reason, code), unverifiable
    (reason, code) or absent.

    Never raises on hostile or broken input: anything unexpected is an invalid signature."""
    found = _Found()
    try:
        return _check(document, found)
    except _Unverifiable as gap:
        return found.result("unverifiable", gap.reason, gap.code)
    except _Refused as refusal:
        return found.result("invalid", refusal.reason, refusal.code)
    except Exception as exc:  # fail closed: untrusted bytes must not crash the pipeline
        return found.result("invalid", f"the signature could not be processed: "
                                       f"{type(exc).__name__}: {_short(str(exc))}", MALFORMED)


def _check(document: bytes, found: _Found) -> SignatureCheck:
    root = _parse(document)
    signatures = _signatures(root)
    if not signatures:
        return found.result("absent")
    found.namespace = "qcvn" if _namespace(signatures[0]) == QCVN_NS else "xmldsig"
    if not any(_has_value(signature) for signature in signatures):
        return found.result("absent", SKELETON_REASON)
    if len(signatures) > 1:
        raise _Refused(MULTIPLE, f"{_count(len(signatures))} Signature elements")
    signature = signatures[0]
    _check_placement(root, signature)
    if found.namespace == "qcvn":
        signature = _as_xmldsig(signature)
        found.notes.append(QCVN_NOTE)

    _check_children(signature, "Signature",
                    {"SignedInfo", "SignatureValue", "KeyInfo", "Object"})
    signed_info = _one(signature, "SignedInfo", "Signature")
    _check_children(signed_info, "SignedInfo",
                    {"CanonicalizationMethod", "SignatureMethod", "Reference"})
    references = _dsig_children(signed_info, "Reference")
    found.canonicalization = _algorithm(signed_info, "CanonicalizationMethod")
    found.signature_method = _algorithm(signed_info, "SignatureMethod")
    found.digest_method = _algorithm(references[0], "DigestMethod") if references else None
    if found.signature_method in _SHA1 or found.digest_method in _SHA1:
        found.weak = True
        found.notes.append(SHA1_NOTE)
    if not references:
        raise _Refused(MALFORMED, "SignedInfo has no Reference")
    if len(references) > 1:
        raise _Refused(WRAPPING, f"SignedInfo has {len(references)} Reference elements: only "
                                 "one, over the whole document, is accepted")
    reference = references[0]
    uri = reference.get("URI")
    id_attribute = _check_uri(root, uri)
    transforms, transform_gaps = _check_transforms(reference)
    _check_methods(signed_info, reference)
    _check_objects(signature)
    certificate_texts = _check_key_info(signature)
    # Nothing left can make the signature cover something else than the document: what
    # follows only decides whether it holds, or cannot be checked here.

    gaps: list[_Unverifiable] = []
    c14n = _known(found.canonicalization, _CANONICALIZATIONS, "canonicalization method", gaps)
    method = _known(found.signature_method, _SIGNATURE_METHODS, "signature method", gaps)
    digest = _known(found.digest_method, _DIGESTS, "digest method", gaps)
    gaps += transform_gaps
    digest_value = _base64(_one(reference, "DigestValue", "Reference"), "DigestValue")
    signature_value = _base64(_one(signature, "SignatureValue", "Signature"), "SignatureValue")
    if not signature_value:
        raise _Refused(MALFORMED, "SignatureValue is empty")
    signer = _signer(certificate_texts, found, gaps)
    if signer is not None and method is not None:
        _check_key_type(signer, method[1], method[2])
    if gaps:
        _check_what_can_be(_Parts(root, signature, signed_info, uri or "", transforms,
                                  digest_value, signature_value), found, c14n, method,
                           None if transform_gaps else digest, signer)
        raise _Unverifiable(gaps[0].code, "; ".join(gap.reason for gap in gaps))
    assert signer is not None and digest is not None
    try:
        _xmlsec_verify(root, signature, signer, id_attribute)
    except xmlsec.Error as exc:
        refusal, digest_matches = _diagnose(root, signature, uri or "", transforms, digest[1],
                                            digest_value, exc)
        if found.namespace == "qcvn" and digest_matches:
            found.notes.append(DIGEST_MATCHES_NOTE)
            raise _Unverifiable(QCVN_NAMESPACE, _QCVN_UNPROVEN) from exc
        raise refusal from exc
    return found.result("valid")


_QCVN_UNPROVEN = ("the Signature is in the QCVN namespace (no XML-DSig declaration) and its "
                  "SignatureValue does not verify in the XML-DSig form: which form its signer "
                  "signed cannot be established")


@dataclass(frozen=True, slots=True)
class _Parts:
    """What the partial checks of an unverifiable signature work on."""

    root: Any
    signature: Any
    signed_info: Any
    uri: str
    transforms: list[Any]
    digest_value: bytes
    signature_value: bytes


def _check_what_can_be(parts: _Parts, found: _Found, c14n: _C14n | None,
                       method: tuple[Any, str, str] | None, digest: tuple[Any, str] | None,
                       signer: x509.Certificate | None) -> None:
    """For a signature that cannot be verified whole: the checks it still allows, each of
    which proves a forgery invalid (raises `_Refused`) or adds a note. The SignatureValue
    first: the digest recomputation takes the Signature out of the tree."""
    if c14n is not None and method is not None and signer is not None:
        octets = signed_info_octets(parts.signed_info, c14n.exclusive, c14n.with_comments,
                                    _inclusive_prefixes(parts.signed_info))
        if value_matches(octets, parts.signature_value, method[0], signer):
            found.notes.append(VALUE_MATCHES_NOTE)
        elif found.namespace != "qcvn":
            raise _Refused(VALUE_MISMATCH, "SignatureValue does not verify with the "
                                           "certificate's key (SignedInfo altered, or another "
                                           "signer's certificate)")
        else:  # not proof: the QCVN-form signer may have signed another form (module doc)
            found.notes.append("the SignatureValue does not match SignedInfo in its XML-DSig "
                               "form")
    if digest is not None:
        computed = _reference_digest(parts.root, parts.signature, parts.uri, parts.transforms,
                                     digest[1])
        if computed != parts.digest_value:
            raise _Refused(DIGEST_MISMATCH, "document altered after signing: digest mismatch")
        found.notes.append(DIGEST_MATCHES_NOTE)


def _inclusive_prefixes(signed_info: Any) -> list[str]:
    return [prefix for method in _dsig_children(signed_info, "CanonicalizationMethod")
            for element in method if isinstance(element.tag, str)
            and _local(element) == "InclusiveNamespaces"
            for prefix in (element.get("PrefixList") or "").split()]


def _known(algorithm: str | None, table: dict[str, Any], what: str,
           gaps: list[_Unverifiable]) -> Any:
    """The table entry for `algorithm`; None, with the gap noted, when the node cannot run
    it (forbidden ones were refused by `_check_methods` already)."""
    if algorithm in table:
        return table[algorithm]
    gaps.append(_Unverifiable(UNSUPPORTED_ALGORITHM, _short(unknown_uri(what, algorithm),
                                                            300)))
    return None


def _signer(texts: list[str], found: _Found, gaps: list[_Unverifiable]
            ) -> x509.Certificate | None:
    """The signer's certificate from KeyInfo; None, with the gap noted, when there is none
    or it cannot be read (nobody could check the SignatureValue then)."""
    if not texts:
        gaps.append(_Unverifiable(NO_CERTIFICATE, "no certificate in KeyInfo/X509Data"))
        return None
    try:
        certificates = _certificates(texts)
    except _Refused as unreadable:
        gaps.append(_Unverifiable(NO_CERTIFICATE, unreadable.reason))
        return None
    signer = _choose_signer(certificates, found)
    found.signer = signer
    found.certificates = (signer, *[c for c in certificates if c is not signer])
    return signer


def _xmlsec_verify(root: Any, signature: Any, signer: x509.Certificate,
                   id_attribute: str | None) -> None:
    """xmlsec's verdict (raises xmlsec.Error), with the signer certificate's key preset (so
    KeyInfo is never resolved) and only the accepted algorithms enabled."""
    context = xmlsec.SignatureContext()
    try:
        context.key = xmlsec.Key.from_memory(signer.public_bytes(serialization.Encoding.PEM),
                                             _C.KeyDataFormatCertPem)
    except xmlsec.Error as exc:
        raise _Unverifiable(UNSUPPORTED_ALGORITHM,
                            f"the signer certificate's key cannot be used: {exc}") from exc
    for transform in (_C.TransformEnveloped,
                      *(c.transform for c in _CANONICALIZATIONS.values()),
                      *(digest for digest, _name in _DIGESTS.values())):
        context.enable_reference_transform(transform)
    for transform in (*(c.transform for c in _CANONICALIZATIONS.values()),
                      *(sign for sign, _type, _name in _SIGNATURE_METHODS.values())):
        context.enable_signature_transform(transform)
    if id_attribute is not None:
        # Only the root's Id is registered: no other element can be designated.
        context.register_id(root, id_attribute)
    context.verify(signature)


# --- reading ---------------------------------------------------------------------------------

def _parse(document: bytes) -> Any:
    """The package, parsed after the prolog check (UTF-8, no DOCTYPE); any parser error other
    than an undeclared prefix refuses it."""
    try:
        check_prolog(document[:PROLOG_BYTES])
    except PackageRejected as exc:
        raise _Refused(MALFORMED, str(exc)) from exc
    # huge_tree: the signature covers the attachments, one text node of up to ~100 MiB each;
    # recover mode only tolerates an undeclared attribute prefix (`xlink:href`).
    parser = hardened_parser(recover=True, huge_tree=True)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as exc:
        raise _Refused(MALFORMED, f"the package is not well-formed XML: {exc}") from exc
    errors = [e for e in parser.error_log
              if e.level >= etree.ErrorLevels.ERROR and e.domain != etree.ErrorDomains.NAMESPACE]
    if root is None or errors:
        detail = f"line {errors[0].line}: {errors[0].message}" if errors else "no root element"
        raise _Refused(MALFORMED, f"the package is not well-formed XML: {_short(detail)}")
    if root.getroottree().docinfo.doctype:
        raise _Refused(MALFORMED, "a document type declaration is not accepted")
    return root


def _signatures(root: Any) -> list[Any]:
    return list(root.iter(f"{{{DSIG_NS}}}Signature", f"{{{QCVN_NS}}}Signature"))


def _namespace(element: Any) -> str | None:
    return etree.QName(element).namespace


def _local(element: Any) -> str:
    return etree.QName(element).localname


def _has_value(signature: Any) -> bool:
    """Same rule as the edXML reader (`parser._has_signature_value`): a SignatureValue with
    text anywhere in the Signature; the skeleton real packages carry has none."""
    return any(isinstance(element.tag, str) and _local(element) == "SignatureValue"
               and (element.text or "").strip() for element in signature.iter())


def _elements(parent: Any) -> list[Any]:
    return [child for child in parent if isinstance(child.tag, str)]


def _dsig_children(parent: Any, name: str) -> list[Any]:
    return [child for child in parent if child.tag == f"{{{DSIG_NS}}}{name}"]


def _one(parent: Any, name: str, where: str) -> Any:
    found = _dsig_children(parent, name)
    if len(found) != 1:
        raise _Refused(MALFORMED, f"{where} has {_count(len(found), 'no')} {name}"
                                  + ("" if not found else " elements"))
    return found[0]


def _algorithm(parent: Any, name: str) -> str | None:
    found = _dsig_children(parent, name)
    return str(found[0].get("Algorithm")) if found and found[0].get("Algorithm") else None


def _check_children(parent: Any, where: str, allowed: set[str]) -> None:
    for child in _elements(parent):
        if _namespace(child) != DSIG_NS or _local(child) not in allowed:
            raise _Refused(MALFORMED, f"unexpected element {_short(_local(child))} in {where}")


def _path(element: Any) -> str:
    names = []
    while element is not None:
        names.append(_local(element))
        element = element.getparent()
    return "/".join(reversed(names))


def _is(element: Any, name: str) -> bool:
    return element is not None and element.tag == f"{{{QCVN_NS}}}{name}"


def _check_placement(root: Any, signature: Any) -> None:
    header = signature.getparent()
    envelope = header.getparent() if header is not None else None
    if not (envelope is not None and _is(header, "edXMLHeader")
            and _is(envelope, "edXMLEnvelope") and envelope.getparent() is root
            and _is(root, "edXML")):
        raise _Refused(MISPLACED, f"the Signature is at {_short(_path(signature))}, not a "
                                  "child of edXML/edXMLEnvelope/edXMLHeader")


def _as_xmldsig(signature: Any) -> Any:
    """The Signature rebuilt in the XML-DSig namespace (QCVN-namespace elements renamed), in
    place of the QCVN one; the caller's bytes are untouched (this tree is our own parse)."""
    replacement = etree.Element(f"{{{DSIG_NS}}}Signature", dict(signature.attrib),
                                nsmap={None: DSIG_NS})
    _copy_renamed(signature, replacement)
    replacement.tail = signature.tail
    signature.getparent().replace(signature, replacement)
    return replacement


def _copy_renamed(source: Any, target: Any) -> None:
    target.text = source.text
    for child in source:
        if isinstance(child.tag, str) and _namespace(child) == QCVN_NS:
            copied = etree.SubElement(target, f"{{{DSIG_NS}}}{_local(child)}",
                                      dict(child.attrib))
            _copy_renamed(child, copied)
        else:  # comments, processing instructions, elements of other namespaces
            copied = copy.deepcopy(child)
            target.append(copied)
        copied.tail = child.tail


def _check_uri(root: Any, uri: str | None) -> str | None:
    """"" (the whole document) or "#<Id of the root>"; returns the root's Id attribute name
    for the latter."""
    if uri == "":
        return None
    if uri is None:
        raise _Refused(WRAPPING, "the Reference has no URI: it must designate the whole "
                                 "document (URI=\"\")")
    attribute = next((name for name in _ID_ATTRIBUTES
                      if uri.startswith("#") and root.get(name) == uri[1:]), None)
    if attribute is None:
        raise _Refused(WRAPPING, f"Reference URI '{_short(uri)}' does not designate the "
                                 "document root")
    holders = [element for element in root.iter() if isinstance(element.tag, str)
               and uri[1:] in (element.get(name) for name in
                               (*_ID_ATTRIBUTES, "{http://www.w3.org/XML/1998/namespace}id"))]
    if len(holders) > 1:
        raise _Refused(WRAPPING, f"the document root's Id '{_short(uri[1:])}' is not unique "
                                 f"({len(holders)} elements carry it)")
    return attribute


def _check_transforms(reference: Any) -> tuple[list[Any], list[_Unverifiable]]:
    """enveloped-signature, then at most one canonicalization; returns the Transform elements
    and, for each transform the node cannot run but that cannot select content either (a
    non-standard URI without parameters), why the digest cannot be checked."""
    _check_children(reference, "Reference", {"Transforms", "DigestMethod", "DigestValue"})
    containers = _dsig_children(reference, "Transforms")
    if len(containers) > 1:
        raise _Refused(MALFORMED, "Reference has several Transforms elements")
    transforms = _elements(containers[0]) if containers else []
    algorithms = []
    gaps: list[_Unverifiable] = []
    for transform in transforms:
        algorithm = transform.get("Algorithm") or ""
        if transform.tag != f"{{{DSIG_NS}}}Transform":
            raise _Refused(MALFORMED, f"unexpected element {_short(_local(transform))} in "
                                      "Transforms")
        risk = selection_risk(algorithm, transform)
        if risk is not None:
            raise _Refused(WRAPPING, _short(risk, 300))
        if algorithm != ENVELOPED and algorithm not in _CANONICALIZATIONS:
            gaps.append(_Unverifiable(UNSUPPORTED_TRANSFORM,
                                      _short(unknown_uri("transform", algorithm), 300)))
        algorithms.append(algorithm)
    if ENVELOPED not in algorithms and not gaps:  # (an unknown one may be a misspelt one)
        raise _Refused(MALFORMED, "the Reference has no enveloped-signature transform")
    if (ENVELOPED in algorithms and algorithms[0] != ENVELOPED) or len(algorithms) > 2:
        raise _Refused(MALFORMED, "unsupported transform chain " + " → ".join(algorithms)
                       + ": expected enveloped-signature, then at most one canonicalization")
    return transforms, gaps


def _check_methods(signed_info: Any, reference: Any) -> None:
    """A CanonicalizationMethod that could rewrite SignedInfo (XSLT, parameters) is wrapping;
    HMAC and MD5 methods are never acceptable (`dsig_algorithms`)."""
    for method in _dsig_children(signed_info, "CanonicalizationMethod"):
        risk = selection_risk(method.get("Algorithm") or "", method)
        if risk is not None:
            raise _Refused(WRAPPING, _short(f"CanonicalizationMethod: {risk}", 300))
    for parent, name in ((signed_info, "SignatureMethod"), (reference, "DigestMethod")):
        for method in _dsig_children(parent, name):
            reason = forbidden_method(method.get("Algorithm"), method)
            if reason is not None:
                raise _Refused(FORBIDDEN_ALGORITHM, _short(f"{name}: {reason}", 300))


def _check_objects(signature: Any) -> None:
    for obj in _dsig_children(signature, "Object"):
        if any(isinstance(e.tag, str) and _local(e) == "Manifest" for e in obj.iter()):
            raise _Refused(WRAPPING, "Object holds a Manifest: references outside SignedInfo "
                                     "are not accepted")


def _check_key_info(signature: Any) -> list[str]:
    """KeyInfo may only carry X509Data, KeyValue, KeyName; returns the X509Certificate texts.
    (The key is taken from the certificate: KeyInfo is never resolved by xmlsec.)"""
    key_infos = _dsig_children(signature, "KeyInfo")
    if len(key_infos) > 1:
        raise _Refused(MALFORMED, "Signature has several KeyInfo elements")
    texts: list[str] = []
    for child in _elements(key_infos[0]) if key_infos else []:
        name = _local(child) if _namespace(child) == DSIG_NS else None
        if name == "RetrievalMethod":
            raise _Refused(KEYINFO, "KeyInfo/RetrievalMethod points outside the signature")
        if name not in ("X509Data", "KeyValue", "KeyName"):
            raise _Refused(KEYINFO, f"KeyInfo/{_short(_local(child))} is not accepted (only "
                                    "X509Data, KeyValue, KeyName)")
        if name == "X509Data":
            texts += [item.text.strip() for item in _dsig_children(child, "X509Certificate")
                      if item.text and item.text.strip()]
    return texts


def _base64(element: Any, name: str) -> bytes:
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except binascii.Error as exc:
        raise _Refused(MALFORMED, f"{name} is not base64") from exc


def _certificates(texts: list[str]) -> list[x509.Certificate]:
    certificates = []
    for index, text in enumerate(texts, 1):
        try:
            der = base64.b64decode("".join(text.split()), validate=True)
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise _Refused(MALFORMED, f"KeyInfo/X509Data/X509Certificate[{index}] is not a "
                                      "certificate (truncated or corrupt)") from exc
    return certificates


def _choose_signer(certificates: list[x509.Certificate], found: _Found) -> x509.Certificate:
    """The leaf: the certificate that issued none of the others; else the first."""
    leaves = [c for c in certificates
              if not any(other is not c and other.issuer == c.subject for other in certificates)]
    if len(leaves) > 1:
        found.notes.append(f"{len(leaves)} end-entity certificates in KeyInfo: the first one "
                           "is taken as the signer's")
    return leaves[0] if leaves else certificates[0]


def _check_key_type(signer: x509.Certificate, key_type: str, method_name: str) -> None:
    public_key = signer.public_key()
    actual = ("RSA" if isinstance(public_key, rsa.RSAPublicKey) else
              "EC" if isinstance(public_key, ec.EllipticCurvePublicKey) else
              type(public_key).__name__)
    if actual != key_type:
        raise _Refused(VALUE_MISMATCH, f"SignatureMethod {method_name} needs an {key_type} key; "
                                       f"the certificate's key is {actual}")


# --- diagnosis -------------------------------------------------------------------------------

def _diagnose(root: Any, signature: Any, uri: str, transforms: list[Any], hash_name: str,
              digest_value: bytes, error: xmlsec.Error) -> tuple[_Refused, bool]:
    """xmlsec refused: was the document altered (digest), or the SignatureValue/SignedInfo or
    certificate wrong? Also says whether the digest was recomputed and matches."""
    try:
        digest = _reference_digest(root, signature, uri, transforms, hash_name)
    except Exception:  # the recomputation is only for the reason; xmlsec already decided
        return _Refused(VALUE_MISMATCH,
                        f"the signature does not verify ({_short(str(error))})"), False
    if digest != digest_value:
        return _Refused(DIGEST_MISMATCH, "document altered after signing: digest mismatch"), False
    return _Refused(VALUE_MISMATCH,
                    "SignatureValue does not verify with the certificate's key"), True


def _reference_digest(root: Any, signature: Any, uri: str, transforms: Sequence[Any],
                      hash_name: str) -> bytes:
    """The digest of the Reference: the document without its Signature (enveloped transform;
    the Signature is removed from `root`'s tree), canonicalized as the transforms say
    (inclusive C14N 1.0 when none is given), streamed into the hash."""
    _remove_keeping_tail(signature)
    method = _CANONICALIZATIONS[_C.TransformInclC14N.href]
    prefixes: list[str] = []
    for transform in transforms:
        algorithm = transform.get("Algorithm")
        if algorithm in _CANONICALIZATIONS:
            method = _CANONICALIZATIONS[algorithm]
            prefixes = [p for element in transform
                        if isinstance(element.tag, str) and _local(element) ==
                        "InclusiveNamespaces"
                        for p in (element.get("PrefixList") or "").split()]
    digest = hashlib.new(hash_name)
    options: dict[str, Any] = {"exclusive": method.exclusive, "with_comments": False,
                               "inclusive_ns_prefixes": prefixes or None}
    if uri == "":
        root.getroottree().write_c14n(_HashWriter(digest), **options)
    else:  # "#<root Id>": the root element, without the prolog's processing instructions
        digest.update(etree.tostring(root, method="c14n", **options))
    return digest.digest()


class _HashWriter:
    def __init__(self, digest: Any) -> None:
        self._digest = digest

    def write(self, data: bytes) -> None:
        self._digest.update(data)


def _remove_keeping_tail(element: Any) -> None:
    """Remove an element but not the text after it (lxml moves the tail with the element)."""
    parent = element.getparent()
    tail = element.tail or ""
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)


def _count(number: int, zero: str = "0") -> str:
    words = {0: zero, 1: "one", 2: "two", 3: "three", 4: "four"}
    return words.get(number, str(number))


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


# --- signing ---------------------------------------------------------------------------------

def sign_package(document: bytes, key_pem: bytes, cert_pem: bytes, *,
                 algorithm: SigningAlgorithm = "rsa-sha256",
                 canonicalization: Canonicalization = "exc-c14n",
                 extra_certs: Sequence[bytes] = ()) -> bytes:
    """The package with an enveloped XML-DSig (URI="", enveloped-signature + the chosen
    canonicalization) as the last child of edXMLHeader, KeyInfo/X509Data holding the signer
    certificate then `extra_certs` (PEM or DER). An empty signature skeleton is replaced;
    a package that already carries a signature is refused (ValueError)."""
    if algorithm not in _SIGNING:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}"
                         + (" (this xmlsec build has no ECDSA)"
                            if algorithm.startswith("ecdsa") else ""))
    if canonicalization not in _SIGNING_C14N:
        raise ValueError(f"unsupported canonicalization {canonicalization!r}")
    sign_transform, digest_transform = _SIGNING[algorithm]
    certificate = x509.load_pem_x509_certificate(cert_pem)
    chain = [x509.load_pem_x509_certificate(c) if c.lstrip().startswith(b"-----BEGIN")
             else x509.load_der_x509_certificate(c) for c in extra_certs]
    private_key = serialization.load_pem_private_key(key_pem, password=None)
    if private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            certificate.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise ValueError("the private key does not belong to the certificate")
    _check_signing_key(certificate, algorithm)

    try:
        root = _parse(document)
    except _Refused as refusal:
        raise ValueError(refusal.reason) from None
    envelope = next((c for c in root if _is(c, "edXMLEnvelope")), None) \
        if _is(root, "edXML") else None
    header = next((c for c in envelope if _is(c, "edXMLHeader")), None) \
        if envelope is not None else None
    if header is None:
        raise ValueError("not an edXML package: edXML/edXMLEnvelope/edXMLHeader is missing")
    existing = _signatures(root)
    if any(_has_value(signature) for signature in existing):
        raise ValueError("the package already carries a signature")
    for skeleton in existing:
        _remove_keeping_tail(skeleton)

    signature = xmlsec.template.create(root, _SIGNING_C14N[canonicalization], sign_transform)
    _append_indented(header, signature)
    reference = xmlsec.template.add_reference(signature, digest_transform, uri="")
    xmlsec.template.add_transform(reference, _C.TransformEnveloped)
    xmlsec.template.add_transform(reference, _SIGNING_C14N[canonicalization])
    context = xmlsec.SignatureContext()
    try:
        context.key = xmlsec.Key.from_memory(key_pem, _C.KeyDataFormatPem)
        context.sign(signature)
    except xmlsec.Error as exc:
        raise ValueError(f"xmlsec could not sign: {exc}") from exc
    # KeyInfo is outside the signed reference (enveloped): written after signing, so that
    # xmlsec never fills or reorders it.
    # (xmlsec.template.x509_data_add_certificate adds only one X509Certificate per X509Data.)
    x509_data = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    for index, item in enumerate((certificate, *chain)):
        node = (xmlsec.template.x509_data_add_certificate(x509_data) if index == 0 else
                etree.SubElement(x509_data, f"{{{DSIG_NS}}}X509Certificate"))
        node.text = base64.b64encode(item.public_bytes(serialization.Encoding.DER)).decode()
    return etree.tostring(root.getroottree(), xml_declaration=True,
                          encoding="UTF-8")


def _check_signing_key(certificate: x509.Certificate, algorithm: str) -> None:
    public_key = certificate.public_key()
    wanted = ec.EllipticCurvePublicKey if algorithm.startswith("ecdsa") else rsa.RSAPublicKey
    if not isinstance(public_key, wanted):
        raise ValueError(f"{algorithm} needs an {'EC' if wanted is not rsa.RSAPublicKey else 'RSA'}"
                         f" key; the certificate's key is {type(public_key).__name__}")


def _append_indented(header: Any, signature: Any) -> None:
    """Append as the last child, indented like its siblings when the header is indented."""
    children = list(header)
    if children and (header.text or "").strip() == "" and \
            (children[-1].tail or "").strip() == "":
        signature.tail = children[-1].tail
        children[-1].tail = header.text
    header.append(signature)
