"""The enveloped XML-DSig over a whole package (SPEC §2.1, §3.4): signing, verifying, tampering,
signature wrapping, the QCVN-namespace form, and the signatures of the sample packages."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from adapters.signatures.signed_info import signed_info_octets, value_matches
from adapters.signatures.xmldsig import (
    _SIGNATURE_METHODS,
    DIGEST_MATCHES_NOTE,
    QCVN_NOTE,
    SHA1_NOTE,
    SKELETON_REASON,
    VALUE_MATCHES_NOTE,
    SignatureCheck,
    _as_xmldsig,
    check_signature,
    sign_package,
)
from gateway.edxml.namespaces import DSIG_NS, QCVN_NS
from gateway.edxml.parser import hardened_parser
from tests.support.pki import ec_key, intermediate, root_authority
from tests.support.samples import SAMPLES

# One PKI per module: 2048-bit RSA keys are generated once.
ROOT = root_authority()
INTERMEDIATE = intermediate(ROOT)
SIGNER = INTERMEDIATE.issue("Van thu UBND tinh (test)")
OTHER = INTERMEDIATE.issue("Another agency (test)")
EC_SIGNER = INTERMEDIATE.issue("EC signer (test)", key=ec_key())

DS = f"{{{DSIG_NS}}}"
Q = f"{{{QCVN_NS}}}"
DSIG_DECLARATION = f' xmlns="{DSIG_NS}"'.encode()
ALGORITHMS = ["rsa-sha1", "rsa-sha256", "rsa-sha384", "rsa-sha512", "ecdsa-sha256", "ecdsa-sha384"]
SIGNATURE_HREFS = {
    "rsa-sha1": "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "rsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "rsa-sha384": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "rsa-sha512": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "ecdsa-sha256": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "ecdsa-sha384": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
}
C14N_HREFS = {
    "c14n": "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "exc-c14n": "http://www.w3.org/2001/10/xml-exc-c14n#",
}


def document() -> bytes:
    """edoc_new.edxml without its (fake) signature, with a second recipient."""
    package = (SAMPLES / "edoc_new.edxml").read_bytes()
    package = re.sub(rb"\s*<Signature>.*?</Signature>", b"", package, count=1, flags=re.S)
    to = re.search(rb"\s*<edXML:To>.*?</edXML:To>", package, re.S)
    assert to is not None
    second = to.group(0).replace(b"28.22.H17", b"000.00.00.H41")
    return package.replace(to.group(0), to.group(0) + second, 1)


def status_package() -> bytes:
    return (SAMPLES / "status_inbox_01.edxml").read_bytes()


DOCUMENT = document()
SIGNED = sign_package(
    DOCUMENT, SIGNER.key_pem, SIGNER.cert_pem, extra_certs=[INTERMEDIATE.cert_pem]
)


def signed(algorithm: str = "rsa-sha256", canonicalization: str = "exc-c14n") -> bytes:
    who = EC_SIGNER if algorithm.startswith("ecdsa") else SIGNER
    return sign_package(
        DOCUMENT,
        who.key_pem,
        who.cert_pem,
        algorithm=algorithm,  # type: ignore[arg-type]
        canonicalization=canonicalization,  # type: ignore[arg-type]
        extra_certs=[INTERMEDIATE.cert_pem],
    )


def assert_invalid(check: SignatureCheck, code: str, reason: str | None = None) -> None:
    assert (check.outcome, check.code) == ("invalid", code), check.reason
    if reason is not None:
        assert reason in (check.reason or ""), check.reason


def assert_unverifiable(check: SignatureCheck, code: str, reason: str | None = None) -> None:
    assert (check.outcome, check.code) == ("unverifiable", code), check.reason
    if reason is not None:
        assert reason in (check.reason or ""), check.reason


def der_b64(certificate_pem: bytes) -> bytes:
    der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(serialization.Encoding.DER)
    return base64.b64encode(der)


def mutate(package: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = etree.fromstring(package, hardened_parser(recover=True))
    change(root)
    return bytes(etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8"))


def signature_of(root: etree._Element) -> etree._Element:
    found = root.find(f".//{DS}Signature")
    assert found is not None
    return found


def header_of(root: etree._Element) -> etree._Element:
    found = root.find(f"{Q}edXMLEnvelope/{Q}edXMLHeader")
    assert found is not None
    return found


# --- the installed environment -----------------------------------------------------------------


def test_lxml_and_xmlsec_share_libxml2_and_sign_and_verify() -> None:
    import lxml.etree
    import xmlsec

    assert lxml.etree.LIBXML_VERSION[:2] == xmlsec.get_libxml_version()[:2]
    assert lxml.etree.LIBXML_COMPILED_VERSION[:2] == xmlsec.get_libxml_compiled_version()[:2]
    package = sign_package(status_package(), SIGNER.key_pem, SIGNER.cert_pem)
    check = check_signature(package)
    assert (check.outcome, check.reason, check.code) == ("valid", None, None)
    assert package.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


# --- signing and verifying -----------------------------------------------------------------------


@pytest.mark.parametrize("canonicalization", ["c14n", "exc-c14n"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_and_canonicalization_signs_and_verifies(
    algorithm: str, canonicalization: str
) -> None:
    check = check_signature(signed(algorithm, canonicalization))
    assert (check.outcome, check.reason, check.code) == ("valid", None, None)
    assert check.signature_method == SIGNATURE_HREFS[algorithm]
    assert check.canonicalization == C14N_HREFS[canonicalization]
    weak = algorithm == "rsa-sha1"
    assert check.weak_algorithm is weak
    assert (SHA1_NOTE in check.notes) is weak
    assert check.digest_method is not None and ("sha1" in check.digest_method) is weak
    who = EC_SIGNER if algorithm.startswith("ecdsa") else SIGNER
    assert check.signer == who.certificate
    assert check.certificates == (who.certificate, INTERMEDIATE.certificate)
    assert check.certificates[0] is check.signer
    assert check.namespace == "xmldsig"


def test_signature_is_the_last_child_of_the_header() -> None:
    root = etree.fromstring(SIGNED, hardened_parser())
    header = header_of(root)
    assert header[-1].tag == f"{DS}Signature"
    reference = signature_of(root).find(f"{DS}SignedInfo/{DS}Reference")
    assert reference is not None and reference.get("URI") == ""
    transforms = [t.get("Algorithm") for t in reference.iter(f"{DS}Transform")]
    assert transforms == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        C14N_HREFS["exc-c14n"],
    ]


def test_the_signer_is_the_leaf_whatever_the_keyinfo_order() -> None:
    def intermediate_first(root: etree._Element) -> None:
        x509_data = signature_of(root).find(f"{DS}KeyInfo/{DS}X509Data")
        assert x509_data is not None
        x509_data.append(x509_data[0])  # the signer's certificate moves after the CA's

    check = check_signature(mutate(SIGNED, intermediate_first))
    assert check.outcome == "valid"
    assert check.signer == SIGNER.certificate
    assert check.certificates == (SIGNER.certificate, INTERMEDIATE.certificate)


def test_reference_to_the_root_id_verifies() -> None:
    import xmlsec

    root = etree.fromstring(DOCUMENT, hardened_parser())
    root.set("Id", "package-1")
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformInclC14N, xmlsec.constants.TransformRsaSha256
    )
    header_of(root).append(signature)
    reference = xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri="#package-1"
    )
    xmlsec.template.add_transform(reference, xmlsec.constants.TransformEnveloped)
    x509_data = xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    xmlsec.template.x509_data_add_certificate(x509_data).text = der_b64(SIGNER.cert_pem).decode()
    context = xmlsec.SignatureContext()
    context.key = xmlsec.Key.from_memory(SIGNER.key_pem, xmlsec.constants.KeyDataFormatPem)
    context.register_id(root, "Id")
    context.sign(signature)
    package = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    assert check_signature(package).outcome == "valid"
    assert_invalid(
        check_signature(package.replace(b"V/v k", b"V/w k", 1)), "SIGNATURE_DIGEST_MISMATCH"
    )


def test_attachment_beyond_libxml2_default_text_limit() -> None:
    # One attachment is one text node; libxml2 refuses text nodes over 10 MB without huge_tree.
    content = re.search(rb"(<edXML:ContentTransferEncoded[^>]*>)[^<]*", DOCUMENT)
    assert content is not None
    big = DOCUMENT.replace(content.group(0), content.group(1) + b"QUJD" * 3_000_000)
    package = sign_package(big, SIGNER.key_pem, SIGNER.cert_pem)
    assert check_signature(package).outcome == "valid"
    assert_invalid(check_signature(change_attachment(package)), "SIGNATURE_DIGEST_MISMATCH")


def test_extra_certificates_may_be_der() -> None:
    der = INTERMEDIATE.certificate.public_bytes(serialization.Encoding.DER)
    check = check_signature(
        sign_package(status_package(), SIGNER.key_pem, SIGNER.cert_pem, extra_certs=[der])
    )
    assert check.certificates == (SIGNER.certificate, INTERMEDIATE.certificate)


# --- tampering -----------------------------------------------------------------------------------


def change_subject(package: bytes) -> bytes:
    changed = re.sub(rb"(<edXML:Subject>V/)v", rb"\1w", package, count=1)
    assert changed != package
    return changed


def change_attachment(package: bytes) -> bytes:
    start = package.index(b"<edXML:ContentTransferEncoded")
    position = package.index(b">", start) + 1 + 5000
    old = package[position : position + 1]
    assert old.isalnum()
    return package[:position] + (b"B" if old == b"A" else b"A") + package[position + 1 :]


def remove_a_recipient(package: bytes) -> bytes:
    changed = re.sub(rb"\s*<edXML:To>.*?</edXML:To>", b"", package, count=1, flags=re.S)
    assert changed.count(b"<edXML:To>") == 1
    return changed


@pytest.mark.parametrize("canonicalization", ["c14n", "exc-c14n"])
@pytest.mark.parametrize("tamper", [change_subject, change_attachment, remove_a_recipient])
def test_document_altered_after_signing(
    tamper: Callable[[bytes], bytes], canonicalization: str
) -> None:
    check = check_signature(tamper(signed(canonicalization=canonicalization)))
    assert_invalid(
        check, "SIGNATURE_DIGEST_MISMATCH", "document altered after signing: digest mismatch"
    )
    assert check.signer == SIGNER.certificate


def test_swapped_certificate() -> None:
    package = SIGNED.replace(der_b64(SIGNER.cert_pem), der_b64(OTHER.cert_pem))
    check = check_signature(package)
    assert_invalid(
        check,
        "SIGNATURE_VALUE_MISMATCH",
        "SignatureValue does not verify with the certificate's key",
    )
    assert check.signer == OTHER.certificate


def test_certificate_with_another_key_type() -> None:
    package = SIGNED.replace(der_b64(SIGNER.cert_pem), der_b64(EC_SIGNER.cert_pem))
    assert_invalid(check_signature(package), "SIGNATURE_VALUE_MISMATCH", "needs an RSA key")


@pytest.mark.parametrize("canonicalization", ["c14n", "exc-c14n"])
@pytest.mark.parametrize("algorithm", ["rsa-sha1", "rsa-sha256", "ecdsa-sha256"])
def test_signature_value_altered(algorithm: str, canonicalization: str) -> None:
    def alter(match: re.Match[bytes]) -> bytes:
        first = match.group(2)
        return match.group(1) + (b"B" if first == b"A" else b"A")

    package = re.sub(rb"(<SignatureValue>)(.)", alter, signed(algorithm, canonicalization))
    assert_invalid(
        check_signature(package),
        "SIGNATURE_VALUE_MISMATCH",
        "SignatureValue does not verify with the certificate's key",
    )


def test_signed_info_altered() -> None:
    package = SIGNED.replace(b'<Reference URI="">', b'<Reference URI="" Type="urn:x">')
    assert_invalid(check_signature(package), "SIGNATURE_VALUE_MISMATCH")


# --- refused before any cryptography -------------------------------------------------------------


def sub(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, f"{DS}{name}", attributes)


def extra_reference(root: etree._Element) -> None:
    signed_info = signature_of(root).find(f"{DS}SignedInfo")
    reference = signature_of(root).find(f"{DS}SignedInfo/{DS}Reference")
    assert signed_info is not None and reference is not None
    signed_info.append(copy.deepcopy(reference))


def reference_to(
    uri: str, *, root_id: str | None = None, element_id: str | None = None
) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        if root_id:
            root.set("Id", root_id)
        if element_id:
            message_header = root.find(f".//{Q}MessageHeader")
            assert message_header is not None
            message_header.set("Id", element_id)
        reference = signature_of(root).find(f"{DS}SignedInfo/{DS}Reference")
        assert reference is not None
        if uri == "(none)":
            del reference.attrib["URI"]
        else:
            reference.set("URI", uri)

    return change


def second_signature(where: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        twin = copy.deepcopy(signature_of(root))
        parent = header_of(root) if where == "header" else root.find(f".//{Q}edXMLBody")
        assert parent is not None
        parent.append(twin)

    return change


def moved_signature(where: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        signature = signature_of(root)
        if where == "body":
            body = root.find(f".//{Q}edXMLBody")
            assert body is not None
            body.append(signature)
        elif where == "root":
            root.append(signature)
        elif where == "wrapper in header":
            wrapper = etree.SubElement(header_of(root), f"{Q}Wrapper")
            wrapper.append(signature)
        elif where == "wrapper around the document":
            # The classic attack: the signed original hidden in a wrapper, a forged envelope
            # where readers look.
            original = copy.deepcopy(root)
            forged = copy.deepcopy(root.find(f"{Q}edXMLEnvelope"))
            assert forged is not None
            forged.find(f".//{DS}Signature").getparent().remove(forged.find(f".//{DS}Signature"))
            for child in list(root):
                root.remove(child)
            root.append(forged)
            etree.SubElement(root, f"{Q}Wrapper").append(original)

    return change


def add_transform(algorithm: str, body: str | None = None) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        transforms = signature_of(root).find(f"{DS}SignedInfo/{DS}Reference/{DS}Transforms")
        assert transforms is not None
        transform = etree.Element(f"{DS}Transform", Algorithm=algorithm)
        if body is not None:
            etree.SubElement(transform, f"{DS}XPath").text = body
        transforms.insert(1, transform)

    return change


def set_algorithm(element: str, algorithm: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        found = signature_of(root).find(f".//{DS}{element}")
        assert found is not None
        found.set("Algorithm", algorithm)

    return change


def retrieval_method(root: etree._Element) -> None:
    key_info = signature_of(root).find(f"{DS}KeyInfo")
    assert key_info is not None
    key_info.insert(
        0,
        etree.Element(
            f"{DS}RetrievalMethod",
            URI="http://attacker.example/c",
            Type="http://www.w3.org/2000/09/xmldsig#rawX509Certificate",
        ),
    )


def other_key_info(root: etree._Element) -> None:
    key_info = signature_of(root).find(f"{DS}KeyInfo")
    assert key_info is not None
    sub(key_info, "SPKIData")


def object_manifest(root: etree._Element) -> None:
    manifest = sub(sub(signature_of(root), "Object"), "Manifest")
    reference = sub(manifest, "Reference", URI="#evil")
    sub(reference, "DigestMethod", Algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    sub(reference, "DigestValue").text = "AAAA"


def without_enveloped(root: etree._Element) -> None:
    transform = signature_of(root).find(f".//{DS}Transform")
    assert transform is not None
    transform.getparent().remove(transform)


def without_certificate(root: etree._Element) -> None:
    key_info = signature_of(root).find(f"{DS}KeyInfo")
    assert key_info is not None
    key_info.getparent().remove(key_info)


def hmac_output_length(root: etree._Element) -> None:
    method = signature_of(root).find(f"{DS}SignedInfo/{DS}SignatureMethod")
    assert method is not None
    sub(method, "HMACOutputLength").text = "0"


XSLT = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"

REFUSALS = [
    ("extra Reference", extra_reference, "SIGNATURE_WRAPPING", "2 Reference elements"),
    (
        "Reference to another id",
        reference_to("#mh", element_id="mh"),
        "SIGNATURE_WRAPPING",
        "Reference URI '#mh' does not designate the document root",
    ),
    (
        "Reference to an unknown id",
        reference_to("#nowhere"),
        "SIGNATURE_WRAPPING",
        "does not designate the document root",
    ),
    (
        "Reference to a duplicated root id",
        reference_to("#p", root_id="p", element_id="p"),
        "SIGNATURE_WRAPPING",
        "is not unique",
    ),
    (
        "Reference to an external URI",
        reference_to("http://attacker.example/doc.xml"),
        "SIGNATURE_WRAPPING",
        "does not designate the document root",
    ),
    ("Reference without URI", reference_to("(none)"), "SIGNATURE_WRAPPING", "no URI"),
    (
        "second Signature in the header",
        second_signature("header"),
        "SIGNATURE_MULTIPLE",
        "two Signature elements",
    ),
    (
        "second Signature in the body",
        second_signature("body"),
        "SIGNATURE_MULTIPLE",
        "two Signature elements",
    ),
    (
        "Signature moved into the body",
        moved_signature("body"),
        "SIGNATURE_MISPLACED",
        "edXML/edXMLEnvelope/edXMLBody/Signature",
    ),
    ("Signature moved to the root", moved_signature("root"), "SIGNATURE_MISPLACED", None),
    (
        "Signature in a wrapper element",
        moved_signature("wrapper in header"),
        "SIGNATURE_MISPLACED",
        "edXMLHeader/Wrapper/Signature",
    ),
    (
        "document in a wrapper element",
        moved_signature("wrapper around the document"),
        "SIGNATURE_MISPLACED",
        None,
    ),
    (
        "RetrievalMethod",
        retrieval_method,
        "SIGNATURE_KEYINFO",
        "KeyInfo/RetrievalMethod points outside the signature",
    ),
    ("other KeyInfo content", other_key_info, "SIGNATURE_KEYINFO", "KeyInfo/SPKIData"),
    (
        "XSLT transform",
        add_transform(XSLT),
        "SIGNATURE_WRAPPING",
        f"the XSLT transform ({XSLT}) can make a signature cover something else",
    ),
    (
        "XPath transform",
        add_transform(XPATH, "not(ancestor-or-self::*[local-name()='To'])"),
        "SIGNATURE_WRAPPING",
        f"the XPath transform ({XPATH})",
    ),
    (
        "XPath Filter 2.0 transform",
        add_transform("http://www.w3.org/2002/06/xmldsig-filter2"),
        "SIGNATURE_WRAPPING",
        "xmldsig-filter2",
    ),
    (
        "base64 transform",
        add_transform("http://www.w3.org/2000/09/xmldsig#base64"),
        "SIGNATURE_WRAPPING",
        "#base64",
    ),
    (
        "unknown transform with parameters",
        add_transform("urn:vendor:filter", "//To"),
        "SIGNATURE_WRAPPING",
        "urn:vendor:filter carries parameters (XPath)",
    ),
    (
        "XSLT canonicalization of SignedInfo",
        set_algorithm("CanonicalizationMethod", XSLT),
        "SIGNATURE_WRAPPING",
        "CanonicalizationMethod: the XSLT transform",
    ),
    ("Object/Manifest", object_manifest, "SIGNATURE_WRAPPING", "Manifest"),
    (
        "no enveloped-signature transform",
        without_enveloped,
        "SIGNATURE_MALFORMED",
        "enveloped-signature",
    ),
    (
        "HMAC signature method",
        set_algorithm("SignatureMethod", "http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
        "SIGNATURE_FORBIDDEN_ALGORITHM",
        "HMAC signature method",
    ),
    ("HMACOutputLength", hmac_output_length, "SIGNATURE_FORBIDDEN_ALGORITHM", "HMACOutputLength"),
    (
        "MD5 digest",
        set_algorithm("DigestMethod", "http://www.w3.org/2001/04/xmldsig-more#md5"),
        "SIGNATURE_FORBIDDEN_ALGORITHM",
        "MD5",
    ),
]


@pytest.mark.parametrize(
    ("change", "code", "reason"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refused_before_any_cryptography(
    change: Callable[[etree._Element], None], code: str, reason: str | None
) -> None:
    check = check_signature(mutate(SIGNED, change))
    assert_invalid(check, code, reason)


def test_refusals_still_report_the_algorithms() -> None:
    check = check_signature(mutate(SIGNED, extra_reference))
    assert check.signature_method == SIGNATURE_HREFS["rsa-sha256"]
    assert check.canonicalization == C14N_HREFS["exc-c14n"]
    assert check.namespace == "xmldsig"


# --- unverifiable, not invalid: what cannot be checked, and what still is ------------------------

KIT_TRANSFORM = "http://www.w3.org/TR/xml-exc-c14n#"
SHA3 = "http://www.w3.org/2007/05/xmldsig-more#sha3-256"
RSA_PSS = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"


def set_transform(algorithm: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        transform = signature_of(root).findall(f".//{DS}Transform")[-1]
        transform.set("Algorithm", algorithm)

    return change


def resign(package: bytes, change: Callable[[etree._Element], None]) -> bytes:
    """`package` with SignedInfo changed and signed again by SIGNER (RSA-SHA256): what a
    producer writing that SignedInfo itself sends (xmlsec cannot sign unknown transforms)."""
    root = etree.fromstring(package, hardened_parser(recover=True, huge_tree=True))
    change(root)
    signature = signature_of(root)
    signed_info = signature.find(f"{DS}SignedInfo")
    value = signature.find(f"{DS}SignatureValue")
    assert signed_info is not None and value is not None
    method = signed_info.find(f"{DS}CanonicalizationMethod")
    assert method is not None
    octets = signed_info_octets(
        signed_info, "exc-c14n" in (method.get("Algorithm") or ""), False, []
    )
    key = SIGNER.key
    assert isinstance(key, rsa.RSAPrivateKey)
    value.text = base64.b64encode(key.sign(octets, padding.PKCS1v15(), hashes.SHA256())).decode()
    return bytes(etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8"))


@pytest.mark.parametrize("form", ["xmldsig", "qcvn"])
@pytest.mark.parametrize("canonicalization", ["c14n", "exc-c14n"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_signed_info_octets_are_what_xmlsec_signed(
    algorithm: str, canonicalization: str, form: str
) -> None:
    """The SignedInfo-only check (used when the whole cannot be verified) canonicalizes
    SignedInfo exactly as xmlsec did when signing, inclusive C14N's inherited namespaces
    included."""
    package = signed(algorithm, canonicalization)
    if form == "qcvn":
        package = package.replace(DSIG_DECLARATION, b"")
    root = etree.fromstring(package, hardened_parser(huge_tree=True))
    signature = root.find(f".//{DS}Signature")
    if signature is None:
        signature = _as_xmldsig(root.find(f".//{Q}Signature"))
    signed_info = signature.find(f"{DS}SignedInfo")
    value = base64.b64decode("".join(signature.findtext(f"{DS}SignatureValue", "").split()))
    octets = signed_info_octets(signed_info, canonicalization == "exc-c14n", False, [])
    who = EC_SIGNER if algorithm.startswith("ecdsa") else SIGNER
    method = _SIGNATURE_METHODS[SIGNATURE_HREFS[algorithm]][0]
    assert value_matches(octets, value, method, who.certificate)
    assert not value_matches(octets + b" ", value, method, who.certificate)
    assert not value_matches(
        octets, value, method, OTHER.certificate if who is SIGNER else INTERMEDIATE.certificate
    )


def tampered(package: bytes) -> bytes:
    return change_subject(package)


UNVERIFIABLE = [
    # name, package, code, reason, note proving what could be checked
    (
        "the VPCP kit's transform URI, signed that way",
        lambda: resign(SIGNED, set_transform(KIT_TRANSFORM)),
        "SIGNATURE_UNSUPPORTED_TRANSFORM",
        "the VPCP kit's misspelling",
        VALUE_MATCHES_NOTE,
    ),
    (
        "an unknown transform URI, signed that way",
        lambda: resign(SIGNED, set_transform("urn:vendor:c14n")),
        "SIGNATURE_UNSUPPORTED_TRANSFORM",
        "unsupported transform urn:vendor:c14n",
        VALUE_MATCHES_NOTE,
    ),
    (
        "an unknown digest method, signed that way",
        lambda: resign(SIGNED, set_algorithm("DigestMethod", SHA3)),
        "SIGNATURE_UNSUPPORTED_ALGORITHM",
        f"unsupported digest method {SHA3}",
        VALUE_MATCHES_NOTE,
    ),
    (
        "an unknown signature method",
        lambda: mutate(SIGNED, set_algorithm("SignatureMethod", RSA_PSS)),
        "SIGNATURE_UNSUPPORTED_ALGORITHM",
        f"unsupported signature method {RSA_PSS}",
        DIGEST_MATCHES_NOTE,
    ),
    (
        "an unknown SignedInfo canonicalization",
        lambda: mutate(SIGNED, set_algorithm("CanonicalizationMethod", "urn:vendor:c14n")),
        "SIGNATURE_UNSUPPORTED_ALGORITHM",
        "unsupported canonicalization method urn:vendor:c14n",
        DIGEST_MATCHES_NOTE,
    ),
    (
        "no KeyInfo",
        lambda: mutate(SIGNED, without_certificate),
        "SIGNATURE_NO_CERTIFICATE",
        "no certificate in KeyInfo/X509Data",
        DIGEST_MATCHES_NOTE,
    ),
    (
        "a corrupt certificate",
        lambda: SIGNED.replace(b"<X509Certificate>", b"<X509Certificate>!!", 1),
        "SIGNATURE_NO_CERTIFICATE",
        "X509Certificate[1] is not a certificate",
        DIGEST_MATCHES_NOTE,
    ),
    (
        "a truncated certificate",
        lambda: re.sub(rb"(<X509Certificate>.{40})[^<]*", rb"\1", SIGNED, count=1),
        "SIGNATURE_NO_CERTIFICATE",
        "(truncated or corrupt)",
        DIGEST_MATCHES_NOTE,
    ),
]


@pytest.mark.parametrize(
    ("package", "code", "reason", "note"),
    [u[1:] for u in UNVERIFIABLE],
    ids=[u[0] for u in UNVERIFIABLE],
)
def test_a_signature_that_cannot_be_checked_is_unverifiable(
    package: Callable[[], bytes], code: str, reason: str, note: str
) -> None:
    check = check_signature(package())
    assert_unverifiable(check, code, reason)
    assert note in check.notes


@pytest.mark.parametrize(
    ("package", "code", "reason", "note"),
    [u[1:] for u in UNVERIFIABLE if u[4] == DIGEST_MATCHES_NOTE],
    ids=[u[0] for u in UNVERIFIABLE if u[4] == DIGEST_MATCHES_NOTE],
)
def test_an_altered_document_stays_invalid_when_only_the_value_cannot_be_checked(
    package: Callable[[], bytes], code: str, reason: str, note: str
) -> None:
    """Removing or breaking the certificate, or naming an unknown signature method, does
    not hide a forged document: its digest is still computed."""
    assert_invalid(check_signature(tampered(package())), "SIGNATURE_DIGEST_MISMATCH")


DOWNGRADES = [
    # An attacker edits a URI of a valid signature (and perhaps the document) hoping for
    # "unverifiable": the SignatureValue no longer matches SignedInfo.
    (
        "kit transform URI written in",
        lambda: mutate(SIGNED, set_transform(KIT_TRANSFORM)),
        "SIGNATURE_VALUE_MISMATCH",
    ),
    (
        "kit transform URI written in, document altered",
        lambda: tampered(mutate(SIGNED, set_transform(KIT_TRANSFORM))),
        "SIGNATURE_VALUE_MISMATCH",
    ),
    (
        "unknown digest written in, document altered",
        lambda: tampered(mutate(SIGNED, set_algorithm("DigestMethod", SHA3))),
        "SIGNATURE_VALUE_MISMATCH",
    ),
    # Wrapping is checked before anything can make a signature unverifiable.
    (
        "kit transform and a second Reference",
        lambda: mutate(resign(SIGNED, set_transform(KIT_TRANSFORM)), extra_reference),
        "SIGNATURE_WRAPPING",
    ),
    (
        "kit transform and a Reference to another element",
        lambda: mutate(
            resign(SIGNED, set_transform(KIT_TRANSFORM)), reference_to("#mh", element_id="mh")
        ),
        "SIGNATURE_WRAPPING",
    ),
    (
        "kit transform and Object/Manifest",
        lambda: mutate(resign(SIGNED, set_transform(KIT_TRANSFORM)), object_manifest),
        "SIGNATURE_WRAPPING",
    ),
    (
        "kit transform and a second Signature",
        lambda: mutate(resign(SIGNED, set_transform(KIT_TRANSFORM)), second_signature("body")),
        "SIGNATURE_MULTIPLE",
    ),
    (
        "kit transform, document in a wrapper",
        lambda: mutate(
            resign(SIGNED, set_transform(KIT_TRANSFORM)),
            moved_signature("wrapper around the document"),
        ),
        "SIGNATURE_MISPLACED",
    ),
    (
        "kit transform and RetrievalMethod",
        lambda: mutate(resign(SIGNED, set_transform(KIT_TRANSFORM)), retrieval_method),
        "SIGNATURE_KEYINFO",
    ),
    (
        "no certificate and an XPath transform",
        lambda: mutate(mutate(SIGNED, without_certificate), add_transform(XPATH, "//To")),
        "SIGNATURE_WRAPPING",
    ),
    (
        "unknown signature method and an XSLT transform",
        lambda: mutate(
            mutate(SIGNED, set_algorithm("SignatureMethod", RSA_PSS)), add_transform(XSLT)
        ),
        "SIGNATURE_WRAPPING",
    ),
    (
        "unknown transform URI with an XPath inside, signed that way",
        lambda: resign(
            SIGNED,
            lambda root: (
                set_transform("urn:vendor:c14n")(root),
                sub(signature_of(root).findall(f".//{DS}Transform")[-1], "XPath"),
            ),
        ),
        "SIGNATURE_WRAPPING",
    ),
]


@pytest.mark.parametrize(
    ("package", "code"), [d[1:] for d in DOWNGRADES], ids=[d[0] for d in DOWNGRADES]
)
def test_a_forgery_cannot_be_downgraded_to_unverifiable(
    package: Callable[[], bytes], code: str
) -> None:
    assert_invalid(check_signature(package()), code)


def test_an_altered_document_under_an_unknown_transform_is_never_valid() -> None:
    """What the node cannot compute it cannot disprove: a document altered under a signature
    whose transform nobody knows stays unverifiable (never valid), the value matching."""
    check = check_signature(tampered(resign(SIGNED, set_transform(KIT_TRANSFORM))))
    assert_unverifiable(check, "SIGNATURE_UNSUPPORTED_TRANSFORM")
    assert VALUE_MATCHES_NOTE in check.notes and DIGEST_MATCHES_NOTE not in check.notes


def test_a_signature_nobody_can_check_is_unverifiable_never_valid() -> None:
    """Both the SignedInfo canonicalization and the transform unknown: neither the value nor
    the digest can be computed, by this node or anyone. Unverifiable, like an absent
    signature (accepted under verify-if-present with a warning, refused under require)."""

    def both(root: etree._Element) -> None:
        set_transform(KIT_TRANSFORM)(root)
        set_algorithm("CanonicalizationMethod", KIT_TRANSFORM)(root)

    check = check_signature(tampered(mutate(SIGNED, both)))
    assert_unverifiable(
        check, "SIGNATURE_UNSUPPORTED_ALGORITHM", "unsupported canonicalization method"
    )
    assert VALUE_MATCHES_NOTE not in check.notes and DIGEST_MATCHES_NOTE not in check.notes


def test_a_qcvn_form_signature_whose_value_does_not_match_is_unverifiable() -> None:
    """Which form a QCVN-namespace Signature's producer signed cannot be proven: a value
    that does not match the XML-DSig form is no proof of forgery (the digest is)."""

    def alter(match: re.Match[bytes]) -> bytes:
        return match.group(1) + (b"B" if match.group(2) == b"A" else b"A")

    qcvn_form = re.sub(rb"(<SignatureValue>)(.)", alter, SIGNED).replace(DSIG_DECLARATION, b"")
    check = check_signature(qcvn_form)
    assert_unverifiable(check, "SIGNATURE_QCVN_NAMESPACE", "QCVN namespace")
    assert DIGEST_MATCHES_NOTE in check.notes
    assert_invalid(check_signature(tampered(qcvn_form)), "SIGNATURE_DIGEST_MISMATCH")


# --- the QCVN-namespace form ---------------------------------------------------------------------


@pytest.mark.parametrize("canonicalization", ["c14n", "exc-c14n"])
def test_signature_without_namespace_declaration_is_verified_as_xmldsig(
    canonicalization: str,
) -> None:
    # Signed in XML-DSig form, then the declaration dropped as real producers do: the
    # Signature subtree falls into the QCVN default namespace of the root.
    package = signed(canonicalization=canonicalization)
    assert package.count(DSIG_DECLARATION) == 1
    qcvn_form = package.replace(DSIG_DECLARATION, b"")
    root = etree.fromstring(qcvn_form, hardened_parser())
    assert header_of(root)[-1].tag == f"{Q}Signature"
    check = check_signature(qcvn_form)
    assert (check.outcome, check.namespace) == ("valid", "qcvn")
    assert QCVN_NOTE in check.notes
    assert check.signer == SIGNER.certificate
    assert_invalid(check_signature(change_subject(qcvn_form)), "SIGNATURE_DIGEST_MISMATCH")


# --- the samples ---------------------------------------------------------------------------------


def unbound_prefix_edoc() -> bytes:
    """edoc.edxml with its attachment part repaired, keeping the undeclared `xlink:` prefix (as
    tests/test_edxml_parser.py `unbound_prefix`)."""
    package = (SAMPLES / "edoc.edxml").read_bytes()
    package = package.replace(
        b"<edXML:AttachmentEncoded>", f'<edXML:AttachmentEncoded xmlns:edXML="{QCVN_NS}">'.encode()
    )
    return package.replace(b"${__StringFromFile(test.txt,,,)}", b"JVBERi0xLjQK")


def test_sample_edoc_signature_is_fake() -> None:
    check = check_signature(unbound_prefix_edoc())
    assert_invalid(check, "SIGNATURE_DIGEST_MISMATCH")
    assert check.namespace == "xmldsig"
    assert check.weak_algorithm and SHA1_NOTE in check.notes
    assert check.signer is not None and "VNPT" in check.signer.issuer.rfc4514_string()


@pytest.mark.parametrize(
    "name",
    ["edoc_new.edxml", "edoc_update.edxml", "edoc_revocation.edxml", "edoc_replacement.edxml"],
)
def test_sample_qcvn_namespace_signatures_are_unverifiable(name: str) -> None:
    check = check_signature((SAMPLES / name).read_bytes())
    # Their exclusive-C14N transform is written with a wrong URI (…/TR/xml-exc-c14n#), and
    # their certificate is truncated: nobody can check them, nothing proves them false.
    assert_unverifiable(
        check,
        "SIGNATURE_UNSUPPORTED_TRANSFORM",
        "unsupported transform http://www.w3.org/TR/xml-exc-c14n# (the VPCP "
        "kit's misspelling of exclusive C14N",
    )
    assert "X509Certificate[1] is not a certificate" in (check.reason or "")
    assert check.namespace == "qcvn" and QCVN_NOTE in check.notes
    assert check.signer is None and check.weak_algorithm


def test_sample_truncated_certificate_with_the_transform_repaired() -> None:
    # With a standard transform the document digest can be computed: the kit's is fake.
    package = (
        (SAMPLES / "edoc_new.edxml")
        .read_bytes()
        .replace(b"http://www.w3.org/TR/xml-exc-c14n#", b"http://www.w3.org/2001/10/xml-exc-c14n#")
    )
    check = check_signature(package)
    assert_invalid(check, "SIGNATURE_DIGEST_MISMATCH")
    assert check.signer is None and check.certificates == ()


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("status*.edxml")), ids=lambda p: p.name)
def test_unsigned_status_packages_are_absent(path: Path) -> None:
    check = check_signature(path.read_bytes())
    assert (check.outcome, check.reason, check.code, check.namespace) == (
        "absent",
        None,
        None,
        None,
    )


SKELETONS = {
    "xmldsig": f'<Signature xmlns="{DSIG_NS}"><SignedInfo/><SignatureValue/></Signature>',
    "qcvn": '<Signature><SignedInfo><Reference URI=""/></SignedInfo>'
    "<SignatureValue> </SignatureValue><KeyInfo/></Signature>",
}


def with_skeleton(namespace: str) -> bytes:
    return status_package().replace(
        b"</edXML:edXMLHeader>", SKELETONS[namespace].encode() + b"</edXML:edXMLHeader>"
    )


@pytest.mark.parametrize("namespace", ["xmldsig", "qcvn"])
def test_empty_skeleton_is_absent(namespace: str) -> None:
    check = check_signature(with_skeleton(namespace))
    assert (check.outcome, check.reason, check.code, check.namespace) == (
        "absent",
        SKELETON_REASON,
        None,
        namespace,
    )


@pytest.mark.parametrize("namespace", ["xmldsig", "qcvn"])
def test_signing_replaces_an_empty_skeleton(namespace: str) -> None:
    package = sign_package(with_skeleton(namespace), SIGNER.key_pem, SIGNER.cert_pem)
    assert check_signature(package).outcome == "valid"


# --- hostile or broken input never crashes -------------------------------------------------------


@pytest.mark.parametrize(
    "package",
    [
        b"",
        b"<edXML",
        b"\x00\x01garbage",
        b'<?xml version="1.0"?><!DOCTYPE edXML [<!ENTITY a "b">]><edXML>&a;</edXML>',
        SIGNED.replace(b"<DigestValue>", b"<DigestValue>%%%"),
        SIGNED.replace(b"<SignatureValue>", b"<SignatureValue>%%%"),
    ],
    ids=["empty", "truncated", "binary", "doctype", "digest-not-base64", "value-not-base64"],
)
def test_broken_input_is_invalid_not_a_crash(package: bytes) -> None:
    assert_invalid(check_signature(package), "SIGNATURE_MALFORMED")


# --- signing refusals ----------------------------------------------------------------------------


def test_signing_refuses_what_it_cannot_sign() -> None:
    with pytest.raises(ValueError, match="already carries a signature"):
        sign_package(SIGNED, SIGNER.key_pem, SIGNER.cert_pem)
    with pytest.raises(ValueError, match="does not belong to the certificate"):
        sign_package(DOCUMENT, OTHER.key_pem, SIGNER.cert_pem)
    with pytest.raises(ValueError, match="needs an EC key"):
        sign_package(DOCUMENT, SIGNER.key_pem, SIGNER.cert_pem, algorithm="ecdsa-sha256")
    with pytest.raises(ValueError, match="edXMLHeader is missing"):
        sign_package(b"<a/>", SIGNER.key_pem, SIGNER.cert_pem)
