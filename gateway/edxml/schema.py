"""XSD validation of the envelope of an edXML package (`schemas/edxml-*.xsd`, SPEC §2.1–2.2).

The schemas check vocabulary and value types only; which elements are required, which may occur
once, length limits and cross-field rules are checked in code. Every XSD error becomes one
`Problem(code="EDXML_SCHEMA")` whose path is the clerk path of the element concerned
(`gateway.edxml.paths.element_path`) and whose message says what is wrong and what is expected.

libxml2 stops checking the rest of an element's content at the first child it does not expect;
to report every unknown element at once, each one found is taken out of a private copy of the
tree and the copy is validated again (at most `MAX_PASSES` times).

Callers validate the envelope with the `ContentTransferEncoded` texts emptied (the schema does
not look at base64, so leaving them in only costs a larger copy when one is needed).
"""

from __future__ import annotations

import copy
import re
import threading
from dataclasses import dataclass
from functools import cache
from typing import Literal

from lxml import etree

from gateway.edxml.namespaces import DSIG_NS, QCVN_NS
from gateway.edxml.paths import element_path
from gateway.errors import Problem
from schemas import schema_path

XS_NS = "http://www.w3.org/2001/XMLSchema"
SCHEMA_FILES = {"edoc": "edxml-document.xsd", "status": "edxml-status.xsd"}
MAX_PASSES = 100
"""Validation passes per package; each pass reveals at most one unknown child per parent."""
_MAX_VALUE = 80

Kind = Literal["edoc", "status"]

_UNEXPECTED = "SCHEMAV_ELEMENT_CONTENT"
_ELEMENT_PREFIX = re.compile(r"^Element '[^']*'(?:, attribute '[^']*')?: ")
_VALUE = re.compile(r"is not a valid value of the (?:union|atomic|list) type '([^']*)'")
_ATTRIBUTE = re.compile(
    r"^Element '[^']*', attribute '([^']*)': The attribute '[^']*' is "
    r"not allowed"
)
_CLARK = re.compile(r"\{([^}]*)\}")
_BUILTIN_EXPECTATIONS = {
    "boolean": "true, false, 1 or 0",
    "nonNegativeInteger": "a non-negative integer",
    "integer": "an integer",
    "token": "a text value",
    "string": "a text value",
}


@dataclass(frozen=True)
class _Schema:
    """A compiled schema plus what the XSD says, for readable messages."""

    xsd: etree.XMLSchema
    lock: threading.Lock
    children: dict[str, tuple[str, ...]]
    """element local name → local names of the children it may hold"""
    expectations: dict[str, str]
    """simple type local name → its `xs:documentation` (what a valid value looks like)"""

    def errors(self, root: etree._Element) -> list[etree._LogEntry]:
        # One validator instance is shared by all threads; its error log is not.
        with self.lock:
            if self.xsd.validate(root):
                return []
            return list(self.xsd.error_log)


_COMPILING = threading.Lock()


def load_schemas() -> None:
    """Compile both schemas now (the runtime calls this at start), not during the first
    packages, which arrive on several threads at once."""
    for kind in SCHEMA_FILES:
        _load(kind)  # type: ignore[arg-type]


def _load(kind: Kind) -> _Schema:
    """Compiled once; under a lock, because libxml2's schema compiler is not thread-safe
    (seen: "the given type is not a built-in type" when two threads compile at once)."""
    with _COMPILING:
        return _compile(kind)


@cache
def _compile(kind: Kind) -> _Schema:
    """Parse and compile one schema without network access or entity expansion."""
    parser = etree.XMLParser(
        no_network=True,
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )
    document = etree.parse(str(schema_path(SCHEMA_FILES[kind])), parser)
    return _Schema(etree.XMLSchema(document), threading.Lock(), *_describe(document))


def _describe(document: etree._ElementTree) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    xs = f"{{{XS_NS}}}"
    schema = document.getroot()
    complex_types = {t.get("name"): t for t in schema.iter(f"{xs}complexType") if t.get("name")}
    children: dict[str, list[str]] = {}
    for declaration in schema.iter(f"{xs}element"):
        name = declaration.get("name")
        type_name = (declaration.get("type") or "").rpartition(":")[2]
        body = complex_types.get(type_name, declaration.find(f"{xs}complexType"))
        if name is None or body is None:
            continue
        allowed = children.setdefault(name, [])
        for inner in body.iter(f"{xs}element"):
            if inner.get("name") not in allowed:
                allowed.append(inner.get("name", ""))
    expectations = {}
    for simple in schema.iter(f"{xs}simpleType"):
        text = simple.findtext(f"{xs}annotation/{xs}documentation")
        if simple.get("name") and text:
            expectations[simple.get("name", "")] = " ".join(text.split())
    return {name: tuple(names) for name, names in children.items()}, expectations


