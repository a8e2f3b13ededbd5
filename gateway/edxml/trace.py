"""The node's TraceHeader, appended to the copy a recipient downloads (SPEC §2.1).

The copy is the original bytes with one element spliced in after the last TraceHeader: line
endings, attachment text and everything else stay byte-identical, and only the header has to
be read to find the spot (expat reports byte offsets; parsing stops at the end of the header).
The original stays untouched in the payload store. An enveloped signature covers it, not the
delivered copy. A node running this software verifies the copy anyway, by setting aside the
TraceHeaders appended after signing (`adapters/signatures/dsig_relays`). Other recipients who
want to verify download the original.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.parsers import expat

from gateway.edxml.namespaces import QCVN_NS

TIMESTAMP_FORMAT = "%Y/%m/%d %H:%M:%S"
_HEADER_PATH = ("edXML", "edXMLEnvelope", "edXMLHeader")


class _HeaderDone(Exception):
    """Raised from a handler to stop parsing once the header has been read."""


def end_of_tag(data: bytes | bytearray, start: int) -> int:
    """Offset just past the tag opening at `start`, skipping `>` inside quoted values."""
    quote: int | None = None
    for position in range(start + 1, len(data)):
        byte = data[position]
        if quote is not None:
            quote = None if byte == quote else quote
        elif byte in (0x22, 0x27):
            quote = byte
        elif byte == 0x3E:
            return position + 1
    raise ValueError("unterminated tag")


class _SpliceFinder:
    """Finds where the new TraceHeader goes, reading the header only.

    Expat runs without namespace processing and prefixes are resolved here, because the node
    tolerates one defect real senders have (an undeclared `xlink:` prefix) that expat's
    namespace mode would refuse."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._parser = expat.ParserCreate()
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._scopes: list[dict[str, str]] = [{}]
        self._path: list[str] = []
        self._starts: list[int] = []
        """Offset just past each open element's start tag."""
        self.after_trace: int | None = None
        self.list_start: tuple[int, int, str] | None = None
        """(offset of `<`, offset past the start tag, qualified name) of TraceHeaderList."""
        self.after_message_header: int | None = None

    def _start(self, qname: str, attributes: dict[str, str]) -> None:
        scope = dict(self._scopes[-1])
        for name, value in attributes.items():
            if name == "xmlns":
                scope[""] = value
            elif name.startswith("xmlns:"):
                scope[name[6:]] = value
        self._scopes.append(scope)
        prefix, _, local = qname.rpartition(":")
        self._path.append(local if scope.get(prefix) == QCVN_NS else "")
        at = self._parser.CurrentByteIndex
        self._starts.append(end_of_tag(self._data, at))
        if tuple(self._path) == (*_HEADER_PATH, "TraceHeaderList"):
            self.list_start = (at, self._starts[-1], qname)

    def _end(self, _qname: str) -> None:
        path = tuple(self._path)
        self._path.pop()
        self._scopes.pop()
        after_start = self._starts.pop()
        if self._data[after_start - 2 : after_start] == b"/>":
            # An empty-element tag (`<TraceHeader/>`, written by relays): expat reports its
            # end past the tag, at the next token; reading a tag from there would splice
            # into whatever follows.
            end = after_start
        else:
            end = end_of_tag(self._data, self._parser.CurrentByteIndex)
        if path == (*_HEADER_PATH, "TraceHeaderList", "TraceHeader"):
            self.after_trace = end
        elif path == (*_HEADER_PATH, "MessageHeader"):
            self.after_message_header = end
        elif path == _HEADER_PATH:
            raise _HeaderDone

    def feed(self, chunk: bytes, final: bool = False) -> bool:
        """Parse on; True once the header has been read (nothing more is needed)."""
        self._data += chunk
        try:
            self._parser.Parse(chunk, final)
        except _HeaderDone:
            return True
        return False

    def insertion(self, node_code: str, at_local: datetime) -> tuple[int, int, bytes]:
        """(start, end, bytes): replace original[start:end] with the bytes."""
        element = trace_header_xml(node_code, at_local).encode()
        if self.after_trace is not None:
            return self.after_trace, self.after_trace, element
        if self.list_start is not None:
            start, end, qname = self.list_start
            if self._data[end - 2 : end] == b"/>":  # <TraceHeaderList/>: open it up
                opening = bytes(self._data[start : end - 2]).rstrip() + b">"
                return start, end, opening + element + f"</{qname}>".encode()
            return end, end, element
        if self.after_message_header is not None:
            position = self.after_message_header
            return (
                position,
                position,
                (f'<TraceHeaderList xmlns="{QCVN_NS}">'.encode() + element + b"</TraceHeaderList>"),
            )
        raise ValueError("no MessageHeader in the edXMLHeader: not an accepted package")


def trace_header_xml(node_code: str, at_local: datetime) -> str:
    return (
        f'<TraceHeader xmlns="{QCVN_NS}"><OrganId>{_escape(node_code)}</OrganId>'
        f"<Timestamp>{at_local.strftime(TIMESTAMP_FORMAT)}</Timestamp></TraceHeader>"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def with_trace_header(original: bytes, node_code: str, at_local: datetime) -> bytes:
    """The package with this node's TraceHeader (local time) spliced in: after the last
    TraceHeader, else first in an existing TraceHeaderList, else in a new list after
    MessageHeader."""
    finder = _SpliceFinder()
    finder.feed(original, True)
    start, end, insert = finder.insertion(node_code, at_local)
    return original[:start] + insert + original[end:]


@dataclass(frozen=True, slots=True)
class DeliveredCopy:
    """The delivered copy of a stored package: where the TraceHeader goes is found once (the
    header only is read); `chunks()` streams it as often as needed (a push hashes it, then
    sends it) in constant memory."""

    path: Path
    start: int
    end: int
    insert: bytes
    chunk_size: int = 1 << 20

    @property
    def size(self) -> int:
        return self.path.stat().st_size - (self.end - self.start) + len(self.insert)

    def chunks(self) -> Iterator[bytes]:
        with open(self.path, "rb") as handle:
            remaining = self.start
            while remaining > 0 and (piece := handle.read(min(self.chunk_size, remaining))):
                remaining -= len(piece)
                yield piece
            yield self.insert
            handle.seek(self.end)
            while piece := handle.read(self.chunk_size):
                yield piece


def delivered_copy(path: Path, node_code: str, at_local: datetime) -> DeliveredCopy:
    """Locate the splice in the package stored at `path` (blocking I/O: call in a thread)."""
    finder = _SpliceFinder()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 18):
            if finder.feed(chunk):
                break
        else:
            finder.feed(b"", True)
    return DeliveredCopy(path, *finder.insertion(node_code, at_local))
