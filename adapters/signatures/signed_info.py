"""The SignatureValue checked against SignedInfo alone, without the document's digest.

Used only when a signature cannot be verified as a whole (its Reference names a transform or
digest the node cannot run): whatever URI was changed in SignedInfo, the signer's value no
longer matches it. So a forged signature cannot be passed off as merely *unverifiable* by
editing a URI — the value check still proves it false — while one that really was signed that
way (the VPCP kit's misspelt transform) matches, and stays *unverifiable*.

SignedInfo is canonicalized as a document subset (C14N 1.0 §2.4: the namespaces in scope from
its ancestors are rendered on it; lxml's element serializer gets that wrong), then xmlsec
checks the value over those bytes with the signer certificate's key.
"""

from __future__ import annotations

import copy
import io
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree


def signed_info_octets(
    signed_info: Any, exclusive: bool, with_comments: bool, inclusive_prefixes: list[str]
) -> bytes:
    """SignedInfo canonicalized as the signer did: a standalone copy whose root declares
    every namespace in scope at SignedInfo (inclusive C14N renders them all; exclusive C14N
    only those used or listed in the PrefixList)."""
    apex = etree.Element(signed_info.tag, dict(signed_info.attrib), nsmap=signed_info.nsmap)
    apex.text = signed_info.text
    for child in signed_info:
        apex.append(copy.deepcopy(child))
    out = io.BytesIO()
    etree.ElementTree(apex).write_c14n(
        out,
        exclusive=exclusive,
        with_comments=with_comments,
        inclusive_ns_prefixes=inclusive_prefixes or None,
    )
    return out.getvalue()


def value_matches(
    octets: bytes, signature_value: bytes, method: Any, signer: x509.Certificate
) -> bool:
    """Whether `signature_value` is the signer's signature over `octets` with `method` (an
    xmlsec signature transform); False on any xmlsec error (never raises)."""
    context = xmlsec.SignatureContext()
    try:
        context.key = xmlsec.Key.from_memory(
            signer.public_bytes(serialization.Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem
        )
        context.verify_binary(octets, method, signature_value)
    except xmlsec.Error:
        return False
    return True
