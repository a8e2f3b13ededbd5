"""The node's TraceHeader, appended to the copy a recipient downloads (SPEC §2.1).

The original bytes stay untouched in the payload store: an enveloped signature covers them,
not the delivered copy, so recipients who want to verify download the original.
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

from gateway.edxml.parser import QCVN_NS, child, children, load_tree

TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"


def with_trace_header(original: bytes, node_code: str, at_local: datetime) -> bytes:
    """Return the package with `<TraceHeader>` (this node, local time) after the last one."""
    tree, _ = load_tree(original)
    header = child(child(tree.getroot(), "edXMLEnvelope"), "edXMLHeader")
    if header is None:  # accepted packages always have one; keep the copy faithful regardless
        return original
    trace_list = child(header, "TraceHeaderList")
    if trace_list is None:
        trace_list = etree.Element(f"{{{QCVN_NS}}}TraceHeaderList")
        message_header = child(header, "MessageHeader")
        position = header.index(message_header) + 1 if message_header is not None else 0
        header.insert(position, trace_list)
    trace = etree.Element(f"{{{QCVN_NS}}}TraceHeader")
    etree.SubElement(trace, f"{{{QCVN_NS}}}OrganId").text = node_code
    etree.SubElement(trace, f"{{{QCVN_NS}}}Timestamp").text = at_local.strftime(TIMESTAMP_FORMAT)
    existing = children(trace_list, "TraceHeader")
    position = trace_list.index(existing[-1]) + 1 if existing else 0
    trace_list.insert(position, trace)
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"))
