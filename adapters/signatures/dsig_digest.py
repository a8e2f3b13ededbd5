"""The checks that say why a signature fails, or what still holds when it cannot be verified
whole: the Reference digest recomputed here, and the SignatureValue over SignedInfo alone
(`signed_info`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import xmlsec
from cryptography import x509
from lxml import etree

from adapters.signatures.dsig_transforms import CANONICALIZATIONS, C14n
from adapters.signatures.dsig_tree import dsig_children, local_name, remove_keeping_tail, short
from adapters.signatures.dsig_verdict import (
    DIGEST_MATCHES_NOTE,
    DIGEST_MISMATCH,
    VALUE_MATCHES_NOTE,
    VALUE_MISMATCH,
    Findings,
    Refused,
)
from adapters.signatures.signed_info import signed_info_octets, value_matches

_C = xmlsec.constants


@dataclass(frozen=True, slots=True)
class SignatureParts:
    """What the partial checks of an unverifiable signature work on."""

    root: Any
    signature: Any
    signed_info: Any
    uri: str
    transforms: list[Any]
    digest_value: bytes
    signature_value: bytes


def check_what_can_be(
    parts: SignatureParts,
    found: Findings,
    c14n: C14n | None,
    method: tuple[Any, str, str] | None,
    digest: tuple[Any, str] | None,
    signer: x509.Certificate | None,
) -> None:
    """For a signature that cannot be verified whole: the checks it still allows, each of
    which proves a forgery invalid (raises `Refused`) or adds a note. The SignatureValue
    first: the digest recomputation takes the Signature out of the tree."""
    if c14n is not None and method is not None and signer is not None:
        octets = signed_info_octets(
            parts.signed_info,
            c14n.exclusive,
            c14n.with_comments,
            _inclusive_prefixes(parts.signed_info),
        )
        if value_matches(octets, parts.signature_value, method[0], signer):
            found.notes.append(VALUE_MATCHES_NOTE)
        elif found.namespace != "qcvn":
            raise Refused(
                VALUE_MISMATCH,
                "SignatureValue does not verify with the "
                "certificate's key (SignedInfo altered, or another "
                "signer's certificate)",
            )
        else:  # not proof: the QCVN-form signer may have signed another form (module doc)
            found.notes.append("the SignatureValue does not match SignedInfo in its XML-DSig form")
    if digest is not None:
        computed = reference_digest(
            parts.root, parts.signature, parts.uri, parts.transforms, digest[1]
        )
        if computed != parts.digest_value:
            raise Refused(DIGEST_MISMATCH, "document altered after signing: digest mismatch")
        found.notes.append(DIGEST_MATCHES_NOTE)


def _inclusive_prefixes(signed_info: Any) -> list[str]:
    return [
        prefix
        for method in dsig_children(signed_info, "CanonicalizationMethod")
        for element in method
        if isinstance(element.tag, str) and local_name(element) == "InclusiveNamespaces"
        for prefix in (element.get("PrefixList") or "").split()
    ]


def diagnose(
    root: Any,
    signature: Any,
    uri: str,
    transforms: list[Any],
    hash_name: str,
    digest_value: bytes,
    error: xmlsec.Error,
) -> tuple[Refused, bool]:
    """xmlsec refused: was the document altered (digest), or the SignatureValue/SignedInfo or
    certificate wrong? Also says whether the digest was recomputed and matches."""
    try:
        digest = reference_digest(root, signature, uri, transforms, hash_name)
    except Exception:  # the recomputation is only for the reason; xmlsec already decided
        return Refused(
            VALUE_MISMATCH, f"the signature does not verify ({short(str(error))})"
        ), False
    if digest != digest_value:
        return Refused(DIGEST_MISMATCH, "document altered after signing: digest mismatch"), False
    return Refused(
        VALUE_MISMATCH, "SignatureValue does not verify with the certificate's key"
    ), True


def reference_digest(
    root: Any, signature: Any, uri: str, transforms: Sequence[Any], hash_name: str
) -> bytes:
    """The digest of the Reference: the document without its Signature (enveloped transform;
    the Signature is removed from `root`'s tree), canonicalized as the transforms say
    (inclusive C14N 1.0 when none is given), streamed into the hash."""
    remove_keeping_tail(signature)
    return document_digest(root, digest_input(uri, transforms, hash_name, b""))


@dataclass(frozen=True, slots=True)
class DigestInput:
    """How the Reference digest is computed and what it must equal, as plain values: nothing
    of the tree it was read from is kept (a retry parses its own)."""

    uri: str
    exclusive: bool
    prefixes: tuple[str, ...]
    hash_name: str
    value: bytes


def digest_input(
    uri: str, transforms: Sequence[Any], hash_name: str, digest_value: bytes
) -> DigestInput:
    """The canonicalization the transforms name (inclusive C14N 1.0 when none is given) and
    its InclusiveNamespaces PrefixList."""
    method = CANONICALIZATIONS[_C.TransformInclC14N.href]
    prefixes: list[str] = []
    for transform in transforms:
        algorithm = transform.get("Algorithm")
        if algorithm in CANONICALIZATIONS:
            method = CANONICALIZATIONS[algorithm]
            prefixes = [
                p
                for element in transform
                if isinstance(element.tag, str) and local_name(element) == "InclusiveNamespaces"
                for p in (element.get("PrefixList") or "").split()
            ]
    return DigestInput(uri, method.exclusive, tuple(prefixes), hash_name, digest_value)


def document_digest(root: Any, digest: DigestInput) -> bytes:
    """The digest of `root`'s document, whose Signature has been taken out already."""
    hashed = hashlib.new(digest.hash_name)
    options: dict[str, Any] = {
        "exclusive": digest.exclusive,
        "with_comments": False,
        "inclusive_ns_prefixes": list(digest.prefixes) or None,
    }
    if digest.uri == "":
        root.getroottree().write_c14n(_HashWriter(hashed), **options)
    else:  # "#<root Id>": the root element, without the prolog's processing instructions
        hashed.update(etree.tostring(root, method="c14n", **options))
    return hashed.digest()


class _HashWriter:
    def __init__(self, digest: Any) -> None:
        self._digest = digest

    def write(self, data: bytes) -> None:
        self._digest.update(data)
