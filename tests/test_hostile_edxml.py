"""Contract: edXML shapes an attacker sent that were accepted or cost the node dearly are
refused precisely or kept small (issue #9): repeated singletons, warning amplification,
names long enough to break libxml2's recover mode."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from gateway.errors import MAX_PROBLEMS_PER_CODE, Problem, bounded
from tests.support.nodes import Node
from tests.support.samples import document

SENDER, A = "000.00.01.H53", "000.00.21.H53"


def twice(
    pattern: bytes, change: Callable[[bytes], bytes] = lambda b: b
) -> Callable[[bytes], bytes]:
    def mutate(package: bytes) -> bytes:
        found = re.search(pattern, package, re.S)
        assert found is not None, pattern
        return package.replace(found.group(0), found.group(0) + change(found.group(0)), 1)

    return mutate


def other_sender(block: bytes) -> bytes:
    return block.replace(SENDER.encode(), b"000.00.09.H53")


SINGLETONS = {
    "edXMLEnvelope": twice(rb"<edXML:edXMLEnvelope.*?</edXML:edXMLEnvelope>"),
    "MessageHeader": twice(rb"<edXML:MessageHeader>.*?</edXML:MessageHeader>", other_sender),
    "MessageHeader/From": twice(rb"<edXML:From>.*?</edXML:From>", other_sender),
    "MessageHeader/Subject": twice(rb"<edXML:Subject>.*?</edXML:Subject>"),
    "MessageHeader/DocumentId": twice(rb"<edXML:DocumentId>.*?</edXML:DocumentId>"),
    "AttachmentEncoded": twice(rb"<AttachmentEncoded>.*?</AttachmentEncoded>"),
}


@pytest.mark.parametrize("path", sorted(SINGLETONS))
async def test_an_element_that_must_occur_once_is_refused_when_it_repeats(
    node: Node, path: str
) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.receiver", A)
    answer = await sender.send_edoc(SINGLETONS[path](document(SENDER, [A])), SENDER)
    assert (answer["status"], answer["ErrorCode"], answer["DocId"]) == ("FAIL", "22", "")
    assert ("EDXML_DUPLICATE_ELEMENT", path) in {
        (p["code"], p["path"]) for p in answer["errors"]
    }, answer["errors"]


def with_attributes(package: bytes, attributes: bytes) -> bytes:
    return package.replace(b"<edXML:Subject>", b"<edXML:Subject " + attributes + b">", 1)


async def test_a_name_too_long_for_the_parser_is_refused(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.receiver", A)
    package = with_attributes(document(SENDER, [A]), b"x" * 60_000 + b'="1"')
    answer = await sender.send_edoc(package, SENDER)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "22"), answer
    assert answer["errors"][0]["code"] == "XML_NAME_TOO_LONG"
    rest = await node.http.post(
        "/api/v1/packages", content=package, headers=node.rest_headers(sender)
    )
    assert rest.status_code == 422 and rest.json()["errors"][0]["code"] == "XML_NAME_TOO_LONG"


async def test_repeated_warnings_are_stored_once_with_a_count(node: Node) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.receiver", A)
    attributes = b" ".join(b'u:a%d="1"' % i for i in range(5_000))
    answer = await sender.send_edoc(with_attributes(document(SENDER, [A]), attributes), SENDER)
    assert answer["status"] == "OK", answer
    view = await node.http.get(
        f"/api/v1/packages/{answer['DocId']}", headers=node.rest_headers(sender)
    )
    assert len(view.content) < 100_000
    prefixes = [w for w in view.json()["warnings"] if w["code"] == "XML_UNBOUND_PREFIX"]
    assert len(prefixes) == MAX_PROBLEMS_PER_CODE + 1
    assert prefixes[-1]["message"] == f"+{5_000 - MAX_PROBLEMS_PER_CODE} more like this"


@pytest.mark.parametrize("count", [12_000, 510_000])
async def test_masses_of_attributes_are_refused_before_they_cost_anything(
    node: Node, count: int
) -> None:
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.receiver", A)
    attributes = b" ".join(b'u:a%d="1"' % i for i in range(count))
    answer = await sender.send_edoc(with_attributes(document(SENDER, [A]), attributes), SENDER)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "22")
    # A start tag of 6 MiB is cut off by the text watchdog before expat even reports it.
    assert answer["errors"][0]["code"] in {"XML_TOO_MANY_ATTRIBUTES", "XML_TEXT_TOO_LARGE"}
    if count < 50_000:
        assert answer["errors"][0]["code"] == "XML_TOO_MANY_ATTRIBUTES"


def test_bounded_keeps_errors_first_and_counts_the_rest() -> None:
    problems = [Problem("W", f"p{i}", "w", "warning") for i in range(100)] + [
        Problem("E", "e", "bad")
    ]
    kept = bounded(problems, per_code=3)
    assert kept[0].code == "E"
    assert [p.message for p in kept if p.code == "W"] == ["w", "w", "w", "+97 more like this"]
    assert bounded(problems[:2]) == tuple(problems[:2])
    many = [Problem(f"C{i}", "p", "m" * 1000) for i in range(1000)]
    assert sum(len(p.message) for p in bounded(many)) < 80_000


async def test_long_tags_the_fuzzer_found_are_read_whole(node: Node) -> None:
    """A root start tag over 64 KiB and an end tag padded with 5 000 spaces are well-formed;
    the scanner once cut them at a fixed window (an unhandled error)."""
    sender = await node.add_system("sys.sender", SENDER)
    await node.add_system("sys.receiver", A)
    base = document(SENDER, [A])
    padded = base.replace(
        b"</edXML:edXMLEnvelope>", b"</edXML:edXMLEnvelope" + b" " * 5000 + b">", 1
    )
    accepted = await sender.send_edoc(padded, SENDER)
    assert accepted["status"] == "OK", accepted
    root = re.search(rb"<edXML[^>]*>", base)
    assert root is not None
    attributes = b" ".join(b'a%d="%s"' % (i, b"x" * 60) for i in range(1500))
    wide = base.replace(root.group(0), root.group(0)[:-1] + b" " + attributes + b">", 1)
    refused = await sender.send_edoc(wide, SENDER)
    assert (refused["status"], refused["ErrorCode"]) == ("FAIL", "22"), refused
    assert refused["errors"][0]["path"] == "edXML"
