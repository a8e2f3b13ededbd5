"""Hostile input (SPEC §3.1 step 2, §5 Security and Memory): every attack is refused with the
exact problem, quickly and in little memory.

The time and memory bounds (2 s, 50 MiB) catch a blow-up — an expansion, a quadratic loop, a
buffer that grows with the input — they are not performance figures. Memory is measured twice:
`tracemalloc` (Python objects and expat's buffers, which pyexpat allocates through Python) and
the growth of the process' peak RSS (which also sees libxml2's allocations).

Reading a local file or opening a connection is detected, not inferred from the answer: a
named pipe stands in for the local file (whoever opens it is seen), and a listening socket on
127.0.0.1 stands in for the remote server (whoever connects is seen).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import gzip
import io
import os
import random
import re
import socket
import threading
import time
import tracemalloc
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.edxml.parser import ParsedPackage, parse_package
from gateway.errors import PackageRejected
from tests.support.nodes import Node
from tests.support.samples import document, status

SENDER, RECEIVER = "000.00.01.H53", "000.00.02.H53"
QCVN_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
MAX_SECONDS = 2.0
MAX_MIB = 50.0
MIB = 1 << 20
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
EMPTY_ZIP = b"UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=="  # a valid (empty) zip archive, base64
_ATTACHMENT_TEXT = re.compile(rb"(<edXML:ContentTransferEncoded[^>]*>)[^<]*(<)")


# -- packages ----------------------------------------------------------------------------------


def valid() -> bytes:
    """A valid document package (the SDK sample) with a tiny attachment, so that what a test
    adds is the only thing wrong with it and the only thing that costs time or memory."""
    return _ATTACHMENT_TEXT.sub(
        lambda m: m.group(1) + EMPTY_ZIP + m.group(2), document(SENDER, [RECEIVER]), count=1
    )


def swap(package: bytes, old: bytes, new: bytes, count: int = 1) -> bytes:
    """`package` with `old` replaced (which must be there: a test must not pass because its
    attack was never inserted)."""
    assert old in package, old
    return package.replace(old, new, count)


def with_doctype(doctype: str, subject: str | None = None) -> bytes:
    package = swap(valid(), DECLARATION, DECLARATION + doctype.encode())
    if subject is not None:
        package = swap(package, b"<edXML:Subject>", b"<edXML:Subject>" + subject.encode())
    return package


def with_attachment_text(package: bytes, text: bytes) -> bytes:
    assert _ATTACHMENT_TEXT.search(package)
    return _ATTACHMENT_TEXT.sub(lambda m: m.group(1) + text + m.group(2), package, count=1)


def test_the_base_package_is_valid() -> None:
    package = parse_package(valid())
    assert isinstance(package, ParsedPackage) and package.to_codes == (RECEIVER,)
    assert not [w for w in package.warnings if w.code.startswith("XML_")]


# -- measuring a refusal -----------------------------------------------------------------------


@dataclass
class Refusal:
    error: PackageRejected
    seconds: float
    rss_mib: float | None
    """Growth of the peak RSS during the call (None where /proc cannot reset the peak)."""
    traced_mib: float | None
    """Peak of traced allocations during a second call, under tracemalloc."""

    @property
    def found(self) -> set[tuple[str, str]]:
        return {(p.code, p.path) for p in self.error.problems}

    @property
    def shown(self) -> str:
        """The problems for an assertion message, long paths cut (they may echo the input)."""
        return repr(sorted((code, path[:120]) for code, path in self.found))

    @property
    def codes(self) -> set[str]:
        return {p.code for p in self.error.problems}

    def said(self) -> str:
        """Everything the refusal tells the sender."""
        return " ".join(
            [
                str(self.error),
                self.error.detail,
                self.error.error_desc,
                *(f"{p.code} {p.path} {p.message}" for p in self.error.problems),
            ]
        )

    def assert_fast_and_small(self) -> None:
        assert self.seconds < MAX_SECONDS, f"refused in {self.seconds:.2f} s"
        if self.rss_mib is not None:
            assert self.rss_mib < MAX_MIB, f"peak RSS grew by {self.rss_mib:.1f} MiB"
        if self.traced_mib is not None:
            assert self.traced_mib < MAX_MIB, f"traced peak {self.traced_mib:.1f} MiB"


def _status_kib(field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        return False
    return True


def _parse(package: bytes, work_dir: Path) -> PackageRejected | ParsedPackage:
    try:
        return parse_package(package, work_dir=work_dir)
    except PackageRejected as error:
        return error


def refuse(package: bytes, tmp_path: Path, *, memory: bool = True) -> Refusal:
    """Parse `package` (it must be refused), timing the call and measuring its memory; no
    decoded attachment may be left in the work directory afterwards."""
    work_dir = tmp_path / f"work-{time.monotonic_ns()}"
    work_dir.mkdir()
    gc.collect()
    rss_before = _status_kib("VmRSS") if memory and _reset_peak_rss() else None
    started = time.perf_counter()
    outcome = _parse(package, work_dir)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM") if rss_before is not None else None
    rss_mib = (peak - rss_before) / 1024 if peak is not None and rss_before is not None else None
    if isinstance(outcome, ParsedPackage):
        pytest.fail(f"accepted (warnings: {[(w.code, w.path) for w in outcome.warnings]})")
    assert outcome.problems, "refused without saying why"
    assert not list(work_dir.glob("att-*")), "a decoded attachment was left behind"
    traced_mib = None
    if memory and seconds < MAX_SECONDS:  # a slow case already failed: do not run it twice
        gc.collect()
        tracemalloc.start()
        try:
            _parse(package, work_dir)
            traced_mib = tracemalloc.get_traced_memory()[1] / MIB
        finally:
            tracemalloc.stop()
    return Refusal(outcome, seconds, rss_mib, traced_mib)


# -- detecting file and network access --------------------------------------------------------


@dataclass
class Tripwire:
    """A named pipe where a local file would be; `opened` lists every time it was opened."""

    path: Path
    opened: list[float]

    @property
    def url(self) -> str:
        return self.path.as_uri()


@pytest.fixture
def tripwire(tmp_path: Path) -> Iterator[Tripwire]:
    path = tmp_path / "secret.txt"
    os.mkfifo(path)
    wire = Tripwire(path, [])
    stop = threading.Event()

    def answer_readers() -> None:
        # Opening a FIFO for writing without blocking fails (ENXIO) unless a reader has it
        # open; a reader blocks until a writer comes, so one is always answered and seen.
        while not stop.is_set():
            try:
                handle = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.002)
                continue
            wire.opened.append(time.monotonic())
            try:
                os.write(handle, b"root:x:0:0:tripwire:/root:/bin/sh\n")
            except OSError:
                pass
            finally:
                os.close(handle)

    watcher = threading.Thread(target=answer_readers, daemon=True)
    watcher.start()
    try:
        yield wire
    finally:
        stop.set()
        watcher.join(timeout=5)


@dataclass
class Listener:
    """A TCP port on 127.0.0.1 nobody should ever connect to."""

    sock: socket.socket

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        count = 0
        while True:
            try:
                connection, _ = self.sock.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1


@pytest.fixture
def listener() -> Iterator[Listener]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield Listener(sock)


def assert_nothing_fetched(
    refusal: Refusal, tripwire: Tripwire | None = None, listener: Listener | None = None
) -> None:
    assert "root:" not in refusal.said()
    assert "tripwire" not in refusal.said()
    if tripwire is not None:
        assert tripwire.opened == [], "the parser opened the local file"
    if listener is not None:
        assert listener.connections() == 0, "the parser connected to the network"


# -- DTDs and entities -------------------------------------------------------------------------


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return with_doctype(f"<!DOCTYPE edXML [{''.join(entities)}]>", subject="&lol9;")


def test_billion_laughs(tmp_path: Path) -> None:
    refusal = refuse(billion_laughs(), tmp_path)
    assert refusal.found == {("XML_DTD_FORBIDDEN", "/")}
    refusal.assert_fast_and_small()


def test_quadratic_blowup(tmp_path: Path) -> None:
    # One 50 kB entity referenced 50 000 times: 2.5 GB once expanded, no nesting needed.
    package = with_doctype(
        f'<!DOCTYPE edXML [<!ENTITY a "{"x" * 50_000}">]>', subject="&a;" * 50_000
    )
    refusal = refuse(package, tmp_path)
    assert refusal.found == {("XML_DTD_FORBIDDEN", "/")}
    refusal.assert_fast_and_small()


def test_doctype_after_a_long_comment_is_still_refused(
    tmp_path: Path, tripwire: Tripwire, listener: Listener
) -> None:
    """The DOCTYPE is checked before parsing on the first 64 KiB; the streaming parser must
    refuse one that a long comment pushed beyond them."""
    doctype = (
        f'<!DOCTYPE edXML SYSTEM "{tripwire.url}" [<!ENTITY a "{"x" * 50_000}">'
        f'<!ENTITY net SYSTEM "{listener.url}/net.xml">]>'
    )
    package = swap(
        valid(), DECLARATION, DECLARATION + b"<!--" + b"c" * 100_000 + b"-->" + doctype.encode()
    )
    package = swap(package, b"<edXML:Subject>", b"<edXML:Subject>" + b"&a;&net;" * 50_000)
    refusal = refuse(package, tmp_path)
    assert refusal.found == {("XML_DTD_FORBIDDEN", "/")}
    assert_nothing_fetched(refusal, tripwire, listener)
    refusal.assert_fast_and_small()


@pytest.mark.parametrize("target", ["file:///etc/passwd", "tripwire", "http"])
def test_external_entity(
    target: str, tmp_path: Path, tripwire: Tripwire, listener: Listener
) -> None:
    url = {"tripwire": tripwire.url, "http": f"{listener.url}/secret.xml"}.get(target, target)
    refusal = refuse(
        with_doctype(f'<!DOCTYPE edXML [<!ENTITY secret SYSTEM "{url}">]>', subject="&secret;"),
        tmp_path,
        memory=False,
    )
    assert refusal.found == {("XML_DTD_FORBIDDEN", "/")}
    assert_nothing_fetched(refusal, tripwire, listener)
    assert refusal.seconds < MAX_SECONDS


def test_external_parameter_entity(tmp_path: Path, tripwire: Tripwire, listener: Listener) -> None:
    doctype = (
        f'<!DOCTYPE edXML [<!ENTITY % local SYSTEM "{tripwire.url}"> %local;'
        f'<!ENTITY % remote SYSTEM "{listener.url}/evil.dtd"> %remote;]>'
    )
    refusal = refuse(with_doctype(doctype), tmp_path, memory=False)
    assert refusal.found == {("XML_DTD_FORBIDDEN", "/")}
    assert_nothing_fetched(refusal, tripwire, listener)


@pytest.mark.parametrize("form", ["passwd", "tripwire", "http", "public-http"])
def test_external_dtd_subset(
    form: str, tmp_path: Path, tripwire: Tripwire, listener: Listener
) -> None:
    doctype = {
        "passwd": '<!DOCTYPE edXML SYSTEM "file:///etc/passwd">',
        "tripwire": f'<!DOCTYPE edXML SYSTEM "{tripwire.url}">',
        "http": f'<!DOCTYPE edXML SYSTEM "{listener.url}/edxml.dtd">',
        "public-http": f'<!DOCTYPE edXML PUBLIC "-//MIC//DTD edXML//VI" '
        f'"{listener.url}/edxml.dtd">',
    }[form]
    refusal = refuse(with_doctype(doctype), tmp_path, memory=False)
    assert refusal.found == {("XML_DTD_FORBIDDEN", "/")}
    assert_nothing_fetched(refusal, tripwire, listener)
    assert refusal.seconds < MAX_SECONDS


@pytest.mark.parametrize("target", ["file:///etc/passwd", "tripwire", "http"])
def test_xinclude_is_a_foreign_element_and_never_followed(
    target: str, tmp_path: Path, tripwire: Tripwire, listener: Listener
) -> None:
    href = {"tripwire": tripwire.url, "http": f"{listener.url}/x.xml"}.get(target, target)
    include = f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{href}" parse="text"/>'
    package = swap(valid(), b"<edXML:Subject>", include.encode() + b"<edXML:Subject>")
    refusal = refuse(package, tmp_path, memory=False)
    assert refusal.codes == {"EDXML_FOREIGN_ELEMENT"}
    assert_nothing_fetched(refusal, tripwire, listener)
    assert refusal.seconds < MAX_SECONDS
    # Clerk paths start below edXMLHeader (gateway/edxml/paths.py): MessageHeader/…
    assert refusal.found == {("EDXML_FOREIGN_ELEMENT", "MessageHeader/include")}


# -- structure limits --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["MessageHeader", "Signature", "AttachmentEncoded"])
def test_ten_thousand_nested_elements(where: str, tmp_path: Path) -> None:
    nested = b"<Nest>" * 10_000 + b"</Nest>" * 10_000
    if where == "AttachmentEncoded":  # inside a field, where only text may stand
        package = swap(valid(), b"<ContentId>", b"<ContentId>" + nested)
    elif where == "Signature":  # inside a signature, whose content is not edXML
        package = swap(
            valid(),
            b"</edXML:TraceHeaderList>",
            b'</edXML:TraceHeaderList><Signature xmlns="http://www.w3.org/2000/09/'
            b'xmldsig#">' + nested + b"</Signature>",
        )
    else:
        package = swap(valid(), b"<edXML:Subject>", nested + b"<edXML:Subject>")
    refusal = refuse(package, tmp_path)
    assert refusal.codes == {"XML_TOO_DEEP"}
    [problem] = refusal.error.problems
    assert len(problem.path) < 1000 and len(problem.message) < 1000
    refusal.assert_fast_and_small()


def test_enormous_subject(tmp_path: Path) -> None:
    package = swap(valid(), b"<edXML:Subject>", b"<edXML:Subject>" + b"x" * (20 * MIB))
    refusal = refuse(package, tmp_path)
    assert refusal.codes == {"XML_TEXT_TOO_LARGE"}
    refusal.assert_fast_and_small()
    assert refusal.found == {("XML_TEXT_TOO_LARGE", "MessageHeader/Subject")}


def test_enormous_cdata_subject(tmp_path: Path) -> None:
    package = swap(
        valid(), b"<edXML:Subject>", b"<edXML:Subject><![CDATA[" + b"x" * (20 * MIB) + b"]]>"
    )
    refusal = refuse(package, tmp_path)
    assert refusal.codes == {"XML_TEXT_TOO_LARGE"}
    refusal.assert_fast_and_small()


def test_envelope_over_its_limit(tmp_path: Path) -> None:
    # Many texts each under the per-text limit, 9.5 MB in all: over the 8 MiB envelope limit.
    appendix = b"<edXML:Appendix>" + b"y" * 500_000 + b"</edXML:Appendix>"
    package = swap(valid(), b"<edXML:Appendixes>", b"<edXML:Appendixes>" + appendix * 19)
    refusal = refuse(package, tmp_path)
    assert refusal.found == {("XML_HEADER_TOO_LARGE", "edXMLEnvelope")}
    refusal.assert_fast_and_small()


def test_more_than_100_000_sibling_elements(tmp_path: Path) -> None:
    package = swap(
        valid(),
        b"<edXML:ToPlaces>",
        b"<edXML:ToPlaces>" + b"<edXML:Place>p</edXML:Place>" * 100_001,
    )
    refusal = refuse(package, tmp_path)
    assert refusal.found == {("XML_TOO_MANY_ELEMENTS", "/")}
    refusal.assert_fast_and_small()


def test_many_unknown_elements(tmp_path: Path) -> None:
    """10 000 elements of the edXML namespace that the schema does not know, well under the
    element limit (130 kB): one problem to report, not a CPU to pin."""
    package = swap(valid(), b"<edXML:Subject>", b"<edXML:Foo/>" * 10_000 + b"<edXML:Subject>")
    refusal = refuse(package, tmp_path)
    assert ("EDXML_SCHEMA", "MessageHeader/Foo") in refusal.found
    assert refusal.codes == {"EDXML_SCHEMA"}
    refusal.assert_fast_and_small()


# Expat must hold a whole token (a start tag with its attributes, a comment, a processing
# instruction, a name) before it reports anything: a token of tens of MiB outside the base64
# is text the per-text limit does not see. Whatever the code, it must be refused in bounded
# memory; the catalogue's codes for "too much text" are these two.
TOO_MUCH_TEXT = {"XML_TEXT_TOO_LARGE", "XML_HEADER_TOO_LARGE"}


@pytest.mark.parametrize(
    "token",
    [
        "attribute-on-attachment",
        "attribute-in-header",
        "comment",
        "processing-instruction",
        "element-name",
    ],
)
def test_enormous_token_outside_the_attachments(token: str, tmp_path: Path) -> None:
    filler = b"x" * (40 * MIB)
    package = valid()
    if token == "attribute-on-attachment":
        package = swap(package, b"<Attachment>", b'<Attachment note="' + filler + b'">')
    elif token == "attribute-in-header":
        package = swap(package, b"<edXML:Subject>", b'<edXML:Subject note="' + filler + b'">')
    elif token == "comment":
        package = swap(
            package, b"<AttachmentEncoded>", b"<!--" + filler + b"--><AttachmentEncoded>"
        )
    elif token == "processing-instruction":
        package = swap(
            package, b"<AttachmentEncoded>", b"<?note " + filler + b"?><AttachmentEncoded>"
        )
    else:
        package = swap(package, b"<ContentId>", b"<" + filler + b"/><ContentId>")
    refusal = refuse(package, tmp_path)
    # An unknown element is a schema error, whatever the length of its name.
    expected = TOO_MUCH_TEXT | ({"EDXML_SCHEMA"} if token == "element-name" else set())
    assert refusal.codes <= expected, refusal.shown
    said = len(refusal.said())
    assert said < 10_000, f"the refusal echoes the token ({said} characters)"
    refusal.assert_fast_and_small()


def test_attachment_fields_add_up(tmp_path: Path) -> None:
    """Each attachment field is under the per-text limit, but 60 of them carry 60 MB of text
    outside the base64: they must count against a limit, not be held and re-parsed."""
    count, name = 60, b"n" * 1_000_000
    attachments = b"".join(
        b"<Attachment><ContentId>cid:%d</ContentId><AttachmentName>%s</AttachmentName>"
        b"<ContentType>application/zip</ContentType>"
        b"<ContentTransferEncoded>%s</ContentTransferEncoded></Attachment>" % (i, name, EMPTY_ZIP)
        for i in range(count)
    )
    references = b"".join(
        b"<edXML:Reference><edXML:ContentId>cid:%d</edXML:ContentId>"
        b"<edXML:ContentType>application/zip</edXML:ContentType>"
        b"<edXML:AttachmentName>a%d.zip</edXML:AttachmentName></edXML:Reference>" % (i, i)
        for i in range(count)
    )
    package = re.sub(
        rb"<AttachmentEncoded>.*</AttachmentEncoded>",
        lambda _: b"<AttachmentEncoded>" + attachments + b"</AttachmentEncoded>",
        valid(),
        count=1,
        flags=re.S,
    )
    package = re.sub(
        rb"<edXML:Reference>.*?</edXML:Reference>",
        lambda _: references,
        package,
        count=1,
        flags=re.S,
    )
    assert package.count(b"<Attachment>") == count
    refusal = refuse(package, tmp_path)
    assert refusal.codes <= TOO_MUCH_TEXT, refusal.shown
    refusal.assert_fast_and_small()


# -- encodings and the prolog ------------------------------------------------------------------


def _reencoded(codec: str, bom: bytes = b"") -> bytes:
    text = valid().decode().replace('encoding="UTF-8"', f'encoding="{codec.upper()}"')
    return bom + text.encode(codec)


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(_reencoded("utf-16"), id="utf-16-bom"),  # Python writes the LE BOM
        pytest.param(_reencoded("utf-16-be", b"\xfe\xff"), id="utf-16-be-bom"),
        pytest.param(_reencoded("utf-16-le"), id="utf-16-no-bom"),
        pytest.param(_reencoded("utf-32"), id="utf-32-bom"),
        pytest.param(
            swap(valid(), b'encoding="UTF-8"', b'encoding="ISO-8859-1"'), id="declared-iso-8859-1"
        ),
        pytest.param(
            swap(valid(), b'encoding="UTF-8"', b"encoding='windows-1258'"),
            id="declared-windows-1258",
        ),
        pytest.param(
            swap(valid(), b'encoding="UTF-8"', b'encoding="UTF-16"'),
            id="declared-utf-16-written-utf-8",
        ),
        pytest.param(
            b"\xef\xbb\xbf" + swap(valid(), b'encoding="UTF-8"', b'encoding="latin1"'),
            id="bom-then-declared-latin1",
        ),
    ],
)
def test_wrong_encoding(package: bytes, tmp_path: Path) -> None:
    refusal = refuse(package, tmp_path, memory=False)
    assert refusal.found == {("XML_ENCODING", "/")}
    assert refusal.seconds < MAX_SECONDS


def test_latin1_bytes_without_a_declaration(tmp_path: Path) -> None:
    # No declaration means UTF-8; Latin-1 bytes are then invalid UTF-8. Either code is clear.
    package = valid().replace(b' encoding="UTF-8"', b"")
    package = swap(package, "Hòa".encode(), "Hòa".encode("latin-1"))
    refusal = refuse(package, tmp_path, memory=False)
    assert len(refusal.codes) == 1 and refusal.codes <= {"XML_ENCODING", "XML_MALFORMED"}


@pytest.mark.parametrize(
    "prefix",
    [b" ", b"\t", b"junk", b"<!-- first -->", b"\xef\xbb\xbf "],
    ids=["space", "tab", "junk", "comment", "bom-then-space"],
)
def test_content_before_the_xml_declaration(prefix: bytes, tmp_path: Path) -> None:
    refusal = refuse(prefix + valid(), tmp_path, memory=False)
    assert refusal.found == {("XML_MALFORMED", "line 1")}


# -- root and namespaces -----------------------------------------------------------------------


def _soap_wrapped() -> bytes:
    body = valid().removeprefix(DECLARATION)
    return (
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soap:Body>" + body + b"</soap:Body></soap:Envelope>"
    )


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(b"<edXML/>", id="no-namespace"),
        pytest.param(
            b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2015"/>', id="2015-namespace"
        ),
        pytest.param(
            swap(valid(), f'<edXML xmlns="{QCVN_NS}">'.encode(), b'<edXML xmlns="urn:other">'),
            id="whole-package-other-namespace",
        ),
        pytest.param(f'<MessageHeader xmlns="{QCVN_NS}"/>'.encode(), id="wrong-root-name"),
        pytest.param(b"<html><body>hello</body></html>", id="html"),
        pytest.param(_soap_wrapped(), id="soap-wrapped"),
        pytest.param(
            f'<Signature xmlns="{DSIG_NS}"><SignatureValue>AA==</SignatureValue>'
            f"</Signature>".encode(),
            id="dsig-signature-root",
        ),
        pytest.param(f'<Signature xmlns="{QCVN_NS}"/>'.encode(), id="qcvn-signature-root"),
    ],
)
def test_wrong_root_or_namespace(package: bytes, tmp_path: Path) -> None:
    refusal = refuse(package, tmp_path, memory=False)
    assert len(refusal.codes) == 1, refusal.shown
    assert refusal.codes <= {"EDXML_ROOT", "EDXML_FOREIGN_ELEMENT"}, refusal.shown


def test_undeclared_element_prefix_is_refused(tmp_path: Path) -> None:
    package = swap(valid(), b"<edXML:Subject>", b"<foo:Subject>")
    package = swap(package, b"</edXML:Subject>", b"</foo:Subject>")
    refusal = refuse(package, tmp_path, memory=False)
    assert refusal.codes == {"XML_UNBOUND_PREFIX"}
    assert refusal.found == {("XML_UNBOUND_PREFIX", "MessageHeader/Subject")}


@pytest.mark.parametrize("where", ["manifest", "header"])
def test_undeclared_attribute_prefix_is_a_warning(where: str) -> None:
    anchor = b"<edXML:Reference>" if where == "manifest" else b"<edXML:Subject>"
    package = swap(valid(), anchor, anchor[:-1] + b' xlink:href="#x">')
    parsed = parse_package(package)
    unbound = [w for w in parsed.warnings if w.code == "XML_UNBOUND_PREFIX"]
    assert unbound and all(w.severity == "warning" for w in unbound)


# -- status packages ---------------------------------------------------------------------------


def status_package() -> bytes:
    return status(RECEIVER, SENDER, f"{SENDER},2026/11/20,12/UBND-VP")


def test_status_base_is_valid() -> None:
    assert parse_package(status_package()).status_code == "01"


def test_status_with_a_body(tmp_path: Path) -> None:
    body = (
        b'<edXML:edXMLBody><edXML:edXMLManifest version="1.0"><edXML:Reference>'
        b"<edXML:ContentId>cid:1</edXML:ContentId></edXML:Reference>"
        b"</edXML:edXMLManifest></edXML:edXMLBody>"
    )
    package = swap(status_package(), b"</edXML:edXMLHeader>", b"</edXML:edXMLHeader>" + body)
    refusal = refuse(package, tmp_path, memory=False)
    assert refusal.found == {("EDXML_STATUS_WITH_BODY", "edXMLBody")}


def test_status_with_attachments(tmp_path: Path) -> None:
    attachments = (
        b"<AttachmentEncoded><Attachment><ContentId>cid:1</ContentId>"
        b"<AttachmentName>a.zip</AttachmentName><ContentType>application/zip"
        b"</ContentType><ContentTransferEncoded>"
        + EMPTY_ZIP
        + b"</ContentTransferEncoded></Attachment></AttachmentEncoded>"
    )
    package = swap(
        status_package(), b"</edXML:edXMLEnvelope>", b"</edXML:edXMLEnvelope>" + attachments
    )
    refusal = refuse(package, tmp_path, memory=False)
    # The schema (EDXML_SCHEMA) or the status rule (EDXML_STATUS_WITH_BODY) may say it first.
    assert len(refusal.found) == 1, refusal.shown
    [(code, path)] = refusal.found
    assert code in {"EDXML_STATUS_WITH_BODY", "EDXML_SCHEMA"} and path == "AttachmentEncoded"


# -- binary garbage ----------------------------------------------------------------------------


def _zip_of(package: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("package.edxml", package)
    return buffer.getvalue()


GARBAGE: dict[str, Callable[[], bytes]] = {
    "random-1mib": lambda: b"L" + random.Random(102).randbytes(MIB),
    "random-20mib": lambda: b"L" + random.Random(103).randbytes(20 * MIB),
    "gzip": lambda: gzip.compress(valid()),
    "pdf": lambda: (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
        + random.Random(104).randbytes(100_000)
        + b"\n%%EOF\n"
    ),
    "zip": lambda: _zip_of(valid()),
    "nul-bytes": lambda: b"\x00" * 10_000,
    "empty": lambda: b"",
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_binary_garbage(kind: str, tmp_path: Path) -> None:
    refusal = refuse(GARBAGE[kind](), tmp_path)
    assert len(refusal.error.problems) == 1, refusal.shown
    assert refusal.codes <= {"XML_MALFORMED", "XML_ENCODING"}, refusal.shown
    said = len(refusal.said())
    assert said < 2000, f"the refusal echoes the garbage ({said} characters)"
    refusal.assert_fast_and_small()


# -- attachments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"!!!!not base64!!", id="punctuation"),
        pytest.param(EMPTY_ZIP[:-1], id="truncated"),
        pytest.param("ÀÁÂÃ".encode(), id="non-ascii"),
        pytest.param(b"QQ==QQ==", id="padding-in-the-middle"),
        pytest.param(b"QUJD" * 300_000 + b"*QJD" + b"QUJD" * 1000, id="bad-after-1mb"),
    ],
)
def test_invalid_base64(text: bytes, tmp_path: Path) -> None:
    refusal = refuse(with_attachment_text(valid(), text), tmp_path)
    assert refusal.found == {
        ("EDXML_BASE64", "AttachmentEncoded/Attachment[1]/ContentTransferEncoded")
    }
    refusal.assert_fast_and_small()


def test_manifest_reference_without_attachment(tmp_path: Path) -> None:
    package = re.sub(
        rb"\s*<AttachmentEncoded>.*</AttachmentEncoded>", b"", valid(), count=1, flags=re.S
    )
    assert b"<AttachmentEncoded>" not in package
    refusal = refuse(package, tmp_path, memory=False)
    assert refusal.found == {
        ("EDXML_ATTACHMENT_MISSING", "edXMLBody/edXMLManifest/Reference[1]/ContentId")
    }


def test_attachment_without_manifest_reference(tmp_path: Path) -> None:
    package = re.sub(
        rb"\s*<edXML:Reference>.*?</edXML:Reference>", b"", valid(), count=1, flags=re.S
    )
    assert b"<edXML:Reference>" not in package
    refusal = refuse(package, tmp_path, memory=False)
    assert refusal.found == {
        ("EDXML_REFERENCE_MISSING", "AttachmentEncoded/Attachment[1]/ContentId")
    }


# -- over HTTP ---------------------------------------------------------------------------------


async def systems(node: Node) -> tuple[dict[str, str], dict[str, str]]:
    sender = await node.add_system("sys.hostile.sender", SENDER)
    receiver = await node.add_system("sys.hostile.receiver", RECEIVER)
    return node.rest_headers(sender), node.rest_headers(receiver)


def spooled(node: Node) -> list[Path]:
    spool = node.backing.data_dir / "spool"
    return sorted(spool.iterdir()) if spool.exists() else []


async def assert_still_serves(node: Node, sender: dict[str, str], receiver: dict[str, str]) -> None:
    answer = await node.http.post(
        "/api/v1/packages",
        content=document(SENDER, [RECEIVER]),
        headers={**sender, "Content-Type": "application/xml"},
    )
    assert answer.status_code == 201, answer.text
    message_id = answer.json()["id"]
    for _ in range(200):
        page = (await node.http.get("/api/v1/inbox", headers=receiver)).json()
        if any(item["message_id"] == message_id for item in page["items"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the valid package never reached the receiver's inbox")


async def test_oversized_body_is_refused_while_streaming(make_node: Any) -> None:
    limit, chunk, chunks = MIB, 64 * 1024, 128  # an 8 MiB body against a 1 MiB limit
    node = await make_node(max_package_bytes=limit)
    sender, receiver = await systems(node)
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        head = valid()
        yield head
        sent += len(head)
        for _ in range(chunks):
            yield b"x" * chunk
            sent += chunk

    answer = await node.http.post(
        "/api/v1/packages", content=body(), headers={**sender, "Content-Type": "application/xml"}
    )
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "PACKAGE_TOO_LARGE"
    assert sent <= limit + 2 * chunk, f"read {sent} bytes of an over-limit body"
    assert spooled(node) == []
    await assert_still_serves(node, sender, receiver)
    assert spooled(node) == []


async def test_billion_laughs_over_http(node: Node) -> None:
    sender, receiver = await systems(node)
    answer = await node.http.post(
        "/api/v1/packages",
        content=billion_laughs(),
        headers={**sender, "Content-Type": "application/xml"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["code"] == "PACKAGE_INVALID"
    assert [(e["code"], e["path"]) for e in problem["errors"]] == [("XML_DTD_FORBIDDEN", "/")]
    assert spooled(node) == []
    await assert_still_serves(node, sender, receiver)
