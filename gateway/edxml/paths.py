"""Element paths in error reports, the way a clerk reads them: `MessageHeader/To[2]/OrganId`.

Paths start below `edXMLHeader` for header elements (`MessageHeader/…`, `TraceHeaderList/…`,
`Signature`), at `edXMLBody/…` for the manifest and at `AttachmentEncoded/…` for attachments.
An index `[n]` (1-based, among siblings of the same name) is written for every element that
may repeat, so the same element always has the same path whatever the package holds.
"""

from __future__ import annotations

from lxml import etree

REPEATABLE = frozenset(
    {
        ("MessageHeader", "To"),
        ("MessageHeader", "ResponseFor"),
        ("ToPlaces", "Place"),
        ("Appendixes", "Appendix"),
        ("TraceHeaderList", "TraceHeader"),
        ("ReceiverList", "Receiver"),
        ("ReplacementInfoList", "ReplacementInfo"),
        ("OrganIdList", "OrganId"),
        ("edXMLManifest", "Reference"),
        ("AttachmentEncoded", "Attachment"),
    }
)
"""(parent, child) pairs where the child may occur more than once."""
_ANCHORS = frozenset({"edXMLHeader"})
_ROOTS = frozenset({"edXML", "edXMLEnvelope"})


def local_name(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def element_path(element: etree._Element) -> str:
    """The clerk-facing path of `element` (see module docstring)."""
    steps: list[str] = []
    current: etree._Element | None = element
    while current is not None:
        name = local_name(current)
        if name in _ANCHORS or (name in _ROOTS and current.getparent() is None):
            break
        if name in _ROOTS:
            break
        steps.append(_step(current, name))
        current = current.getparent()
    return "/".join(reversed(steps)) or local_name(element)


def _step(element: etree._Element, name: str) -> str:
    parent = element.getparent()
    if parent is None or (local_name(parent), name) not in REPEATABLE:
        return name
    same = [c for c in parent if isinstance(c.tag, str) and c.tag == element.tag]
    return f"{name}[{same.index(element) + 1}]"
