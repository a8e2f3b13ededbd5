"""The node's TraceHeader, appended to the copy a recipient downloads (SPEC §2.1).

The copy is the original bytes with one element spliced in after the last TraceHeader: line
endings, attachment text and everything else stay byte-identical, and only the header has to
be read to find the spot (expat reports byte offsets; parsing stops at the end of the header).
The original stays untouched in the payload store: an enveloped signature covers it, not the
delivered copy, so recipients who want to verify download the original.
"""

from __future__ import annotations

from datetime import datetime
from xml.parsers import expat

from gateway.edxml.parser import QCVN_NS

TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
_HEADER_PATH = ("edXML", "edXMLEnvelope", "edXMLHeader")


class _HeaderDone(Exception):
    """Raised from a handler to stop parsing once the header has been read."""


class _SpliceFinder:
    """Finds where the new TraceHeader goes: after the last TraceHeader of the header's
    TraceHeaderList, or, without a list, after MessageHeader (with a list of its own)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._parser = expat.ParserCreate(namespace_separator=" ")
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._stack: list[str] = []
        self.after_trace: int | None = None
        self.after_message_header: int | None = None

    @staticmethod
    def _local(name: str) -> str | None:
        uri, _, local = name.partition(" ")
        return local if uri == QCVN_NS else None

    def _start(self, name: str, _attributes: object) -> None:
        self._stack.append(self._local(name) or "")

    def _end(self, _name: str) -> None:
        path = tuple(self._stack)
        self._stack.pop()
        end = self._data.index(b">", self._parser.CurrentByteIndex) + 1
        if path == (*_HEADER_PATH, "TraceHeaderList", "TraceHeader"):
            self.after_trace = end
        elif path == (*_HEADER_PATH, "MessageHeader"):
            self.after_message_header = end
        elif path == _HEADER_PATH:
            raise _HeaderDone

    def run(self) -> None:
        try:
            self._parser.Parse(self._data, True)
        except _HeaderDone:
            pass


def trace_header_xml(node_code: str, at_local: datetime) -> str:
    return (f'<TraceHeader xmlns="{QCVN_NS}"><OrganId>{_escape(node_code)}</OrganId>'
            f"<Timestamp>{at_local.strftime(TIMESTAMP_FORMAT)}</Timestamp></TraceHeader>")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def with_trace_header(original: bytes, node_code: str, at_local: datetime) -> bytes:
    """Return the package with this node's TraceHeader (local time) spliced in."""
    finder = _SpliceFinder(original)
    finder.run()
    element = trace_header_xml(node_code, at_local).encode()
    if finder.after_trace is not None:
        position = finder.after_trace
    elif finder.after_message_header is not None:
        position = finder.after_message_header
        element = (f'<TraceHeaderList xmlns="{QCVN_NS}">'.encode() + element
                   + b"</TraceHeaderList>")
    else:
        raise ValueError("no MessageHeader in the edXMLHeader: not an accepted package")
    return original[:position] + element + original[position:]
