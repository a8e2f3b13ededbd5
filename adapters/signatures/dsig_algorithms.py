"""Which XML-DSig algorithm URIs a package signature may name, and what each one means for the
verdict (SPEC §3.4, README "Signatures, trust and evidence").

Three kinds of URI that the verifier cannot run, kept apart because they lead to opposite
verdicts:

* **content-selecting** transforms and canonicalizations (XPath, XPath Filter 2.0, XSLT,
  XPointer, base64, decryption) and any transform or canonicalization that carries parameters
  other than `InclusiveNamespaces`: with them a signature can be valid over something else
  than the document a recipient reads (signature wrapping). Always *invalid*, whatever else
  the signature holds, and checked before anything that could make it *unverifiable*.
* **forbidden** signature and digest methods: HMAC (no public key proves who signed;
  HMACOutputLength truncation made any value "valid" in some verifiers, CVE-2009-0217) and MD5
  (collisions). Always *invalid*.
* anything else the node does not know (a non-standard URI such as the VPCP kit's
  `http://www.w3.org/TR/xml-exc-c14n#`, RSA-PSS, GOST, …), without parameters: the signature
  cannot be checked here, and nothing in it can select or rewrite what is signed. *Unverifiable*,
  never valid.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

CONTENT_SELECTING = {
    "http://www.w3.org/TR/1999/REC-xpath-19991116": "XPath",
    "http://www.w3.org/2002/06/xmldsig-filter2": "XPath Filter 2.0",
    "http://www.w3.org/TR/1999/REC-xslt-19991116": "XSLT",
    "http://www.w3.org/2001/04/xmldsig-more/xptr": "XPointer",
    "http://www.w3.org/2000/09/xmldsig#base64": "base64",
    "http://www.w3.org/2002/07/decrypt#XML": "decryption",
    "http://www.w3.org/2002/07/decrypt#Binary": "decryption",
}
"""Transforms that select, rewrite or replace the signed content (XML-DSig §6.6, 2002/07
decrypt): a wrapping vector whether this node supports them or not."""

KNOWN_MISSPELLINGS = {
    "http://www.w3.org/TR/xml-exc-c14n#": (
        f"the VPCP kit's misspelling of exclusive C14N ({EXC_C14N})"
    ),
}
"""Non-standard URIs seen in real traffic, and what their writers meant (for the reason
given to the sender; the node still cannot verify them)."""

_PARAMETERS_ALLOWED = frozenset({"InclusiveNamespaces"})
"""The only parameter a canonicalization may carry (exclusive C14N's PrefixList)."""


def parameters(element: Any) -> list[str]:
    """Local names of the child elements of a Transform or method element that are not
    harmless parameters (anything but `InclusiveNamespaces`)."""
    return [
        str(etree.QName(child).localname)
        for child in element
        if isinstance(child.tag, str) and etree.QName(child).localname not in _PARAMETERS_ALLOWED
    ]


def selection_risk(algorithm: str, element: Any) -> str | None:
    """Why a transform or canonicalization could make a signature cover something else than
    the whole document (None when it cannot)."""
    if algorithm in CONTENT_SELECTING:
        return (
            f"the {CONTENT_SELECTING[algorithm]} transform ({algorithm}) can make a "
            "signature cover something else than the document a recipient reads"
        )
    extra = parameters(element)
    if extra:
        return (
            f"{algorithm or '(no Algorithm)'} carries parameters ({', '.join(extra)}): "
            "only enveloped-signature and a canonicalization without parameters are "
            "accepted, so that the signature covers the whole document"
        )
    return None


def forbidden_method(algorithm: str | None, element: Any | None) -> str | None:
    """Why a SignatureMethod or DigestMethod is never acceptable (None when it may be)."""
    lowered = (algorithm or "").lower()
    if "hmac" in lowered:
        return (
            f"HMAC signature method {algorithm}: a shared-secret code proves nothing about "
            "who signed"
        )
    if "md5" in lowered:
        return f"MD5 ({algorithm}) is broken (collisions)"
    extra = parameters(element) if element is not None else []
    if extra:
        return (
            f"{algorithm} carries parameters ({', '.join(extra)}), such as an "
            "HMACOutputLength that truncates the check"
        )
    return None


def unknown_uri(what: str, algorithm: str | None) -> str:
    """The reason given for an algorithm URI the node cannot run."""
    if not algorithm:
        return f"the {what} names no Algorithm"
    known = KNOWN_MISSPELLINGS.get(algorithm)
    return f"unsupported {what} {algorithm}" + (f" ({known})" if known else "")
