"""From the typed model to edXML bytes (SPEC §2.1–2.2): the mirror of `reader.py`.

The walk is generic: every field's alias names its element and the declaration order is the
order written, so the builder has no code per element. The output has the shape of the VPCP
SDK samples — root `edXML` declaring the QCVN namespace as default, `edXMLEnvelope`
redeclaring it with the `edXML` prefix, the attachments unprefixed — so that receivers which
(wrongly) read by prefix accept it too.

Attachments are streamed: a `Path` is read and base64-encoded chunk by chunk straight into
`out`, so a package of any size is written in constant memory. No Signature is written:
signing is a separate step over the finished bytes.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel

from gateway.edxml.model import VIETNAM, DocumentPackage, StatusPackage
from gateway.edxml.namespaces import QCVN_NS

PREFIX = "edXML"
"""The prefix the envelope uses (as in the SDK samples)."""
ENCODE_CHUNK = 3 * (1 << 18)
"""Bytes base64-encoded at a time: a multiple of 3, so chunks concatenate without padding."""
DEFAULT_MANIFEST_VERSION = "1.0"
INDENT = "  "

# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TEXT_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}
_ATTRIBUTE_ESCAPES = {**_TEXT_ESCAPES, '"': "&quot;", "\t": "&#9;", "\n": "&#10;"}
_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTRIBUTE_SPECIAL = re.compile('[&<>\r"\t\n]')


def build_package(
    package: DocumentPackage | StatusPackage, attachments: Mapping[str, bytes | Path] | None = None
) -> bytes:
    """The package as UTF-8 edXML bytes (see `write_package`)."""
    out = io.BytesIO()
    write_package(package, attachments or {}, out)
    return out.getvalue()


def write_package(
    package: DocumentPackage | StatusPackage, attachments: Mapping[str, bytes | Path], out: BinaryIO
) -> None:
    """Write `package` to `out` as edXML.

    `attachments` maps each attachment's `content_id`, exactly as in the model, to its bytes
    or to a file holding them. Raises `ValueError` when an attachment has no bytes, when bytes
    are given for a content id the model does not declare, or when a text value holds a
    character XML cannot carry."""
    if isinstance(package, DocumentPackage):
        declared = [attachment.content_id for attachment in package.attachments]
        missing = [content_id for content_id in declared if content_id not in attachments]
        if missing:
            raise ValueError(f"no bytes given for attachment(s) {', '.join(missing)}")
        if len(set(declared)) != len(declared):
            raise ValueError("two attachments have the same ContentId")
    else:
        declared = []
    unknown = [content_id for content_id in attachments if content_id not in declared]
    if unknown:
        raise ValueError(f"bytes given for undeclared attachment(s) {', '.join(unknown)}")

    writer = _Writer()
    writer.raw('<?xml version="1.0" encoding="UTF-8"?>\n')
    writer.raw(f'<edXML xmlns="{QCVN_NS}">\n')
    writer.raw(f'{INDENT}<{PREFIX}:edXMLEnvelope xmlns:{PREFIX}="{QCVN_NS}">\n')
    writer.depth = 2
    with writer.element("edXMLHeader"):
        with writer.element("MessageHeader"):
            writer.fields(package.header)
        business = package.business if isinstance(package, DocumentPackage) else None
        if package.traces or business is not None:
            with writer.element("TraceHeaderList"):
                for trace in package.traces:
                    with writer.element("TraceHeader"):
                        writer.fields(trace)
                if business is not None:
                    with writer.element("Bussiness"):
                        writer.fields(business)
    if isinstance(package, DocumentPackage):
        with writer.element("edXMLBody"):
            version = (
                DEFAULT_MANIFEST_VERSION
                if package.manifest_version is None
                else package.manifest_version
            )
            with writer.element("edXMLManifest", {"version": version}):
                for reference in package.references:
                    with writer.element("Reference"):
                        writer.fields(reference)
    writer.raw(f"{INDENT}</{PREFIX}:edXMLEnvelope>\n")
    out.write(writer.flush())

    if isinstance(package, DocumentPackage) and package.attachments:
        writer.prefix = ""
        writer.depth = 1
        writer.raw(f"{INDENT}<AttachmentEncoded>\n")
        for attachment in package.attachments:
            writer.depth = 2
            with writer.element("Attachment"):
                writer.fields(attachment)
                writer.raw(f"{INDENT * 3}<ContentTransferEncoded>")
                out.write(writer.flush())
                for chunk in _base64_chunks(attachments[attachment.content_id]):
                    out.write(chunk)
                writer.raw("</ContentTransferEncoded>\n")
        writer.raw(f"{INDENT}</AttachmentEncoded>\n")
    writer.raw("</edXML>\n")
    out.write(writer.flush())


def _base64_chunks(source: bytes | Path) -> Iterator[bytes]:
    if isinstance(source, Path):
        with open(source, "rb") as handle:
            while chunk := handle.read(ENCODE_CHUNK):
                yield base64.b64encode(chunk)
        return
    view = memoryview(source)
    for start in range(0, len(view), ENCODE_CHUNK):
        yield base64.b64encode(view[start : start + ENCODE_CHUNK])


class _Writer:
    """Collects indented markup for one part of the package; `flush` hands it over."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.depth = 0
        self.prefix = f"{PREFIX}:"

    def raw(self, text: str) -> None:
        self.parts.append(text)

    def flush(self) -> bytes:
        data = "".join(self.parts).encode("utf-8")
        self.parts.clear()
        return data

    def element(self, name: str, attributes: Mapping[str, str] | None = None) -> _Open:
        return _Open(self, name, attributes or {})

    def leaf(self, name: str, text: str) -> None:
        tag = self.prefix + name
        self.parts.append(f"{INDENT * self.depth}<{tag}>{escape_text(text)}</{tag}>\n")

    def fields(self, model: BaseModel) -> None:
        """Every set field of `model`, in declaration order, under its alias."""
        for name, info in type(model).model_fields.items():
            value = getattr(model, name)
            alias = info.alias or name
            if value is None:
                continue
            if isinstance(value, list):
                if not value:
                    continue
                extra = info.json_schema_extra
                item_name = extra.get("wrapped") if isinstance(extra, dict) else None
                if item_name is not None:
                    with self.element(alias):
                        for item in value:
                            self.value(str(item_name), item)
                else:
                    for item in value:
                        self.value(alias, item)
                continue
            self.value(alias, value)

    def value(self, name: str, value: Any) -> None:
        if isinstance(value, BaseModel):
            with self.element(name):
                self.fields(value)
        else:
            self.leaf(name, format_value(value))