def validate_envelope(root: etree._Element, kind: Kind) -> list[Problem]:
    """Every XSD error of the package rooted at `root`, in document order; never raises."""
    schema = _load(kind)
    pristine, undeclared = _normalized(root)
    work = pristine
    origin: dict[etree._Element, etree._Element] = {}
    prefixes = {
        prefix: uri
        for element in pristine.iter(etree.Element)
        for prefix, uri in element.nsmap.items()
        if prefix
    }
    found: dict[tuple[etree._Element | None, str], tuple[etree._Element | None, Problem]] = {}
    for _ in range(MAX_PASSES):
        entries = schema.errors(work)
        if not entries:
            break
        unexpected: list[etree._Element] = []
        for entry in entries:
            element = _locate(entry, work, prefixes)
            source = origin.get(element, element) if element is not None else None
            path = element_path(source if source is not None else pristine)
            problem = Problem("EDXML_SCHEMA", path, _message(entry, source, schema, undeclared))
            found.setdefault((source, problem.message), (source, problem))
            if (
                entry.type_name == _UNEXPECTED
                and element is not None
                and element.getparent() is not None
            ):
                unexpected.append(element)
        if not unexpected:
            break
        if work is pristine:  # never mutate the caller's tree: continue on a copy
            work = copy.deepcopy(pristine)
            pairs = list(zip(work.iter(), pristine.iter(), strict=True))
            origin = dict(pairs)
            twins = {original: duplicate for duplicate, original in pairs}
            unexpected = [twins[element] for element in unexpected]
        for element in unexpected:
            parent = element.getparent()
            if parent is not None:
                # Its same-named siblings are just as unexpected: remove them all at once, so
                # 10 000 unknown elements cost one pass, not 10 000 (each pass revalidates).
                for sibling in [c for c in parent if c.tag == element.tag]:
                    parent.remove(sibling)
    else:
        message = (
            f"more elements may be out of place: checking stopped after {MAX_PASSES} "
            f"passes; fix the elements reported and send the package again"
        )
        found[(None, message)] = (None, Problem("EDXML_SCHEMA", element_path(pristine), message))
    for element in _stray_signature_siblings(pristine):
        message = (
            f"element '{_display_name(element)}' (namespace {DSIG_NS}) is not allowed "
            f"in edXMLHeader: of that namespace only Signature may appear here"
        )
        found.setdefault(
            (element, message), (element, Problem("EDXML_SCHEMA", element_path(element), message))
        )
    return _in_document_order(pristine, list(found.values()))


def _normalized(root: etree._Element) -> tuple[etree._Element, dict[etree._Element, str]]:
    """`root` itself, or a copy that is the root of its own document and has no element
    named with an undeclared prefix.

    Recovery parsing keeps such an element as `prefix:Name` in no namespace. The copy gives it
    the namespace the document binds that prefix to elsewhere, when that is one namespace (the
    SDK sample binds `edXML` on `edXMLEnvelope` only and uses it on the sibling
    `AttachmentEncoded`); otherwise it becomes `Name` in no namespace (an error), and the
    returned mapping remembers the undeclared prefix for the message."""
    unbound = [e for e in root.iter(etree.Element) if ":" in _split(e)[1]]
    if not unbound and root.getroottree().getroot() is root:
        return root, {}
    result = copy.deepcopy(root)
    undeclared: dict[etree._Element, str] = {}
    if unbound:
        bindings: dict[str, set[str]] = {}
        for element in root.iter(etree.Element):
            for prefix, uri in element.nsmap.items():
                if prefix is not None:
                    bindings.setdefault(prefix, set()).add(uri)
        for element in result.iter(etree.Element):
            namespace, name = _split(element)
            if namespace is not None or ":" not in name:
                continue
            prefix, _, local = name.partition(":")
            local = local.replace(":", "_") or "_"
            uris = bindings.get(prefix, set())
            try:
                if len(uris) == 1:
                    element.tag = f"{{{next(iter(uris))}}}{local}"
                else:
                    element.tag = local
                    undeclared[element] = prefix
            except ValueError:  # not a valid name once split: keep an inert placeholder
                element.tag = "_"
                undeclared[element] = prefix
    return result, undeclared


def _split(element: etree._Element) -> tuple[str | None, str]:
    """(namespace, local name) without `etree.QName`, which refuses recovered `p:Name` tags."""
    tag = str(element.tag)
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return None, tag


