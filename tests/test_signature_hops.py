"""Signatures across hops (SPEC §2.1, §3.5): each relay appends its TraceHeader after the sender
signed, so a node verifies the package without those TraceHeaders. It stores and delivers the
bytes as received. A package tampered anywhere else is still caught."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from adapters.signatures import dsig_relays
from adapters.signatures.dsig_relays import MAX_CANDIDATES
from adapters.signatures.xmldsig import SignatureCheck, check_signature, sign_package
from gateway.edxml.model import VIETNAM
from gateway.edxml.parser import parse_package
from gateway.edxml.trace import delivered_copy, with_trace_header
from gateway.services.package_facts import signing_time
from tests.support.nodes import NodeFactory
from tests.support.pki import Issued, intermediate, root_authority
from tests.support.polling import poll_until
from tests.support.samples import document, sample

SENDER, RECEIVER = "000.00.01.H53", "000.00.00.H54"
PROVINCE_NODE, NATIONAL_NODE = "000.00.00.H53", "000.00.00.G22"
AT = datetime(2026, 11, 20, 10, 0)
_MARK = "RELAY-WITHOUT-ORGAN"
TRACE_END = re.compile(rb"</(?:edXML:)?TraceHeader>")

ROOT = root_authority()
CA = intermediate(ROOT)
SIGNER = CA.issue("Van thu So (test)")


def signed(package: bytes | None = None, canonicalization: str = "exc-c14n") -> bytes:
    return sign_package(
        package if package is not None else document(SENDER, [RECEIVER]),
        SIGNER.key_pem,
        SIGNER.cert_pem,
        canonicalization=canonicalization,  # type: ignore[arg-type]
        extra_certs=[CA.cert_pem],
    )


def by_node(package: bytes, code: str = PROVINCE_NODE) -> bytes:
    """What this software's relays write: after the last TraceHeader, with an OrganId."""
    return with_trace_header(package, code, AT)


def by_axis(package: bytes) -> bytes:
    """What relays on the national axis write: a TraceHeader without OrganId (SPEC §2.1)."""
    relayed = with_trace_header(package, _MARK, AT)
    return relayed.replace(f"<OrganId>{_MARK}</OrganId>".encode(), b"", 1)


def appended_at_end_of_list(package: bytes) -> bytes:
    """A relay that appends to the end of TraceHeaderList (DOM appendChild): after Bussiness."""
    end = package.rindex(b"</edXML:TraceHeaderList>")
    trace = b"<edXML:TraceHeader><edXML:Timestamp>2026/11/20 11:00:00</edXML:Timestamp>"
    return package[:end] + trace + b"</edXML:TraceHeader>" + package[end:]


def assert_valid(check: SignatureCheck, set_aside: int) -> None:
    assert (check.outcome, check.code) == ("valid", None), check.reason
    assert check.trace_headers_set_aside == set_aside
    assert check.signer == SIGNER.certificate
    noted = [note for note in check.notes if "appended after signing" in note]
    assert len(noted) == (1 if set_aside else 0), check.notes


def assert_digest_mismatch(check: SignatureCheck) -> None:
    assert (check.outcome, check.code) == ("invalid", "SIGNATURE_DIGEST_MISMATCH"), check.reason
    assert check.trace_headers_set_aside == 0


# --- relayed packages verify as their sender signed them ---------------------------------------


@pytest.mark.parametrize("canonicalization", ["c14n", "exc-c14n"])
@pytest.mark.parametrize(
    ("hops", "relays"),
    [
        (0, []),
        (1, [by_node]),
        (1, [by_axis]),
        (2, [by_node, by_axis]),
        (2, [by_axis, by_node]),
        (2, [appended_at_end_of_list, by_node]),
    ],
)
def test_a_relayed_document_verifies(
    canonicalization: str, hops: int, relays: list[Callable[[bytes], bytes]]
) -> None:
    package = signed(canonicalization=canonicalization)
    for relay in relays:
        package = relay(package)
    assert len(TRACE_END.findall(package)) == 1 + hops  # the sender's, then the relays'
    assert_valid(check_signature(package), hops)


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_a_relayed_status_verifies_without_the_list_the_first_relay_created(hops: int) -> None:
    package = signed(sample("status_inbox_01.edxml"))
    assert b"TraceHeaderList" not in package
    for relay in [by_node, by_axis, by_node][:hops]:
        package = relay(package)
    assert package.count(b"<TraceHeaderList") == 1
    assert_valid(check_signature(package), hops)


