"""The shape checks that run before any cryptography: everything that would let a signature
be valid over something else than the package a recipient reads (signature wrapping) is
refused here — placement, the one Reference and its URI, transforms, methods, Object and
Manifest, KeyInfo — and a Signature in the QCVN namespace is rebuilt as its XML-DSig form.
"""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from adapters.signatures.dsig_algorithms import forbidden_method, selection_risk, unknown_uri
from adapters.signatures.dsig_transforms import CANONICALIZATIONS, ENVELOPED
from adapters.signatures.dsig_tree import (
    check_children,
    child_elements,
    dsig_children,
    element_path,
    is_qcvn_element,
    local_name,
    namespace_of,
    short,
)
from adapters.signatures.dsig_verdict import (
    FORBIDDEN_ALGORITHM,
    KEYINFO,
    MALFORMED,
    MISPLACED,
    UNSUPPORTED_TRANSFORM,
    WRAPPING,
    Refused,
    Unverifiable,
)
from gateway.edxml.namespaces import DSIG_NS, QCVN_NS

_ID_ATTRIBUTES = ("Id", "ID", "id")


def check_placement(root: Any, signature: Any) -> None:
    header = signature.getparent()
    envelope = header.getparent() if header is not None else None
    if not (
        envelope is not None
        and is_qcvn_element(header, "edXMLHeader")
        and is_qcvn_element(envelope, "edXMLEnvelope")
        and envelope.getparent() is root
        and is_qcvn_element(root, "edXML")
    ):
        raise Refused(
            MISPLACED,
            f"the Signature is at {short(element_path(signature))}, not a "
            "child of edXML/edXMLEnvelope/edXMLHeader",
        )


def as_xmldsig(signature: Any) -> Any:
    """The Signature rebuilt in the XML-DSig namespace (QCVN-namespace elements renamed), in
    place of the QCVN one; the caller's bytes are untouched (this tree is our own parse)."""
    replacement = etree.Element(
        f"{{{DSIG_NS}}}Signature", dict(signature.attrib), nsmap={None: DSIG_NS}
    )
    _copy_renamed(signature, replacement)
    replacement.tail = signature.tail
    signature.getparent().replace(signature, replacement)
    return replacement


def _copy_renamed(source: Any, target: Any) -> None:
    target.text = source.text
    for child in source:
        if isinstance(child.tag, str) and namespace_of(child) == QCVN_NS:
            copied = etree.SubElement(
                target, f"{{{DSIG_NS}}}{local_name(child)}", dict(child.attrib)
            )
            _copy_renamed(child, copied)
        else:  # comments, processing instructions, elements of other namespaces
            copied = copy.deepcopy(child)
            target.append(copied)
        copied.tail = child.tail


def check_uri(root: Any, uri: str | None) -> str | None:
    """ "" (the whole document) or "#<Id of the root>"; returns the root's Id attribute name
    for the latter."""
    if uri == "":
        return None
    if uri is None:
        raise Refused(
            WRAPPING, 'the Reference has no URI: it must designate the whole document (URI="")'
        )
    attribute = next(
        (name for name in _ID_ATTRIBUTES if uri.startswith("#") and root.get(name) == uri[1:]), None
    )
    if attribute is None:
        raise Refused(
            WRAPPING, f"Reference URI '{short(uri)}' does not designate the document root"
        )
    holders = [
        element
        for element in root.iter()
        if isinstance(element.tag, str)
        and uri[1:]
        in (
            element.get(name)
            for name in (*_ID_ATTRIBUTES, "{http://www.w3.org/XML/1998/namespace}id")
        )
    ]
    if len(holders) > 1:
        raise Refused(
            WRAPPING,
            f"the document root's Id '{short(uri[1:])}' is not unique "
            f"({len(holders)} elements carry it)",
        )
    return attribute


