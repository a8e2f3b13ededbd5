"""One streaming pass over a spooled package: limits, attachments to disk, the envelope aside.

A package may be 100 MiB, almost all of it base64 inside `ContentTransferEncoded`. Expat reads
the file in chunks; attachment text is decoded as it arrives into one file per attachment
(hashed on the way), so memory stays flat whatever the size. Everything else — the envelope
(header and manifest) and the small fields of each attachment — is small and is handed on as a
standalone document for lxml, the XSD and the typed model (`reader.py`).

Expat runs without namespace processing: prefixes are resolved here, so that an undeclared
prefix on an attribute (the SDK sample's `xlink:href`, copied by real systems) is a warning
and not a fatal error, while an undeclared prefix on an element is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from xml.parsers import expat

from gateway.edxml.attachment_files import ScannedAttachment
from gateway.edxml.envelope_cut import ATTACHMENT_FIELDS, envelope_document
from gateway.edxml.namespaces import DSIG_NS, QCVN_NS
from gateway.edxml.prefix_scopes import PrefixScopes, element_name, undeclared_attribute_prefixes
from gateway.errors import PackageMalformed, Problem

READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class ScanLimits:
    max_depth: int = 40
    max_text_bytes: int = 1 << 20
    """Longest text of any element but ContentTransferEncoded."""
    max_envelope_bytes: int = 8 << 20
    max_elements: int = 100_000
    max_attachments: int = 500
    max_name_chars: int = 200
    """Longest element or attribute name: edXML's longest is 25 characters; libxml2's
    recover mode builds a broken tree from names of tens of thousands (issue #9)."""
    max_attributes: int = 10_000
    """Attributes in the whole package: real packages carry a few dozen."""


@dataclass
class ScanResult:
    envelope: bytes
    """`<edXML …>` + edXMLEnvelope + a skeleton AttachmentEncoded (no base64) + `</edXML>`."""
    attachments: list[ScannedAttachment]
    warnings: list[Problem]

    def discard(self) -> None:
        for attachment in self.attachments:
            attachment.discard()


def _refuse(code: str, path: str, message: str) -> NoReturn:
    raise _Refusal(Problem(code, path, message))


class _Refusal(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class Scanner:
    def __init__(self, source: Path, work_dir: Path, limits: ScanLimits | None = None) -> None:
        self._source = source
        self._work_dir = work_dir
        self._limits = limits or ScanLimits()
        self._parser = expat.ParserCreate()
        self._parser.buffer_text = True
        self._parser.buffer_size = 1 << 16
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._parser.StartDoctypeDeclHandler = self._doctype
        self._parser.EntityDeclHandler = self._entity
        self._parser.CommentHandler = self._marker
        self._parser.ProcessingInstructionHandler = self._marker
        self._scopes = PrefixScopes()
        self._path: list[str] = []  # local names; "" for an element outside QCVN
        self._text_size = 0
        self._fields_size = 0
        self._fed = 0
        self._last_event = 0
        self._elements = 0
        self._in_signature = 0
        self._root: tuple[int, str] | None = None  # (offset, qualified name)
        self._envelope: tuple[int, int] | None = None  # (start, offset of end tag)
        self._envelope_start: int | None = None
        self._attachment: ScannedAttachment | None = None
        self._field: str | None = None
        self._field_text: list[str] = []
        self.attachments: list[ScannedAttachment] = []
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []
        self._attributes = 0
        self._attachment_blocks = 0

    # -- driving -------------------------------------------------------------------------

    def scan(self) -> ScanResult:
        """Scan the file; raise `PackageRejected` with every problem found, after removing
        whatever was decoded."""
        try:
            with open(self._source, "rb") as handle:
                while chunk := handle.read(READ_CHUNK):
                    self._parser.Parse(chunk, False)
                    self._fed += len(chunk)
                    self._check_token_size()
                self._parser.Parse(b"", True)
            self._finish()
        except _Refusal as refusal:
            problem = refusal.problem
            line = self._parser.CurrentLineNumber
            self.problems.append(
                Problem(problem.code, problem.path, f"{problem.message} (line {line})")
            )
        except expat.ExpatError as error:
            self.problems.append(
                Problem(
                    "XML_MALFORMED",
                    f"line {error.lineno}",
                    f"not well-formed XML: {expat.ErrorString(error.code)} "
                    f"(line {error.lineno}, column {error.offset + 1})",
                )
            )
        if self.problems:
            for attachment in self.attachments:
                attachment.discard()
            raise PackageMalformed(self.problems[0].message, problems=self.problems)
        assert self._root is not None and self._envelope is not None
        envelope = envelope_document(
            self._source,
            self._root,
            self._envelope,
            self.attachments,
            cap=self._limits.max_text_bytes + 2 * READ_CHUNK,
        )
        return ScanResult(envelope, self.attachments, self.warnings)

    def _finish(self) -> None:
        if self._root is None:
            _refuse("XML_MALFORMED", "/", "no root element")
        if self._envelope is None:
            _refuse("EDXML_REQUIRED", "edXMLEnvelope", "edXMLEnvelope is required")

    def _check_token_size(self) -> None:
        """Expat holds a tag, attribute, comment or processing instruction whole until it
        ends: one that has produced no event for this long is refused before it can grow."""
        if self._fed - self._last_event > self._limits.max_text_bytes + READ_CHUNK:
            _refuse(
                "XML_TEXT_TOO_LARGE",
                self._where(),
                f"a tag, attribute, comment or processing instruction longer than "
                f"{self._limits.max_text_bytes} bytes",
            )

    # -- expat handlers ------------------------------------------------------------------

    def _marker(self, *_: object) -> None:
        self._last_event = self._parser.CurrentByteIndex

    def _doctype(self, *_: object) -> None:
        _refuse(
            "XML_DTD_FORBIDDEN",
            "/",
            "DTDs and entity declarations are not allowed; remove the DOCTYPE",
        )

    def _entity(self, *_: object) -> None:
        self._doctype()

    def _start(self, qname: str, attributes: dict[str, str]) -> None:
        self._last_event = self._parser.CurrentByteIndex
        self._elements += 1
        if self._elements > self._limits.max_elements:
            _refuse("XML_TOO_MANY_ELEMENTS", "/", f"more than {self._limits.max_elements} elements")
        if len(self._path) >= self._limits.max_depth:
            _refuse(
                "XML_TOO_DEEP",
                self._where(),
                f"elements nested deeper than {self._limits.max_depth}",
            )
        self._check_names(qname, attributes)
        scope = self._scopes.enter(attributes)
        namespace, local = element_name(qname, scope)
        if namespace is None:
            prefix = qname.rpartition(":")[0]
            _refuse(
                "XML_UNBOUND_PREFIX",
                self._where(local),
                f"element prefix {_short(prefix)!r} is not declared",
            )
        self._check_attributes(attributes, scope)
        self._text_size = 0
        offset = self._parser.CurrentByteIndex
        if not self._path and (local != "edXML" or namespace != QCVN_NS):
            _refuse(
                "EDXML_ROOT",
                "/",
                f"the root element is {_short(qname)!r} in "
                f"namespace {namespace or '(none)'}; "
                f"expected edXML in {QCVN_NS}",
            )
        if self._in_signature or (local == "Signature" and namespace in (QCVN_NS, DSIG_NS)):
            self._in_signature += 1
            self._path.append(local)
            return
        if namespace != QCVN_NS:
            _refuse(
                "EDXML_FOREIGN_ELEMENT",
                self._where(local),
                f"element {_short(qname)!r} is in namespace {namespace or '(none)'}; edXML "
                f"elements "
                f"must be in {QCVN_NS}",
            )
        depth = len(self._path)
        self._path.append(local)
        if depth == 0:
            self._start_root(local, qname, offset)
        elif depth == 1:
            self._start_top(local, offset)
        elif self._path[:2] == ["edXML", "AttachmentEncoded"]:
            self._start_in_attachments(depth, local)

    def _start_root(self, local: str, qname: str, offset: int) -> None:
        self._root = (offset, qname)

    def _start_top(self, local: str, offset: int) -> None:
        if local == "edXMLEnvelope":
            if self._envelope_start is not None:
                _refuse("EDXML_DUPLICATE_ELEMENT", "edXMLEnvelope", "edXMLEnvelope occurs twice")
            self._envelope_start = offset
        elif local == "AttachmentEncoded":
            # One block only: with two, the node and a recipient could each read another one.
            if self._attachment_blocks:
                _refuse(
                    "EDXML_DUPLICATE_ELEMENT",
                    "AttachmentEncoded",
                    "AttachmentEncoded occurs twice",
                )
            self._attachment_blocks += 1
        else:
            _refuse(
                "EDXML_SCHEMA", _short(local), f"unexpected element {_short(local)} under edXML"
            )

    def _start_in_attachments(self, depth: int, local: str) -> None:
        if depth == 2:
            if local != "Attachment":
                _refuse(
                    "EDXML_SCHEMA",
                    f"AttachmentEncoded/{_short(local)}",
                    f"unexpected element {_short(local)} in AttachmentEncoded",
                )
            if len(self.attachments) >= self._limits.max_attachments:
                _refuse(
                    "EDXML_TOO_MANY_ATTACHMENTS",
                    "AttachmentEncoded",
                    f"more than {self._limits.max_attachments} attachments",
                )
            self._attachment = ScannedAttachment(index=len(self.attachments) + 1)
            self.attachments.append(self._attachment)
        elif depth == 3 and self._attachment is not None:
            path = f"AttachmentEncoded/Attachment[{self._attachment.index}]/{_short(local)}"
            if local == "ContentTransferEncoded":
                self._open_decoder(self._attachment)
            elif local in ATTACHMENT_FIELDS:
                if local in self._attachment.fields:
                    _refuse("EDXML_DUPLICATE_ELEMENT", path, f"{local} occurs twice")
                self._field, self._field_text = local, []
            else:
                _refuse("EDXML_SCHEMA", path, f"unexpected element {_short(local)} in Attachment")
        else:
            _refuse("XML_TOO_DEEP", self._where(), "attachment fields hold text, not elements")

    def _end(self, _qname: str) -> None:
        self._last_event = self._parser.CurrentByteIndex
        local = self._path.pop()
        self._scopes.leave()
        self._text_size = 0
        if self._in_signature:
            self._in_signature -= 1
            return
        depth = len(self._path)
        if depth == 1 and local == "edXMLEnvelope" and self._envelope_start is not None:
            end = self._parser.CurrentByteIndex
            if end - self._envelope_start > self._limits.max_envelope_bytes:
                _refuse(
                    "XML_HEADER_TOO_LARGE",
                    "edXMLEnvelope",
                    f"the envelope is larger than {self._limits.max_envelope_bytes} bytes",
                )
            self._envelope = (self._envelope_start, end)
        elif depth == 3 and self._attachment is not None:
            if local == "ContentTransferEncoded":
                self._close_decoder(self._attachment)
            elif self._field == local:
                self._attachment.fields[local] = "".join(self._field_text)
                self._field = None
        elif depth == 2 and local == "Attachment" and self._attachment is not None:
            if self._attachment.path is None:
                self._attachment._broken = True  # no ContentTransferEncoded: rules report it
            self._attachment = None

    def _text(self, data: str) -> None:
        self._last_event = self._parser.CurrentByteIndex
        attachment = self._attachment
        if attachment is not None and attachment._handle is not None:
            self._decode(attachment, data)
            return
        self._text_size += len(data)
        if self._text_size > self._limits.max_text_bytes:
            _refuse(
                "XML_TEXT_TOO_LARGE",
                self._where(),
                f"text longer than {self._limits.max_text_bytes} characters outside an attachment",
            )
        if self._field is not None:
            self._field_text.append(data)
            self._fields_size += len(data)
            if self._fields_size > self._limits.max_envelope_bytes:
                _refuse(
                    "XML_HEADER_TOO_LARGE",
                    self._where(),
                    f"the attachments' names and descriptions exceed "
                    f"{self._limits.max_envelope_bytes} bytes",
                )
        elif len(self._path) <= 1 and data.strip():
            _refuse("EDXML_SCHEMA", self._where(), "text is not allowed here")

    # -- names ---------------------------------------------------------------------------

    def _check_names(self, qname: str, attributes: dict[str, str]) -> None:
        limit = self._limits.max_name_chars
        for name in (qname, *attributes):
            if len(name) > limit:
                _refuse(
                    "XML_NAME_TOO_LONG",
                    self._where(),
                    f"a name of {len(name)} characters ({_short(name)!r}); "
                    f"names are at most {limit}",
                )
        self._attributes += len(attributes)
        if self._attributes > self._limits.max_attributes:
            _refuse(
                "XML_TOO_MANY_ATTRIBUTES",
                self._where(),
                f"more than {self._limits.max_attributes} attributes",
            )

    def _check_attributes(self, attributes: dict[str, str], scope: dict[str, str]) -> None:
        for name, prefix in undeclared_attribute_prefixes(attributes, scope):
            self.warnings.append(
                Problem(
                    "XML_UNBOUND_PREFIX",
                    self._where(),
                    f"attribute {name!r} uses the undeclared prefix {prefix!r} (tolerated: "
                    "the SDK sample does this; declare it)",
                    "warning",
                )
            )

    def _where(self, local: str | None = None) -> str:
        """The clerk path (`gateway.edxml.paths`): below edXMLHeader for the header."""
        steps = [s or "?" for s in self._path[1:]] + ([local] if local else [])
        for anchor in ("edXMLEnvelope", "edXMLHeader"):
            if steps[:1] == [anchor] and len(steps) > 1:
                steps = steps[1:]
        return "/".join(_short(step) for step in steps) or "/"

    # -- base64 to disk ------------------------------------------------------------------

    def _open_decoder(self, attachment: ScannedAttachment) -> None:
        if attachment.path is not None:
            _refuse(
                "EDXML_DUPLICATE_ELEMENT",
                f"AttachmentEncoded/Attachment[{attachment.index}]/ContentTransferEncoded",
                "ContentTransferEncoded occurs twice",
            )
        attachment.open(self._work_dir)

    def _decode(self, attachment: ScannedAttachment, data: str) -> None:
        self._base64_problem(attachment, attachment.feed(data))

    def _close_decoder(self, attachment: ScannedAttachment) -> None:
        self._base64_problem(attachment, attachment.close())

    def _base64_problem(self, attachment: ScannedAttachment, reason: str | None) -> None:
        if reason is not None:
            self.problems.append(
                Problem(
                    "EDXML_BASE64",
                    f"AttachmentEncoded/Attachment[{attachment.index}]/ContentTransferEncoded",
                    f"the attachment is not valid base64: {reason}",
                )
            )


def _short(name: str, limit: int = 64) -> str:
    """Names echoed in refusals are the sender's: never echo a huge one back."""
    return name if len(name) <= limit else name[:limit] + "…"