def test_a_signed_empty_trace_list_is_kept() -> None:
    package = document(SENDER, [RECEIVER])
    package = re.sub(
        rb"<edXML:TraceHeaderList>.*?</edXML:TraceHeaderList>", b"", package, count=1, flags=re.S
    )
    package = package.replace(
        b"</edXML:MessageHeader>", b"</edXML:MessageHeader><edXML:TraceHeaderList/>", 1
    )
    relayed = by_axis(by_node(signed(package)))
    assert_valid(check_signature(relayed), 2)


def test_the_last_sixteen_relays_are_the_most_set_aside() -> None:
    package = signed()
    for _ in range(MAX_CANDIDATES):
        package = by_axis(package)
    assert_valid(check_signature(package), MAX_CANDIDATES)
    check = check_signature(by_axis(package))
    assert_digest_mismatch(check)
    assert f"{MAX_CANDIDATES} candidates tried" in check.notes[-1]


def test_the_search_is_bounded_whatever_the_number_of_trace_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hostile package with thousands of TraceHeaders: at most MAX_CANDIDATES digests."""
    calls: list[int] = []
    digest = dsig_relays.document_digest

    def counted(root: object, wanted: object) -> bytes:
        calls.append(1)
        return digest(root, wanted)  # type: ignore[arg-type]

    monkeypatch.setattr(dsig_relays, "document_digest", counted)
    package = signed()
    end = package.index(b"</edXML:TraceHeader>") + len(b"</edXML:TraceHeader>")
    relays = b"<edXML:TraceHeader/>" * 5000
    check = check_signature(package[:end] + relays + package[end:])
    assert_digest_mismatch(check)  # 5000 were appended: more than are ever set aside
    assert len(calls) == MAX_CANDIDATES


DSIG_DECLARATION = b' xmlns="http://www.w3.org/2000/09/xmldsig#"'


def test_a_relayed_qcvn_form_signature_verifies() -> None:
    """The Signature without its XML-DSig declaration (real producers): verified as its
    XML-DSig form, relays or not."""
    qcvn_form = signed().replace(DSIG_DECLARATION, b"", 1)
    check = check_signature(by_axis(by_node(qcvn_form)))
    assert_valid(check, 2)
    assert check.namespace == "qcvn"
    assert_digest_mismatch(check_signature(by_axis(by_node(change_subject(qcvn_form)))))


def test_a_relayed_signature_without_certificate_stays_unverifiable() -> None:
    """No certificate: the SignatureValue cannot be checked, the digest can. Relays set aside,
    the digest matches, so the package is unverifiable (not proven false), as unrelayed."""
    bare = re.sub(rb"\s*<KeyInfo>.*?</KeyInfo>", b"", signed(), count=1, flags=re.S)
    check = check_signature(by_axis(by_node(bare)))
    assert (check.outcome, check.code) == ("unverifiable", "SIGNATURE_NO_CERTIFICATE")
    assert check.trace_headers_set_aside == 2
    assert_digest_mismatch(check_signature(by_axis(by_node(change_subject(bare)))))


# --- tampering is still caught -----------------------------------------------------------------


def change_subject(package: bytes) -> bytes:
    return re.sub(rb"(<edXML:Subject>V/)v", rb"\1w", package, count=1)


def change_attachment(package: bytes) -> bytes:
    start = package.index(b"<edXML:ContentTransferEncoded")
    position = package.index(b">", start) + 1 + 5000
    old = package[position : position + 1]
    return package[:position] + (b"B" if old == b"A" else b"A") + package[position + 1 :]


def add_a_recipient(package: bytes) -> bytes:
    return package.replace(
        b"</edXML:To>",
        b"</edXML:To><edXML:To><edXML:OrganId>000.00.09.H54</edXML:OrganId></edXML:To>",
        1,
    )


def change_the_sender_trace(package: bytes) -> bytes:
    """The TraceHeader the sender signed (its time is the claimed signing time)."""
    return re.sub(
        rb"(<edXML:TraceHeader>\s*<edXML:OrganId>[^<]*</edXML:OrganId>\s*<edXML:Timestamp>)\d",
        rb"\g<1>1",
        package,
        count=1,
    )


def drop_the_sender_trace(package: bytes) -> bytes:
    return re.sub(rb"<edXML:TraceHeader>.*?</edXML:TraceHeader>", b"", package, count=1, flags=re.S)


def change_business(package: bytes) -> bytes:
    return package.replace(b"<edXML:Paper>0</edXML:Paper>", b"<edXML:Paper>1</edXML:Paper>", 1)


@pytest.mark.parametrize(
    "tamper",
    [
        change_subject,
        change_attachment,
        add_a_recipient,
        change_the_sender_trace,
        drop_the_sender_trace,
        change_business,
    ],
)
@pytest.mark.parametrize("when", ["before the relays", "between them", "after them"])
def test_a_relayed_package_altered_elsewhere_is_invalid(
    tamper: Callable[[bytes], bytes], when: str
) -> None:
    package = signed()
    steps = {
        "before the relays": [tamper, by_node, by_axis],
        "between them": [by_node, tamper, by_axis],
        "after them": [by_node, by_axis, tamper],
    }[when]
    for step in steps:
        changed = step(package)
        assert changed != package
        package = changed
    check = check_signature(package)
    assert_digest_mismatch(check)
    assert "candidates tried" in check.notes[-1]


def inside_the_list(element: bytes) -> Callable[[bytes], bytes]:
    def append(package: bytes) -> bytes:
        end = package.rindex(b"</edXML:TraceHeaderList>")
        return package[:end] + element + package[end:]

    return append


def in_the_header(element: bytes) -> Callable[[bytes], bytes]:
    def append(package: bytes) -> bytes:
        end = package.index(b"</edXML:TraceHeaderList>") + len(b"</edXML:TraceHeaderList>")
        return package[:end] + element + package[end:]

    return append


TRACE = b"<edXML:TraceHeader><edXML:Timestamp>2026/11/20 11:00:00</edXML:Timestamp>"
BUSINESS = (
    b"<edXML:Bussiness><edXML:BussinessDocType>1</edXML:BussinessDocType>"
    b"<edXML:DocumentId>000.00.01.H53,2026/11/20,1/TEST</edXML:DocumentId></edXML:Bussiness>"
)


@pytest.mark.parametrize(
    "append",
    [
        pytest.param(inside_the_list(BUSINESS), id="a Bussiness in the list"),
        pytest.param(
            in_the_header(b"<edXML:TraceHeaderList>" + BUSINESS + b"</edXML:TraceHeaderList>"),
            id="a list holding a Bussiness",
        ),
        pytest.param(
            in_the_header(
                b"<edXML:TraceHeaderList>"
                + TRACE
                + b"</edXML:TraceHeader>"
                + BUSINESS
                + b"</edXML:TraceHeaderList>"
            ),
            id="a list holding a TraceHeader and a Bussiness",
        ),
        pytest.param(in_the_header(TRACE + b"</edXML:TraceHeader>"), id="a TraceHeader outside"),
        pytest.param(
            lambda p: p.replace(
                b"</edXML:Subject>", b"</edXML:Subject>" + TRACE + b"</edXML:TraceHeader>", 1
            ),
            id="a TraceHeader in MessageHeader",
        ),
        pytest.param(
            inside_the_list(
                b'<TraceHeader xmlns="urn:other"><Timestamp>x</Timestamp></TraceHeader>'
            ),
            id="a TraceHeader of another namespace",
        ),
        pytest.param(inside_the_list(b"relayed"), id="text"),
    ],
)
def test_anything_but_a_relay_trace_header_appended_is_invalid(
    append: Callable[[bytes], bytes],
) -> None:
    check = check_signature(by_node(append(by_node(signed()))))
    assert check.outcome == "invalid", check
    assert check.trace_headers_set_aside == 0


def test_a_trace_list_is_set_aside_only_when_it_holds_nothing_else() -> None:
    package = signed(sample("status_inbox_01.edxml"))
    relayed = by_node(package)
    assert_valid(check_signature(relayed), 1)
    commented = relayed.replace(
        b"</TraceHeader></TraceHeaderList>", b"</TraceHeader><!--x--></TraceHeaderList>"
    )
    assert commented != relayed
    assert check_signature(commented).outcome == "invalid"
    attributed = relayed.replace(b"<TraceHeaderList ", b'<TraceHeaderList Id="x" ', 1)
    assert attributed != relayed
    assert check_signature(attributed).outcome == "invalid"


# --- forgeries and wrapping --------------------------------------------------------------------


def test_a_forged_signature_on_a_relayed_package_fails() -> None:
    relayed = by_axis(by_node(signed()))
    forged = re.sub(
        rb"(<SignatureValue>)(.)",
        lambda m: m.group(1) + (b"B" if m.group(2) == b"A" else b"A"),
        relayed,
    )
    check = check_signature(forged)
    # The digest matches without the relays' TraceHeaders; the value does not.
    assert (check.outcome, check.code) == ("invalid", "SIGNATURE_VALUE_MISMATCH"), check.reason
    assert check.trace_headers_set_aside == 2
    other = CA.issue("Another agency (test)")
    swapped = signed()
    swapped = by_node(swapped).replace(_b64(SIGNER), _b64(other))
    check = check_signature(swapped)
    assert (check.outcome, check.code) == ("invalid", "SIGNATURE_VALUE_MISMATCH")


def _b64(issued: Issued) -> bytes:
    return base64.b64encode(issued.certificate.public_bytes(serialization.Encoding.DER))


def test_a_signature_hidden_in_a_relay_trace_header_is_refused_before_any_retry() -> None:
    package = signed()
    signature = re.search(rb"<Signature .*?</Signature>", package, re.S)
    assert signature is not None
    trace = TRACE + signature.group(0) + b"</edXML:TraceHeader>"
    check = check_signature(inside_the_list(trace)(package))
    assert (check.outcome, check.code) == ("invalid", "SIGNATURE_MULTIPLE")


def test_a_relay_trace_header_cannot_move_the_signing_time() -> None:
    """A TraceHeader appended after signing naming the sender, with a time chosen to make an
    expired or revoked certificate look valid, is not the sender's claim."""
    package = signed(drop_the_sender_trace(document(SENDER, [RECEIVER])))  # signed without one
    backdated = package.replace(
        b"</edXML:TraceHeaderList>",
        b"<edXML:TraceHeader><edXML:OrganId>000.00.01.H53</edXML:OrganId>"
        b"<edXML:Timestamp>2026/11/15 08:00:00</edXML:Timestamp></edXML:TraceHeader>"
        b"</edXML:TraceHeaderList>",
        1,
    )
    check = check_signature(backdated)
    assert_valid(check, 1)
    parsed = parse_package(backdated)
    received = datetime(2026, 11, 20, 12, 0, tzinfo=VIETNAM)
    claimed = datetime(2026, 11, 15, 8, 0, tzinfo=VIETNAM)
    assert signing_time(parsed, received) == claimed  # as if the sender had written it
    assert signing_time(parsed, received, set_aside=check.trace_headers_set_aside) == received


