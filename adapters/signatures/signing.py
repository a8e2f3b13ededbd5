"""Signing a package with an enveloped XML-DSig over the whole document (`lienthong edxml
sign`), for agency developers and tests.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from adapters.signatures.dsig_transforms import SIGNING_C14N, SIGNING_METHODS
from adapters.signatures.dsig_tree import (
    has_value,
    is_qcvn_element,
    parse_document,
    remove_keeping_tail,
    signature_elements,
)
from adapters.signatures.dsig_verdict import Refused
from gateway.edxml.namespaces import DSIG_NS

_C = xmlsec.constants


SigningAlgorithm = Literal[
    "rsa-sha1", "rsa-sha256", "rsa-sha384", "rsa-sha512", "ecdsa-sha256", "ecdsa-sha384"
]


Canonicalization = Literal["c14n", "exc-c14n"]


def sign_package(
    document: bytes,
    key_pem: bytes,
    cert_pem: bytes,
    *,
    algorithm: SigningAlgorithm = "rsa-sha256",
    canonicalization: Canonicalization = "exc-c14n",
    extra_certs: Sequence[bytes] = (),
) -> bytes:
    """The package with an enveloped XML-DSig (URI="", enveloped-signature + the chosen
    canonicalization) as the last child of edXMLHeader, KeyInfo/X509Data holding the signer
    certificate then `extra_certs` (PEM or DER). An empty signature skeleton is replaced;
    a package that already carries a signature is refused (ValueError)."""
    if algorithm not in SIGNING_METHODS:
        raise ValueError(
            f"unsupported signing algorithm {algorithm!r}"
            + (" (this xmlsec build has no ECDSA)" if algorithm.startswith("ecdsa") else "")
        )
    if canonicalization not in SIGNING_C14N:
        raise ValueError(f"unsupported canonicalization {canonicalization!r}")
    sign_transform, digest_transform = SIGNING_METHODS[algorithm]
    certificate = x509.load_pem_x509_certificate(cert_pem)
    chain = [
        x509.load_pem_x509_certificate(c)
        if c.lstrip().startswith(b"-----BEGIN")
        else x509.load_der_x509_certificate(c)
        for c in extra_certs
    ]
    private_key = serialization.load_pem_private_key(key_pem, password=None)
    if private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ValueError("the private key does not belong to the certificate")
    _check_signing_key(certificate, algorithm)

    try:
        root = parse_document(document)
    except Refused as refusal:
        raise ValueError(refusal.reason) from None
    envelope = (
        next((c for c in root if is_qcvn_element(c, "edXMLEnvelope")), None)
        if is_qcvn_element(root, "edXML")
        else None
    )
    header = (
        next((c for c in envelope if is_qcvn_element(c, "edXMLHeader")), None)
        if envelope is not None
        else None
    )
    if header is None:
        raise ValueError("not an edXML package: edXML/edXMLEnvelope/edXMLHeader is missing")
    existing = signature_elements(root)
    if any(has_value(signature) for signature in existing):
        raise ValueError("the package already carries a signature")
    for skeleton in existing:
        remove_keeping_tail(skeleton)

    signature = xmlsec.template.create(root, SIGNING_C14N[canonicalization], sign_transform)
    _append_indented(header, signature)
    reference = xmlsec.template.add_reference(signature, digest_transform, uri="")
    xmlsec.template.add_transform(reference, _C.TransformEnveloped)
    xmlsec.template.add_transform(reference, SIGNING_C14N[canonicalization])
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
        node = (
            xmlsec.template.x509_data_add_certificate(x509_data)
            if index == 0
            else etree.SubElement(x509_data, f"{{{DSIG_NS}}}X509Certificate")
        )
        node.text = base64.b64encode(item.public_bytes(serialization.Encoding.DER)).decode()
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def _check_signing_key(certificate: x509.Certificate, algorithm: str) -> None:
    public_key = certificate.public_key()
    wanted = ec.EllipticCurvePublicKey if algorithm.startswith("ecdsa") else rsa.RSAPublicKey
    if not isinstance(public_key, wanted):
        raise ValueError(
            f"{algorithm} needs an {'EC' if wanted is not rsa.RSAPublicKey else 'RSA'}"
            f" key; the certificate's key is {type(public_key).__name__}"
        )


def _append_indented(header: Any, signature: Any) -> None:
    """Append as the last child, indented like its siblings when the header is indented."""
    children = list(header)
    if children and (header.text or "").strip() == "" and (children[-1].tail or "").strip() == "":
        signature.tail = children[-1].tail
        children[-1].tail = header.text
    header.append(signature)