def _locate(
    entry: etree._LogEntry, root: etree._Element, prefixes: dict[str, str]
) -> etree._Element | None:
    """The element an error concerns: by evaluating its XPath (cost: the siblings along one
    path, not the whole tree), else the first element on its line."""
    path = entry.path or ""
    if "/@" in path:
        path = path.rsplit("/@", 1)[0]
    try:
        found = root.getroottree().xpath(path, namespaces=prefixes) if path else []
    except etree.XPathError:
        found = []
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        return found[0]
    if entry.line > 0:
        for element in root.iter(etree.Element):
            if element.sourceline == entry.line:
                return element
    return None


def _message(
    entry: etree._LogEntry,
    element: etree._Element | None,
    schema: _Schema,
    undeclared: dict[etree._Element, str],
) -> str:
    raw = entry.message.strip()
    if element is None:
        return _clean(raw)
    name = _display_name(element)
    if entry.type_name == _UNEXPECTED:
        return _not_allowed(element, schema, undeclared)
    if value_type := _VALUE.search(raw):
        type_name = _CLARK.sub("", value_type.group(1)).rpartition(":")[2]
        expected = schema.expectations.get(type_name) or _BUILTIN_EXPECTATIONS.get(
            type_name, f"a value of type {type_name}"
        )
        return f"{name} '{_shorten(element.text or '')}' is not valid: expected {expected}"
    if "Character content other than whitespace is not allowed" in raw:
        return f"{name} may hold only child elements, not text ('{_shorten(_own_text(element))}')"
    if "Element content is not allowed" in raw:
        return f"{name} holds a value and may not contain child elements"
    if attribute := _ATTRIBUTE.match(raw):
        return f"attribute '{attribute.group(1)}' is not allowed on {name}"
    if "No matching global declaration available for the validation root" in raw:
        namespace = _split(element)[0]
        return (
            f"the root element is '{name}' in "
            f"{f'the namespace {namespace}' if namespace else 'no namespace'}; "
            f"expected edXML in the namespace {QCVN_NS}"
        )
    return f"{name}: {_clean(raw)}"


def _not_allowed(
    element: etree._Element, schema: _Schema, undeclared: dict[etree._Element, str]
) -> str:
    """An element the schema does not expect where it stands, and what may stand there."""
    namespace, local = _split(element)
    parent = element.getparent()
    parent_name = _split(parent)[1] if parent is not None else ""
    where = f" in {parent_name}" if parent is not None else ""
    if namespace is None:
        prefix = undeclared.get(element)
        name = f"{prefix}:{local}" if prefix else local
        why = (
            f"its prefix '{prefix}' is not declared, so it is in no namespace"
            if prefix
            else "it is in no namespace"
        )
        text = (
            f"element '{name}'{where} is not allowed: {why}; edXML elements must be in "
            f"the namespace {QCVN_NS}"
        )
    elif namespace != QCVN_NS:
        text = (
            f"element '{_display_name(element)}' (namespace {namespace}){where} is not "
            f"allowed: only edXML elements may appear here"
        )
    else:
        text = f"element '{local}' is not allowed{where}"
    if allowed := schema.children.get(parent_name, ()):
        text += f" (allowed: {', '.join(allowed)})"
    return text


def _stray_signature_siblings(root: etree._Element) -> list[etree._Element]:
    """XML-DSig elements other than Signature directly in edXMLHeader: the schema lets the
    whole XML-DSig namespace through there (XSD 1.0 cannot name one element of a namespace
    it does not import)."""
    stray = []
    for envelope in root.iterchildren(f"{{{QCVN_NS}}}edXMLEnvelope"):
        for header in envelope.iterchildren(f"{{{QCVN_NS}}}edXMLHeader"):
            stray += [
                c for c in header.iterchildren(f"{{{DSIG_NS}}}*") if _split(c)[1] != "Signature"
            ]
    return stray


def _in_document_order(
    root: etree._Element, found: list[tuple[etree._Element | None, Problem]]
) -> list[Problem]:
    if len(found) < 2:
        return [problem for _, problem in found]
    order = {element: index for index, element in enumerate(root.iter())}
    return [
        problem
        for _, problem in sorted(
            found, key=lambda item: order.get(item[0], -1) if item[0] is not None else -1
        )
    ]


def _display_name(element: etree._Element) -> str:
    namespace, local = _split(element)
    if namespace in (None, QCVN_NS) or not element.prefix:
        return local
    return f"{element.prefix}:{local}"


def _own_text(element: etree._Element) -> str:
    parts = [element.text or ""] + [child.tail or "" for child in element]
    return " ".join(" ".join(parts).split())


def _shorten(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _MAX_VALUE else value[: _MAX_VALUE - 1] + "…"


def _clean(message: str) -> str:
    """libxml2's message without the `Element '{namespace}Name':` prefix and namespaces."""
    message = _ELEMENT_PREFIX.sub("", message)
    message = message.replace(f"{{{QCVN_NS}}}", "").replace(f"{{{DSIG_NS}}}", "ds:")
    return message.rstrip(".")