class _Open:
    """`with writer.element(name):` writes the start tag, then the end tag."""

    def __init__(self, writer: _Writer, name: str, attributes: Mapping[str, str]) -> None:
        self.writer = writer
        self.tag = writer.prefix + name
        self.attributes = "".join(
            f' {key}="{escape_attribute(value)}"' for key, value in attributes.items()
        )

    def __enter__(self) -> None:
        writer = self.writer
        writer.parts.append(f"{INDENT * writer.depth}<{self.tag}{self.attributes}>\n")
        writer.depth += 1

    def __exit__(self, *_: object) -> None:
        writer = self.writer
        writer.depth -= 1
        writer.parts.append(f"{INDENT * writer.depth}</{self.tag}>\n")


def format_value(value: Any) -> str:
    """A leaf value as edXML text: dates `yyyy/MM/dd`, timestamps `yyyy/MM/dd HH:mm:ss` in
    Vietnam time, enums by value, booleans `true`/`false`."""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        local = value.astimezone(VIETNAM) if value.tzinfo is not None else value
        return (
            f"{local.year:04d}/{local.month:02d}/{local.day:02d} "
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
        )
    if isinstance(value, date):
        return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"
    if isinstance(value, str):
        return value
    raise TypeError(f"no edXML text for {type(value).__name__} {value!r}")


def _check_characters(text: str) -> None:
    bad = _NOT_XML.search(text)
    if bad is not None:
        raise ValueError(
            f"character U+{ord(bad.group()):04X} cannot be written in XML (in {text[:60]!r})"
        )


def escape_text(text: str) -> str:
    _check_characters(text)
    return _TEXT_SPECIAL.sub(lambda match: _TEXT_ESCAPES[match.group()], text)


def escape_attribute(text: str) -> str:
    _check_characters(text)
    return _ATTRIBUTE_SPECIAL.sub(lambda match: _ATTRIBUTE_ESCAPES[match.group()], text)
