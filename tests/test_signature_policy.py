"""Contract: signatures verified against the node's trust, decided by policy, on both APIs."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes

from adapters.signatures.xmldsig import check_signature, sign_package
from gateway.records import AgencyRecord
from gateway.types import AgencyCode
from tests.support.nodes import Node, NodeFactory
from tests.support.pki import NOW, Authority, Issued, intermediate, root_authority
from tests.support.polling import inbox_until
from tests.support.samples import document, sample

SENDER, OTHER_SENDER, RECEIVER = "000.00.01.H53", "000.00.05.H53", "000.00.02.H53"
KIT_TRANSFORM = "http://www.w3.org/TR/xml-exc-c14n#"


@dataclass
class Pki:
    root: Authority
    ca: Authority
    agency: Issued
    revoked: Issued
    expired: Issued
    stranger: Issued  # issued by a root the node does not trust
    offline_ca: Authority  # its certificates name a CRL that cannot be fetched
    unreachable_crl: Issued
    trust_dir: Path


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = root_authority()
    ca = intermediate(root)
    agency = ca.issue("So Thong tin va Truyen thong H53", serial_number="MST:0101")
    revoked = ca.issue("Van thu bi thu hoi")
    ca.revoke(revoked)
    expired = ca.issue(
        "Het han", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=30)
    )
    stranger = intermediate(root_authority("Other root"), "Other CA").issue("Nguoi la")
    offline = intermediate(
        root, "CA with offline CRL", crl_url=f"http://127.0.0.1:{closed_port()}/offline.crl"
    )
    trust_dir = tmp_path_factory.mktemp("trust")
    (trust_dir / "root.pem").write_bytes(root.cert_pem)
    (trust_dir / "intermediate.crl").write_bytes(ca.crl_pem())
    return Pki(
        root,
        ca,
        agency,
        revoked,
        expired,
        stranger,
        offline,
        offline.issue("Van thu CRL offline"),
        trust_dir,
    )


def signed(pki: Pki, signer: Issued, sender: str = SENDER, issuer: Issued | None = None) -> bytes:
    chain = [(issuer or pki.ca).cert_pem] if signer is not pki.stranger else []
    return sign_package(
        document(sender, [RECEIVER]), signer.key_pem, signer.cert_pem, extra_certs=chain
    )


async def start(make_node: NodeFactory, pki: Pki, **overrides: Any) -> tuple[Node, dict[str, str]]:
    node = await make_node(trust_dir=pki.trust_dir, crl_fetch_timeout_seconds=0.5, **overrides)
    client = await node.add_system("sys.sender", SENDER, OTHER_SENDER)
    await node.add_system("sys.receiver", RECEIVER)
    return node, node.rest_headers(client)


async def submit(node: Node, auth: dict[str, str], package: bytes) -> tuple[int, dict[str, Any]]:
    response = await node.http.post("/api/v1/packages", content=package, headers=auth)
    return response.status_code, response.json()


async def outcome(node: Node, auth: dict[str, str], message_id: str) -> dict[str, Any]:
    view = (await node.http.get(f"/api/v1/packages/{message_id}", headers=auth)).json()
    signature: dict[str, Any] = view["signature"]
    return signature


async def test_a_valid_signature_is_accepted_and_reported(make_node: NodeFactory, pki: Pki) -> None:
    node, auth = await start(make_node, pki)
    status, body = await submit(node, auth, signed(pki, pki.agency))
    assert status == 201, body
    report = await outcome(node, auth, body["id"])
    assert report["outcome"] == "valid"
    assert "So Thong tin va Truyen thong H53" in report["subject"]
    assert len(report["chain"]) == 3 and report["revocation"] == "good"
    original = await node.http.get(f"/api/v1/packages/{body['id']}/original", headers=auth)
    assert check_signature(original.content).outcome == "valid"  # recipients can check


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("tampered", "SIGNATURE_DIGEST_MISMATCH"),
        ("revoked", "CERT_REVOKED"),
        ("expired", "CERT_EXPIRED"),
        ("untrusted", "CERT_UNTRUSTED_ROOT"),
        ("downgraded", "SIGNATURE_VALUE_MISMATCH"),
    ],
)
async def test_bad_signatures_are_refused_with_their_reason(
    make_node: NodeFactory, pki: Pki, case: str, code: str
) -> None:
    node, auth = await start(make_node, pki)
    package = {
        "tampered": lambda: signed(pki, pki.agency).replace(b"V/v k", b"V/v K", 1),
        "revoked": lambda: signed(pki, pki.revoked),
        "expired": lambda: signed(pki, pki.expired),
        "untrusted": lambda: signed(pki, pki.stranger),
        # the kit's transform URI written into a valid signature, document altered:
        # a forgery passed off as "unverifiable" is still a forgery
        "downgraded": lambda: (
            signed(pki, pki.agency)
            .replace(
                b'<Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"',
                f'<Transform Algorithm="{KIT_TRANSFORM}"'.encode(),
            )
            .replace(b"V/v k", b"V/v K", 1)
        ),
    }[case]()
    status, body = await submit(node, auth, package)
    assert status == 422 and body["code"] == "SIGNATURE_REJECTED", body
    assert [(e["code"], e["path"]) for e in body["errors"]] == [(code, "Signature")]


async def test_the_sdk_gets_error_25_for_a_bad_signature(make_node: NodeFactory, pki: Pki) -> None:
    node, _ = await start(make_node, pki)
    client = await node.add_system("sys.sdk", "000.00.07.H53")
    package = sign_package(
        document("000.00.07.H53", [RECEIVER]),
        pki.revoked.key_pem,
        pki.revoked.cert_pem,
        extra_certs=[pki.ca.cert_pem],
    )
    answer = await client.send_edoc(package, "000.00.07.H53")
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "25")
    assert "CERT_REVOKED" in answer["ErrorDesc"]


async def test_policies_per_system_and_per_agency(make_node: NodeFactory, pki: Pki) -> None:
    node, auth = await start(make_node, pki)
    unsigned = document(SENDER, [RECEIVER])
    status, body = await submit(node, auth, unsigned)  # default: verify-if-present
    assert status == 201 and (await outcome(node, auth, body["id"]))["outcome"] == "absent"
    await node.runtime.store.set_signature_policy(system_id="sys.sender", policy="require")
    status, body = await submit(node, auth, document(SENDER, [RECEIVER]))
    assert status == 422 and body["errors"][0]["code"] == "SIGNATURE_REQUIRED"
    assert (await submit(node, auth, signed(pki, pki.agency)))[0] == 201
    await node.runtime.store.upsert_agencies([AgencyRecord(AgencyCode(SENDER), "Sở (test)")])
    await node.runtime.store.set_signature_policy(agency_code=SENDER, policy="off")
    tampered = signed(pki, pki.agency).replace(b"V/v k", b"V/v K", 1)
    status, body = await submit(node, auth, tampered)  # the agency's policy wins
    assert status == 201 and (await outcome(node, auth, body["id"]))["outcome"] == "not-checked"


async def test_unreachable_crl_is_its_own_outcome(make_node: NodeFactory, pki: Pki) -> None:
    node, auth = await start(make_node, pki)
    package = signed(pki, pki.unreachable_crl, issuer=pki.offline_ca)
    status, body = await submit(node, auth, package)  # verify-if-present: kept, flagged
    assert status == 201, body
    report = await outcome(node, auth, body["id"])
    assert (report["outcome"], report["code"]) == ("unverifiable", "CERT_CRL_UNAVAILABLE")
    view = (await node.http.get(f"/api/v1/packages/{body['id']}", headers=auth)).json()
    assert "CERT_CRL_UNAVAILABLE" in {w["code"] for w in view["warnings"]}
    await node.runtime.store.set_signature_policy(system_id="sys.sender", policy="require")
    status, body = await submit(node, auth, signed(pki, pki.unreachable_crl, issuer=pki.offline_ca))
    assert status == 422 and body["errors"][0]["code"] == "CERT_CRL_UNAVAILABLE"


async def test_a_certificate_bound_to_another_agency_is_spoofing(
    make_node: NodeFactory, pki: Pki
) -> None:
    node, auth = await start(make_node, pki)
    fingerprint = pki.agency.certificate.fingerprint(hashes.SHA256()).hex()
    await node.runtime.store.add_binding(SENDER, fingerprint, None)
    assert (await submit(node, auth, signed(pki, pki.agency)))[0] == 201
    status, body = await submit(node, auth, signed(pki, pki.agency, sender=OTHER_SENDER))
    assert status == 422 and body["errors"][0]["code"] == "SIGNATURE_SPOOFED"
    assert SENDER in body["errors"][0]["message"]


async def test_metrics_count_signature_outcomes(make_node: NodeFactory, pki: Pki) -> None:
    node, auth = await start(make_node, pki)
    await submit(node, auth, signed(pki, pki.agency))
    await submit(node, auth, document(SENDER, [RECEIVER]))
    text = (await node.http.get("/metrics")).text
    assert 'lienthong_messages{kind="edoc",signature="valid"} 1' in text
    assert 'lienthong_messages{kind="edoc",signature="absent"} 1' in text


async def test_the_kit_sample_is_unverifiable_accepted_by_default_refused_under_require(
    make_node: NodeFactory, pki: Pki
) -> None:
    """edoc_new.edxml as published (QCVN-namespace Signature, the kit's transform URI, a
    truncated certificate): nobody can check it, nothing proves it false."""
    node, _ = await start(make_node, pki)
    kit = await node.add_system("sys.kit", "000.00.00.A80")
    receiver = await node.add_system("sys.kit.receiver", "28.22.H17")
    auth = node.rest_headers(kit)
    status, body = await submit(node, auth, sample("edoc_new.edxml"))
    assert status == 201, body
    view = (await node.http.get(f"/api/v1/packages/{body['id']}", headers=auth)).json()
    report = view["signature"]
    assert (report["outcome"], report["code"]) == (
        "unverifiable",
        "SIGNATURE_UNSUPPORTED_TRANSFORM",
    )
    assert "misspelling of exclusive C14N" in report["reason"]
    assert report["namespace"] == "qcvn" and report["weak_algorithm"] is True
    warnings = {w["code"]: w for w in view["warnings"]}
    assert warnings["SIGNATURE_UNSUPPORTED_TRANSFORM"]["path"] == "Signature"
    assert "could not be verified" in warnings["SIGNATURE_UNSUPPORTED_TRANSFORM"]["message"]
    assert "EDXML_CODE_NONSTANDARD" in warnings
    [item] = await inbox_until(node.http, node.rest_headers(receiver), 1)
    assert item["message_id"] == body["id"]

    await node.runtime.store.set_signature_policy(system_id="sys.kit", policy="require")
    status, body = await submit(node, auth, sample("edoc_new.edxml"))
    assert status == 422 and body["code"] == "SIGNATURE_REJECTED", body
    [error] = body["errors"]
    assert (error["code"], error["path"]) == ("SIGNATURE_UNSUPPORTED_TRANSFORM", "Signature")
    answer = await kit.send_edoc(sample("edoc_new.edxml"), "000.00.00.A80")
    assert (answer["status"], answer["ErrorCode"]) == ("FAIL", "25")
    assert "SIGNATURE_UNSUPPORTED_TRANSFORM" in answer["ErrorDesc"]