# --- through a node: /vxp sendEdoc under policy `require` ------------------------------------


@pytest.fixture(scope="module")
def trust_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("trust")
    (directory / "root.pem").write_bytes(ROOT.cert_pem)
    (directory / "intermediate.crl").write_bytes(CA.crl_pem())
    return directory


def relayed_by_this_software(package: bytes, directory: Path, code: str) -> bytes:
    """The bytes a node running this software hands on: `delivered_copy`, as a forwarding
    node or a download does."""
    stored = directory / f"stored-{hashlib.sha256(package).hexdigest()[:12]}.edxml"
    stored.write_bytes(package)
    copy = delivered_copy(stored, code, datetime.now(VIETNAM).replace(tzinfo=None))
    return b"".join(copy.chunks())


@pytest.mark.parametrize("hops", [1, 2])
async def test_a_relayed_package_is_accepted_under_require_and_stored_as_received(
    make_node: NodeFactory, trust_dir: Path, tmp_path: Path, hops: int
) -> None:
    relayed = relayed_by_this_software(signed(), tmp_path, PROVINCE_NODE)  # P53's node
    if hops == 2:
        relayed = by_axis(relayed)  # then a relay of the national axis
    node = await make_node(trust_dir=trust_dir, signature_policy="require", node_code=NATIONAL_NODE)
    province = await node.add_system("sys.h53", "#.H53")  # how P53's node is registered
    receiver = await node.add_system("sys.h54", RECEIVER)

    answer = await province.send_edoc(relayed, SENDER)
    assert answer["status"] == "OK", answer
    auth = node.rest_headers(province)
    view = (await node.http.get(f"/api/v1/packages/{answer['DocId']}", headers=auth)).json()
    report = view["signature"]
    assert report["outcome"] == "valid", report
    assert report["trace_headers_set_aside"] == hops
    assert report["revocation"] == "good"
    assert any("appended after signing" in note for note in report["notes"])
    assert view["sha256"] == hashlib.sha256(relayed).hexdigest()  # stored as received
    original = await node.http.get(f"/api/v1/packages/{answer['DocId']}/original", headers=auth)
    assert original.content == relayed

    # The next node gets this node's copy, one TraceHeader longer, and verifies it too.
    [item] = await poll_until(receiver, 1)
    delivered = await receiver.get_edoc(item["docId"])
    copy = base64.b64decode(delivered["data"])
    assert copy != relayed and NATIONAL_NODE.encode() in copy
    check = check_signature(copy)
    assert (check.outcome, check.trace_headers_set_aside) == ("valid", hops + 1)


async def test_a_tampered_relayed_package_is_refused_under_require(
    make_node: NodeFactory, trust_dir: Path, tmp_path: Path
) -> None:
    relayed = relayed_by_this_software(signed(), tmp_path, PROVINCE_NODE)
    node = await make_node(trust_dir=trust_dir, signature_policy="require")
    province = await node.add_system("sys.h53", "#.H53")
    await node.add_system("sys.h54", RECEIVER, "000.00.09.H54")
    answer = await province.send_edoc(add_a_recipient(relayed), SENDER)
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "25"), answer
    assert "SIGNATURE_DIGEST_MISMATCH" in answer["ErrorDesc"]