def check_transforms(reference: Any) -> tuple[list[Any], list[Unverifiable]]:
    """enveloped-signature, then at most one canonicalization; returns the Transform elements
    and, for each transform the node cannot run but that cannot select content either (a
    non-standard URI without parameters), why the digest cannot be checked."""
    check_children(reference, "Reference", {"Transforms", "DigestMethod", "DigestValue"})
    containers = dsig_children(reference, "Transforms")
    if len(containers) > 1:
        raise Refused(MALFORMED, "Reference has several Transforms elements")
    transforms = child_elements(containers[0]) if containers else []
    algorithms = []
    gaps: list[Unverifiable] = []
    for transform in transforms:
        algorithm = transform.get("Algorithm") or ""
        if transform.tag != f"{{{DSIG_NS}}}Transform":
            raise Refused(
                MALFORMED, f"unexpected element {short(local_name(transform))} in Transforms"
            )
        risk = selection_risk(algorithm, transform)
        if risk is not None:
            raise Refused(WRAPPING, short(risk, 300))
        if algorithm != ENVELOPED and algorithm not in CANONICALIZATIONS:
            gaps.append(
                Unverifiable(UNSUPPORTED_TRANSFORM, short(unknown_uri("transform", algorithm), 300))
            )
        algorithms.append(algorithm)
    if ENVELOPED not in algorithms and not gaps:  # (an unknown one may be a misspelt one)
        raise Refused(MALFORMED, "the Reference has no enveloped-signature transform")
    if (ENVELOPED in algorithms and algorithms[0] != ENVELOPED) or len(algorithms) > 2:
        raise Refused(
            MALFORMED,
            "unsupported transform chain "
            + " → ".join(algorithms)
            + ": expected enveloped-signature, then at most one canonicalization",
        )
    return transforms, gaps


def check_methods(signed_info: Any, reference: Any) -> None:
    """A CanonicalizationMethod that could rewrite SignedInfo (XSLT, parameters) is wrapping;
    HMAC and MD5 methods are never acceptable (`dsig_algorithms`)."""
    for method in dsig_children(signed_info, "CanonicalizationMethod"):
        risk = selection_risk(method.get("Algorithm") or "", method)
        if risk is not None:
            raise Refused(WRAPPING, short(f"CanonicalizationMethod: {risk}", 300))
    for parent, name in ((signed_info, "SignatureMethod"), (reference, "DigestMethod")):
        for method in dsig_children(parent, name):
            reason = forbidden_method(method.get("Algorithm"), method)
            if reason is not None:
                raise Refused(FORBIDDEN_ALGORITHM, short(f"{name}: {reason}", 300))


def check_objects(signature: Any) -> None:
    for obj in dsig_children(signature, "Object"):
        if any(isinstance(e.tag, str) and local_name(e) == "Manifest" for e in obj.iter()):
            raise Refused(
                WRAPPING, "Object holds a Manifest: references outside SignedInfo are not accepted"
            )


def check_key_info(signature: Any) -> list[str]:
    """KeyInfo may only carry X509Data, KeyValue, KeyName; returns the X509Certificate texts.
    (The key is taken from the certificate: KeyInfo is never resolved by xmlsec.)"""
    key_infos = dsig_children(signature, "KeyInfo")
    if len(key_infos) > 1:
        raise Refused(MALFORMED, "Signature has several KeyInfo elements")
    texts: list[str] = []
    for child in child_elements(key_infos[0]) if key_infos else []:
        name = local_name(child) if namespace_of(child) == DSIG_NS else None
        if name == "RetrievalMethod":
            raise Refused(KEYINFO, "KeyInfo/RetrievalMethod points outside the signature")
        if name not in ("X509Data", "KeyValue", "KeyName"):
            raise Refused(
                KEYINFO,
                f"KeyInfo/{short(local_name(child))} is not accepted (only "
                "X509Data, KeyValue, KeyName)",
            )
        if name == "X509Data":
            texts += [
                item.text.strip()
                for item in dsig_children(child, "X509Certificate")
                if item.text and item.text.strip()
            ]
    return texts
