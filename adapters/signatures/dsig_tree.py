"""Reading a package for its signature: the hardened parse, and the small element helpers
the checks are written with.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from adapters.signatures.dsig_verdict import MALFORMED, Refused
from gateway.edxml.namespaces import DSIG_NS, QCVN_NS
from gateway.edxml.parser import PROLOG_BYTES, check_prolog, hardened_parser
from gateway.errors import PackageRejected


def parse_document(document: bytes) -> Any:
    """The package, parsed after the prolog check (UTF-8, no DOCTYPE); any parser error other
    than an undeclared prefix refuses it."""
    try:
        check_prolog(document[:PROLOG_BYTES])
    except PackageRejected as exc:
        raise Refused(MALFORMED, str(exc)) from exc
    # huge_tree: the signature covers the attachments, one text node of up to ~100 MiB each;
    # recover mode only tolerates an undeclared attribute prefix (`xlink:href`).
    parser = hardened_parser(recover=True, huge_tree=True)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as exc:
        raise Refused(MALFORMED, f"the package is not well-formed XML: {exc}") from exc
    errors = [
        e
        for e in parser.error_log
        if e.level >= etree.ErrorLevels.ERROR and e.domain != etree.ErrorDomains.NAMESPACE
    ]
    if root is None or errors:
        detail = f"line {errors[0].line}: {errors[0].message}" if errors else "no root element"
        raise Refused(MALFORMED, f"the package is not well-formed XML: {short(detail)}")
    if root.getroottree().docinfo.doctype:
        raise Refused(MALFORMED, "a document type declaration is not accepted")
    return root


def signature_elements(root: Any) -> list[Any]:
    return list(root.iter(f"{{{DSIG_NS}}}Signature", f"{{{QCVN_NS}}}Signature"))


def namespace_of(element: Any) -> str | None:
    return etree.QName(element).namespace


def local_name(element: Any) -> str:
    return etree.QName(element).localname


def has_value(signature: Any) -> bool:
    """Same rule as the edXML reader (`parser._has_signature_value`): a SignatureValue with
    text anywhere in the Signature; the skeleton real packages carry has none."""
    return any(
        isinstance(element.tag, str)
        and local_name(element) == "SignatureValue"
        and (element.text or "").strip()
        for element in signature.iter()
    )


def child_elements(parent: Any) -> list[Any]:
    return [child for child in parent if isinstance(child.tag, str)]


def dsig_children(parent: Any, name: str) -> list[Any]:
    return [child for child in parent if child.tag == f"{{{DSIG_NS}}}{name}"]


def only_child(parent: Any, name: str, where: str) -> Any:
    found = dsig_children(parent, name)
    if len(found) != 1:
        raise Refused(
            MALFORMED,
            f"{where} has {count_word(len(found), 'no')} {name}"
            + ("" if not found else " elements"),
        )
    return found[0]


def algorithm_of(parent: Any, name: str) -> str | None:
    found = dsig_children(parent, name)
    return str(found[0].get("Algorithm")) if found and found[0].get("Algorithm") else None


def check_children(parent: Any, where: str, allowed: set[str]) -> None:
    for child in child_elements(parent):
        if namespace_of(child) != DSIG_NS or local_name(child) not in allowed:
            raise Refused(MALFORMED, f"unexpected element {short(local_name(child))} in {where}")


def element_path(element: Any) -> str:
    names = []
    while element is not None:
        names.append(local_name(element))
        element = element.getparent()
    return "/".join(reversed(names))


def is_qcvn_element(element: Any, name: str) -> bool:
    return element is not None and element.tag == f"{{{QCVN_NS}}}{name}"


def remove_keeping_tail(element: Any) -> None:
    """Remove an element but not the text after it (lxml moves the tail with the element)."""
    parent = element.getparent()
    tail = element.tail or ""
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(element)


def count_word(number: int, zero: str = "0") -> str:
    words = {0: zero, 1: "one", 2: "two", 3: "three", 4: "four"}
    return words.get(number, str(number))


def short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
