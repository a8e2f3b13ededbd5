"""The TraceHeaders relays appended after the sender signed, found so that what the sender
signed can be verified (SPEC §2.1, §3.5).

Each relay on the way (the national axis, a provincial node, this node's `delivered_copy`)
appends its TraceHeader, so the enveloped signature no longer matches the bytes the next node
receives. What the sender signed is the package without those TraceHeaders. Nothing says which
ones they are, but they are the last ones in document order: a relay writes its own after the
last TraceHeader, at the end of the list, or in a new TraceHeaderList when there is none.

So when the digest over the package as received does not match, it is computed again over the
package without its last TraceHeader, then without its last two, and so on; each count is also
tried without the TraceHeaderLists it leaves empty (a list a relay created). This search only
chooses which document to verify. `check_signature` then checks that document from the start,
wrapping checks included, and that check is the verdict.

Only these can be set aside:
- `TraceHeader` elements (QCVN namespace) that are children of a `TraceHeaderList` child of the
  `edXMLHeader` holding the Signature, and only the last ones in document order;
- a `TraceHeaderList` of which every child was one of those, and that has no attribute, text,
  comment or processing instruction left.

A Bussiness, a TraceHeader anywhere else, any other element or text stays in the document, so
it must be exactly what the sender signed.

The work is bounded. At most `MAX_CANDIDATES` digests are computed, each one c14n pass over
the document with no xmlsec, then one full check. So a package with thousands of TraceHeaders
costs no more than one with sixteen.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from adapters.signatures.dsig_digest import DigestInput, document_digest
from adapters.signatures.dsig_tree import parse_document, remove_keeping_tail, signature_elements
from adapters.signatures.dsig_wrapping import check_placement
from gateway.edxml.reader import qcvn_children

MAX_CANDIDATES = 16
"""Digests computed at most: real paths cross a few relays (commune, province, national axis,
province), so this leaves a wide margin."""


@dataclass(frozen=True, slots=True)
class SetAside:
    """The relays' part of a package: its last `count` TraceHeaders and, with `lists`, the
    TraceHeaderLists those leave empty."""

    count: int
    lists: bool

    def apply(self, root: Any) -> None:
        """Take the set-aside elements out of `root`'s tree (the text around them stays)."""
        traces = relay_trace_headers(root)[-self.count :]
        lists = _emptied(traces) if self.lists else []
        if len(traces) != self.count or (self.lists and not lists):
            raise ValueError("the package does not have the TraceHeaders to set aside")
        for _, trace in reversed(traces):
            remove_keeping_tail(trace)
        for trace_list in reversed(lists):
            remove_keeping_tail(trace_list)


def relay_trace_headers(root: Any) -> list[tuple[Any, Any]]:
    """(TraceHeaderList, TraceHeader) for each TraceHeader a relay could have appended, in
    document order: those in the TraceHeaderLists of the edXMLHeader holding the one
    Signature (none when there is not exactly one, correctly placed)."""
    signatures = signature_elements(root)
    if len(signatures) != 1:
        return []
    check_placement(root, signatures[0])
    header = signatures[0].getparent()
    return [
        (trace_list, trace)
        for trace_list in qcvn_children(header, "TraceHeaderList")
        for trace in qcvn_children(trace_list, "TraceHeader")
    ]


def find_set_aside(document: bytes, digest: DigestInput) -> tuple[SetAside | None, int]:
    """The fewest trailing TraceHeaders (with or without the lists they empty) without which
    the document's digest is `digest.value`, or None when no candidate within
    `MAX_CANDIDATES` gives it; and how many candidates were tried."""
    root = parse_document(document)
    traces = relay_trace_headers(root)
    if not traces:
        return None, 0
    remove_keeping_tail(signature_elements(root)[0])  # the enveloped-signature transform
    tried = 0
    for count in range(1, len(traces) + 1):
        remove_keeping_tail(traces[-count][1])
        for lists in (False, True):
            empty = _emptied(traces[-count:]) if lists else []
            if lists and not empty:
                continue
            if tried == MAX_CANDIDATES:
                return None, tried
            tried += 1
            with _detached(empty):
                if document_digest(root, digest) == digest.value:
                    return SetAside(count, lists), tried
    return None, tried


def _emptied(traces: list[tuple[Any, Any]]) -> list[Any]:
    """The lists, in document order, that held some of `traces` and hold nothing else once
    those are taken out: no other child, text, or attribute."""
    removed = {id(trace) for _, trace in traces}
    seen: set[int] = set()
    lists: list[Any] = []
    for trace_list, _ in traces:
        if id(trace_list) in seen:
            continue
        seen.add(id(trace_list))
        if (
            all(id(child) in removed for child in trace_list)
            and not (trace_list.text or "").strip()
            and not any((child.tail or "").strip() for child in trace_list)
            and not trace_list.attrib
        ):
            lists.append(trace_list)
    return lists


@contextmanager
def _detached(elements: list[Any]) -> Iterator[None]:
    """`elements` out of the tree for the block (the text after each stays in place), then put
    back where they were."""
    undo = []
    for element in reversed(elements):  # last first: each one's previous sibling stays put
        parent, previous = element.getparent(), element.getprevious()
        text = previous.tail if previous is not None else parent.text
        undo.append((element, parent, parent.index(element), previous, text))
        remove_keeping_tail(element)
    try:
        yield
    finally:
        for element, parent, index, previous, text in reversed(undo):
            if previous is not None:
                previous.tail = text
            else:
                parent.text = text
            parent.insert(index, element)
