"""Namespace prefixes in scope while expat streams without namespace processing.

Expat's own namespace mode makes an undeclared prefix fatal, attributes included; real systems
copy the SDK sample's undeclared `xlink:href`, so the scanner resolves prefixes itself: an
element's prefix must be declared, an attribute's is only reported.
"""

from __future__ import annotations

XML_NS = "http://www.w3.org/XML/1998/namespace"


class PrefixScopes:
    """A stack of prefix → namespace maps, one per open element."""

    def __init__(self) -> None:
        self._stack: list[dict[str, str]] = [{"xml": XML_NS}]

    def enter(self, attributes: dict[str, str]) -> dict[str, str]:
        """Open an element: its scope is the parent's plus what its `xmlns` attributes declare."""
        scope = self._stack[-1]
        declared = {
            name[6:] if name.startswith("xmlns:") else "": value
            for name, value in attributes.items()
            if name == "xmlns" or name.startswith("xmlns:")
        }
        if declared:
            scope = {**scope, **declared}
        self._stack.append(scope)
        return scope

    def leave(self) -> None:
        self._stack.pop()


def element_name(qname: str, scope: dict[str, str]) -> tuple[str | None, str]:
    """(namespace, local name) of an element; namespace None when its prefix is undeclared."""
    prefix, _, local = qname.rpartition(":")
    if prefix and prefix not in scope:
        return None, local
    return scope.get(prefix, ""), local


def undeclared_attribute_prefixes(
    attributes: dict[str, str], scope: dict[str, str]
) -> list[tuple[str, str]]:
    """(attribute, prefix) for each attribute whose prefix is not declared in `scope`."""
    found = []
    for name in attributes:
        prefix = name.partition(":")[0] if ":" in name else ""
        if prefix and prefix != "xmlns" and prefix not in scope:
            found.append((name, prefix))
    return found
