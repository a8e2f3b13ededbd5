"""Certificate trust (adapters/signatures/trust.py, SPEC §3.4): chain to a trusted root,
validity at the signing time and now, key usage, revocation by CRL files and by CRLs fetched
over HTTP (cached), and the distinct `unverifiable` outcomes.

CRLs are served from a tiny HTTP server on 127.0.0.1; every network wait is bounded.
"""

from __future__ import annotations

import asyncio
import http.server
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.signatures.trust import TrustResult, TrustStore
from tests.support.pki import NOW, Authority, Issued, intermediate, root_authority, rsa_key

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class CrlServer:
    """Serves `files` (path → bytes) on 127.0.0.1:port from a thread; counts requests."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.files: dict[str, bytes] = {}
        self.hits = 0
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server.hits += 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._httpd = None


@dataclass
class Pki:
    root: Authority
    inter: Authority
    good: Issued
    expired: Issued
    future: Issued
    expires_soon: Issued
    encipherment: Issued
    revoked: Issued
    other_root: Authority
    other_inter: Authority
    stranger: Issued
    revoked_inter: Authority
    under_revoked_inter: Issued
    http_port: int
    http_inter: Authority
    http_good: Issued
    http_revoked: Issued
    closed_inter: Authority
    closed_good: Issued
    hanging_inter: Authority
    hanging_good: Issued


@pytest.fixture(scope="module")
def hanging_socket() -> Iterator[socket.socket]:
    """Accepts TCP connections (kernel backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def pki(hanging_socket: socket.socket) -> Pki:
    root = root_authority()
    inter = intermediate(root)
    revoked = inter.issue("Agency revoked")
    inter.revoke(revoked)
    revoked_inter = intermediate(root, "Revoked Intermediate CA (test)")
    root.revoke(revoked_inter)
    other_root = root_authority("Unrelated Root CA (test)")
    other_inter = intermediate(other_root, "Unrelated Intermediate CA (test)")

    port = free_port()
    http_inter = intermediate(
        root, "HTTP Intermediate CA (test)", crl_url=f"http://127.0.0.1:{port}/int.crl"
    )
    http_revoked = http_inter.issue("Agency revoked over HTTP")
    http_inter.revoke(http_revoked)
    closed_inter = intermediate(
        root, "Closed Intermediate CA (test)", crl_url=f"http://127.0.0.1:{free_port()}/int.crl"
    )
    hanging_port = hanging_socket.getsockname()[1]
    hanging_inter = intermediate(
        root, "Hanging Intermediate CA (test)", crl_url=f"http://127.0.0.1:{hanging_port}/int.crl"
    )
    return Pki(
        root=root,
        inter=inter,
        good=inter.issue("So Noi vu (test)"),
        expired=inter.issue(
            "Agency expired",
            not_before=NOW - timedelta(days=60),
            not_after=NOW - timedelta(days=10),
        ),
        future=inter.issue(
            "Agency future",
            not_before=NOW + timedelta(days=10),
            not_after=NOW + timedelta(days=100),
        ),
        expires_soon=inter.issue("Agency expires soon", not_after=NOW + timedelta(days=10)),
        encipherment=inter.issue("Agency encipherment", key_usage="encipherment"),
        revoked=revoked,
        other_root=other_root,
        other_inter=other_inter,
        stranger=other_inter.issue("Agency of another PKI"),
        revoked_inter=revoked_inter,
        under_revoked_inter=revoked_inter.issue("Agency under revoked CA"),
        http_port=port,
        http_inter=http_inter,
        http_good=http_inter.issue("Agency over HTTP"),
        http_revoked=http_revoked,
        closed_inter=closed_inter,
        closed_good=closed_inter.issue("Agency with unreachable CRL"),
        hanging_inter=hanging_inter,
        hanging_good=hanging_inter.issue("Agency with slow CRL"),
    )


@pytest.fixture
def crl_server(pki: Pki) -> Iterator[CrlServer]:
    server = CrlServer(pki.http_port)
    server.files["/int.crl"] = pki.http_inter.crl().public_bytes(DER)
    server.start()
    yield server
    server.stop()


def store(tmp_path: Path, *files: tuple[str, bytes], **options: object) -> TrustStore:
    trust_dir = tmp_path / "trust"
    trust_dir.mkdir(exist_ok=True)
    for name, content in files:
        (trust_dir / name).write_bytes(content)
    return TrustStore(trust_dir, cache_dir=tmp_path / "cache", **options)  # type: ignore[arg-type]


def forged_crl(authority: Authority, key: rsa.RSAPrivateKey) -> x509.CertificateRevocationList:
    """A CRL naming `authority` as issuer, listing nothing, signed by some other key."""
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(NOW - timedelta(hours=1))
        .next_update(NOW + timedelta(days=7))
        .sign(key, hashes.SHA256())
    )


def resign_sha1(certificate: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """The same certificate, signed with sha1WithRSAEncryption (cryptography no longer makes
    those, legacy CAs still have them)."""
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(DER))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_rsa"}
    tbs_der = tbs.dump(force=True)
    signature = issuer_key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1())
    rebuilt = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der),
            "signature_algorithm": {"algorithm": "sha1_rsa"},
            "signature_value": signature,
        }
    )
    return x509.load_der_x509_certificate(rebuilt.dump())


def corrupt_key_usage(
    certificate: x509.Certificate, issuer_key: rsa.RSAPrivateKey
) -> x509.Certificate:
    """The certificate with an undecodable keyUsage value (re-signed, so only the content
    is wrong)."""
    tbs = asn1_x509.Certificate.load(certificate.public_bytes(DER))["tbs_certificate"].dump()
    key_usage = bytes.fromhex("0603551d0f0101ff0404")  # OID, critical, OCTET STRING(4)
    at = tbs.index(key_usage) + len(key_usage)
    tbs = tbs[:at] + b"\x09" + tbs[at + 1 :]  # BIT STRING tag → REAL
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    rebuilt = asn1_x509.Certificate(
        {
            "tbs_certificate": asn1_x509.TbsCertificate.load(tbs),
            "signature_algorithm": {"algorithm": "sha256_rsa"},
            "signature_value": signature,
        }
    )
    return x509.load_der_x509_certificate(rebuilt.dump())


def subjects(*issued: Issued) -> tuple[str, ...]:
    return tuple(i.certificate.subject.rfc4514_string() for i in issued)


# -- chains ---------------------------------------------------------------------------------


async def test_chain_through_package_intermediate_with_crl_file_is_trusted(
    pki: Pki, tmp_path: Path
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.inter.crl_pem()))
    result = await trust.evaluate(pki.good.certificate, [pki.inter.certificate], at=NOW, now=NOW)
    assert result == TrustResult(
        "trusted", None, None, subjects(pki.good, pki.inter, pki.root), "good", True
    )
    assert trust.anchors == (pki.root.certificate,)


async def test_no_crl_and_no_distribution_point_is_not_checked(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.good.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code, result.revocation) == ("trusted", None, "not-checked")
    assert len(result.chain) == 3 and result.valid_now


async def test_intermediate_only_in_trust_dir(pki: Pki, tmp_path: Path) -> None:
    bundle = pki.root.cert_pem + pki.inter.cert_pem  # one PEM file, root and intermediate
    trust = store(tmp_path, ("bundle.pem", bundle), ("int.crl.pem", pki.inter.crl_pem()))
    assert trust.anchors == (pki.root.certificate,)
    result = await trust.evaluate(pki.good.certificate, [], at=NOW)
    assert result.outcome == "trusted" and result.revocation == "good"
    assert result.chain == subjects(pki.good, pki.inter, pki.root)


async def test_der_files_are_read(pki: Pki, tmp_path: Path) -> None:
    trust = store(
        tmp_path,
        ("root.cer", pki.root.certificate.public_bytes(DER)),
        ("int.crt", pki.inter.certificate.public_bytes(DER)),
        ("int.crl", pki.inter.crl().public_bytes(DER)),
    )
    result = await trust.evaluate(pki.good.certificate, [], at=NOW)
    assert (result.outcome, result.revocation) == ("trusted", "good")


async def test_expired_at_signing_time(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.expired.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("untrusted", "CERT_EXPIRED")
    assert result.reason and "Agency expired" in result.reason and stamp(NOW) in result.reason
    assert result.chain == subjects(pki.expired, pki.inter, pki.root)
    assert not result.valid_now


async def test_not_yet_valid_at_signing_time(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.future.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("untrusted", "CERT_NOT_YET_VALID")
    assert result.reason and "Agency future" in result.reason and stamp(NOW) in result.reason


async def test_valid_at_signing_time_but_expired_now(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.inter.crl_pem()))
    later = NOW + timedelta(days=20)
    result = await trust.evaluate(
        pki.expires_soon.certificate, [pki.inter.certificate], at=NOW, now=later
    )
    assert (result.outcome, result.code, result.revocation) == ("trusted", None, "good")
    assert result.valid_now is False
    assert result.reason and "Agency expires soon" in result.reason and "expired" in result.reason


async def test_intermediate_expired_at_signing_time_is_named(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    before = NOW - timedelta(days=45)  # the intermediate is valid from NOW - 30 days
    result = await trust.evaluate(pki.expired.certificate, [pki.inter.certificate], at=before)
    assert result.code == "CERT_NOT_YET_VALID"
    assert result.reason and "Intermediate CA (test)" in result.reason


async def test_key_encipherment_only_is_not_for_signing(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.encipherment.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("untrusted", "CERT_KEY_USAGE")
    assert result.reason and "keyEncipherment" in result.reason
    assert "Agency encipherment" in result.reason


async def test_unrelated_root_is_untrusted(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.stranger.certificate, [pki.other_inter.certificate], at=NOW)
    assert (result.outcome, result.code, result.chain) == ("untrusted", "CERT_UNTRUSTED_ROOT", ())
    assert result.reason and "Unrelated Root CA (test)" in result.reason
    # the unrelated root sent along with the package changes nothing
    result = await trust.evaluate(
        pki.stranger.certificate, [pki.other_inter.certificate, pki.other_root.certificate], at=NOW
    )
    assert (result.outcome, result.code) == ("untrusted", "CERT_UNTRUSTED_ROOT")
    assert result.reason and "ends at the root CA 'Unrelated Root CA (test)'" in result.reason


async def test_missing_intermediate_is_untrusted_root(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.good.certificate, [], at=NOW)
    assert (result.outcome, result.code) == ("untrusted", "CERT_UNTRUSTED_ROOT")
    assert result.reason and "Intermediate CA (test)" in result.reason


async def test_certificate_issued_by_a_non_ca_is_a_chain_error(pki: Pki, tmp_path: Path) -> None:
    as_issuer = Authority(pki.good.key, pki.good.certificate)  # basicConstraints CA:FALSE
    sub = as_issuer.issue("Issued by an end entity")
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(
        sub.certificate, [pki.inter.certificate, pki.good.certificate], at=NOW
    )
    assert (result.outcome, result.code) == ("untrusted", "CERT_CHAIN")
    assert result.reason and "not a CA" in result.reason


async def test_sha1_signed_certificate_is_accepted(pki: Pki, tmp_path: Path) -> None:
    legacy = resign_sha1(pki.inter.issue("Legacy SHA-1 agency").certificate, pki.inter.key)
    assert legacy.signature_hash_algorithm is not None
    assert legacy.signature_hash_algorithm.name == "sha1"
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(legacy, [pki.inter.certificate], at=NOW)
    assert result.outcome == "trusted", result.reason


# -- revocation from files -------------------------------------------------------------------


async def test_revoked_by_crl_file(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.inter.crl_pem()))
    result = await trust.evaluate(pki.revoked.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code, result.revocation) == (
        "revoked",
        "CERT_REVOKED",
        "revoked",
    )
    assert result.reason and "Agency revoked" in result.reason and stamp(NOW) in result.reason
    assert result.chain == subjects(pki.revoked, pki.inter, pki.root)


async def test_signed_before_revocation_is_trusted_but_not_valid_now(
    pki: Pki, tmp_path: Path
) -> None:
    # revoked at NOW - 65 min; the CRL itself is issued at NOW - 60 min, after this signing
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.inter.crl_pem()))
    signed = NOW - timedelta(hours=2)
    result = await trust.evaluate(
        pki.revoked.certificate, [pki.inter.certificate], at=signed, now=NOW
    )
    assert (result.outcome, result.revocation, result.valid_now) == ("trusted", "good", False)
    assert result.reason and "revoked" in result.reason


async def test_revoked_exactly_at_signing_time(pki: Pki, tmp_path: Path) -> None:
    crl = pki.inter.crl()
    entry = crl.get_revoked_certificate_by_serial_number(pki.revoked.certificate.serial_number)
    assert entry is not None
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", crl.public_bytes(DER)))
    result = await trust.evaluate(
        pki.revoked.certificate, [pki.inter.certificate], at=entry.revocation_date_utc
    )
    assert (result.outcome, result.code) == ("revoked", "CERT_REVOKED")


async def test_out_of_date_crl_still_proves_an_earlier_revocation(pki: Pki, tmp_path: Path) -> None:
    # the issuer's signed word that the certificate was revoked does not go stale
    old = pki.inter.crl(this_update=NOW - timedelta(days=30))
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", old.public_bytes(DER)))
    result = await trust.evaluate(pki.revoked.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("revoked", "CERT_REVOKED")


async def test_revoked_intermediate_by_root_crl_file(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("root.crl", pki.root.crl_pem()))
    result = await trust.evaluate(
        pki.under_revoked_inter.certificate, [pki.revoked_inter.certificate], at=NOW
    )
    assert (result.outcome, result.code) == ("revoked", "CERT_REVOKED")
    assert result.reason and "CA certificate 'Revoked Intermediate CA (test)'" in result.reason


async def test_crl_file_with_wrong_signature_is_not_used(pki: Pki, tmp_path: Path) -> None:
    forged = forged_crl(pki.inter, rsa_key()).public_bytes(PEM)
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", forged))
    result = await trust.evaluate(pki.revoked.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code, result.revocation) == (
        "unverifiable",
        "CERT_CRL_UNAVAILABLE",
        "unavailable",
    )


async def test_stale_crl_file_is_unavailable(pki: Pki, tmp_path: Path) -> None:
    old = pki.inter.crl(this_update=NOW - timedelta(days=30))  # nextUpdate NOW - 23 days
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", old.public_bytes(DER)))
    result = await trust.evaluate(pki.good.certificate, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("unverifiable", "CERT_CRL_UNAVAILABLE")
    assert result.reason and "So Noi vu (test)" in result.reason


# -- revocation over HTTP ----------------------------------------------------------------------


async def test_revoked_by_crl_over_http(pki: Pki, tmp_path: Path, crl_server: CrlServer) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(
        pki.http_revoked.certificate, [pki.http_inter.certificate], at=NOW
    )
    assert (result.outcome, result.code, result.revocation) == (
        "revoked",
        "CERT_REVOKED",
        "revoked",
    )
    assert result.reason and "Agency revoked over HTTP" in result.reason
    assert crl_server.hits == 1


async def test_crl_over_http_is_cached(pki: Pki, tmp_path: Path, crl_server: CrlServer) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), crl_max_age=timedelta(hours=1))
    intermediates = [pki.http_inter.certificate]
    first = await trust.evaluate(pki.http_good.certificate, intermediates, at=NOW)
    assert (first.outcome, first.revocation) == ("trusted", "good")
    second = await trust.evaluate(pki.http_good.certificate, intermediates, at=NOW)
    assert second == first and crl_server.hits == 1
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1

    crl_server.stop()
    third = await trust.evaluate(pki.http_good.certificate, intermediates, at=NOW)
    assert third == first
    restarted = store(tmp_path, ("root.pem", pki.root.cert_pem), crl_max_age=timedelta(hours=1))
    assert await restarted.evaluate(pki.http_good.certificate, intermediates, at=NOW) == first

    fetched_long_ago = time.time() - 2 * 3600
    os.utime(cached[0], (fetched_long_ago, fetched_long_ago))
    expired = await trust.evaluate(pki.http_good.certificate, intermediates, at=NOW)
    assert (expired.outcome, expired.code, expired.revocation) == (
        "unverifiable",
        "CERT_CRL_UNAVAILABLE",
        "unavailable",
    )
    assert expired.reason and crl_server.url("int.crl") in expired.reason


async def test_concurrent_evaluations_fetch_once(
    pki: Pki, tmp_path: Path, crl_server: CrlServer
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    results = await asyncio.gather(
        *(
            trust.evaluate(pki.http_good.certificate, [pki.http_inter.certificate], at=NOW)
            for _ in range(8)
        )
    )
    assert {(r.outcome, r.revocation) for r in results} == {("trusted", "good")}
    assert crl_server.hits == 1


async def test_crl_file_covers_when_the_server_is_down(
    pki: Pki, tmp_path: Path, crl_server: CrlServer
) -> None:
    crl_server.stop()
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.http_inter.crl_pem()))
    result = await trust.evaluate(
        pki.http_revoked.certificate, [pki.http_inter.certificate], at=NOW
    )
    assert (result.outcome, result.code) == ("revoked", "CERT_REVOKED")
    result = await trust.evaluate(pki.http_good.certificate, [pki.http_inter.certificate], at=NOW)
    assert (result.outcome, result.revocation) == ("trusted", "good")


async def test_crl_over_http_signed_by_wrong_key_is_not_used(
    pki: Pki, tmp_path: Path, crl_server: CrlServer
) -> None:
    crl_server.files["/int.crl"] = forged_crl(pki.http_inter, rsa_key()).public_bytes(DER)
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.http_good.certificate, [pki.http_inter.certificate], at=NOW)
    assert (result.outcome, result.code, result.revocation) == (
        "unverifiable",
        "CERT_CRL_UNAVAILABLE",
        "unavailable",
    )
    assert result.reason and "not signed by" in result.reason
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


async def test_crl_missing_on_server_is_unavailable(
    pki: Pki, tmp_path: Path, crl_server: CrlServer
) -> None:
    del crl_server.files["/int.crl"]
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    result = await trust.evaluate(pki.http_good.certificate, [pki.http_inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("unverifiable", "CERT_CRL_UNAVAILABLE")
    assert result.reason and "HTTP 404" in result.reason


async def test_unreachable_crl_url_is_unavailable_quickly(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), fetch_timeout=1.0)
    started = time.monotonic()
    result = await trust.evaluate(
        pki.closed_good.certificate, [pki.closed_inter.certificate], at=NOW
    )
    assert time.monotonic() - started < 3
    assert (result.outcome, result.code, result.revocation) == (
        "unverifiable",
        "CERT_CRL_UNAVAILABLE",
        "unavailable",
    )
    assert result.chain == subjects(pki.closed_good, pki.closed_inter, pki.root)
    assert result.reason and "Agency with unreachable CRL" in result.reason


async def test_silent_crl_server_times_out(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), fetch_timeout=0.5)
    started = time.monotonic()
    result = await asyncio.wait_for(
        trust.evaluate(pki.hanging_good.certificate, [pki.hanging_inter.certificate], at=NOW),
        timeout=10,
    )
    assert 0.4 < time.monotonic() - started < 3
    assert (result.outcome, result.code) == ("unverifiable", "CERT_CRL_UNAVAILABLE")
    assert result.reason and "timed out" in result.reason


async def test_fetching_disabled_without_cache_is_unavailable(
    pki: Pki, tmp_path: Path, crl_server: CrlServer
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), fetch_crls=False)
    result = await trust.evaluate(pki.http_good.certificate, [pki.http_inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("unverifiable", "CERT_CRL_UNAVAILABLE")
    assert crl_server.hits == 0


# -- configuration and input ------------------------------------------------------------------


async def test_no_trust_anchors(pki: Pki, tmp_path: Path) -> None:
    result = await TrustStore(None, cache_dir=tmp_path).evaluate(
        pki.good.certificate, [pki.inter.certificate], at=NOW
    )
    assert (result.outcome, result.code, result.chain) == (
        "unverifiable",
        "TRUST_NOT_CONFIGURED",
        (),
    )
    assert result.reason and "So Noi vu (test)" in result.reason
    only_intermediate = store(tmp_path, ("int.pem", pki.inter.cert_pem))
    assert only_intermediate.anchors == ()
    result = await only_intermediate.evaluate(pki.good.certificate, [], at=NOW)
    assert result.code == "TRUST_NOT_CONFIGURED"


async def test_reload_picks_up_new_roots(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path)
    assert trust.anchors == ()
    (tmp_path / "trust" / "root.pem").write_bytes(pki.root.cert_pem)
    (tmp_path / "trust" / "garbage.pem").write_bytes(
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    )
    (tmp_path / "trust" / "junk.crl").write_bytes(b"not a CRL")
    trust.reload()
    assert trust.anchors == (pki.root.certificate,)
    result = await trust.evaluate(pki.good.certificate, [pki.inter.certificate], at=NOW)
    assert result.outcome == "trusted"


async def test_naive_signing_time_is_utc_and_junk_intermediates_are_ignored(
    pki: Pki, tmp_path: Path
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    naive = NOW.replace(tzinfo=None)
    result = await trust.evaluate(
        pki.good.certificate,
        [pki.good.certificate, pki.other_root.certificate, pki.inter.certificate],
        at=naive,
        now=naive,
    )
    assert result.outcome == "trusted" and result.valid_now


async def test_bad_input_is_a_result_not_an_exception(pki: Pki, tmp_path: Path) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem))
    broken = corrupt_key_usage(
        pki.inter.issue("Agency with broken key usage").certificate, pki.inter.key
    )
    result = await trust.evaluate(broken, [pki.inter.certificate], at=NOW)
    assert (result.outcome, result.code) == ("untrusted", "CERT_CHAIN")
    assert result.reason and "could not be read" in result.reason
    result = await trust.evaluate("not a certificate", [], at=NOW)  # type: ignore[arg-type]
    assert (result.outcome, result.code) == ("unverifiable", "TRUST_ERROR")


# -- verdicts served again (adapters/signatures/trust_cache.py) ------------------------------


def crl_revoking(authority: Authority, *issued: Issued) -> x509.CertificateRevocationList:
    """A newer CRL of `authority` listing `issued` (revoked a minute before it was made)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.certificate.subject)
        .last_update(NOW - timedelta(minutes=1))
        .next_update(NOW + timedelta(days=7))
        .add_extension(x509.CRLNumber(1000 + len(issued)), False)
    )
    for item in issued:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(item.certificate.serial_number)
            .revocation_date(NOW - timedelta(minutes=2))
            .build()
        )
    return builder.sign(authority.key, hashes.SHA256())


async def test_a_trusted_verdict_is_served_again_while_nothing_changed(
    pki: Pki, tmp_path: Path
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.inter.crl_pem()))
    first = await trust.evaluate(pki.good.certificate, [pki.inter.certificate], at=NOW)
    assert (first.outcome, first.revocation) == ("trusted", "good")
    again = await trust.evaluate(
        pki.good.certificate, [pki.inter.certificate], at=NOW + timedelta(seconds=5)
    )
    assert again == first and trust.verdicts.hits == 1
    # another set of package intermediates is another question
    await trust.evaluate(pki.good.certificate, [], at=NOW)
    assert trust.verdicts.hits == 1


async def test_a_revoking_crl_file_refuses_a_certificate_trusted_before(
    pki: Pki, tmp_path: Path
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.inter.crl_pem()))
    signer = pki.inter.issue("Agency revoked after a first package")
    chain = [pki.inter.certificate]
    assert (await trust.evaluate(signer.certificate, chain, at=NOW)).outcome == "trusted"
    assert (await trust.evaluate(signer.certificate, chain, at=NOW)).outcome == "trusted"
    assert trust.verdicts.hits == 1

    (tmp_path / "trust" / "int.crl").write_bytes(crl_revoking(pki.inter, signer).public_bytes(DER))
    trust.reload()
    revoked = await trust.evaluate(signer.certificate, chain, at=NOW)
    assert (revoked.outcome, revoked.code) == ("revoked", "CERT_REVOKED")
    assert trust.verdicts.hits == 1


async def test_a_new_crl_in_the_shared_cache_refuses_at_once(
    pki: Pki, tmp_path: Path, crl_server: CrlServer
) -> None:
    """Another gateway process fetched a newer CRL into the cache directory: the next
    package is checked against it, not against the verdict."""
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), crl_max_age=timedelta(hours=1))
    signer = pki.http_inter.issue("Agency revoked, CRL fetched elsewhere")
    chain = [pki.http_inter.certificate]
    assert (await trust.evaluate(signer.certificate, chain, at=NOW)).outcome == "trusted"
    assert (await trust.evaluate(signer.certificate, chain, at=NOW)).outcome == "trusted"
    assert trust.verdicts.hits == 1

    (cached,) = list((tmp_path / "cache").iterdir())
    partial = cached.with_name("other-process.tmp")
    partial.write_bytes(crl_revoking(pki.http_inter, signer).public_bytes(DER))
    os.replace(partial, cached)
    revoked = await trust.evaluate(signer.certificate, chain, at=NOW)
    assert (revoked.outcome, revoked.code) == ("revoked", "CERT_REVOKED")
    assert trust.verdicts.hits == 1


async def test_a_refetched_crl_refuses_a_newly_revoked_certificate(
    pki: Pki, tmp_path: Path, crl_server: CrlServer
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), crl_max_age=timedelta(hours=1))
    signer = pki.http_inter.issue("Agency revoked, CRL refetched")
    chain = [pki.http_inter.certificate]
    assert (await trust.evaluate(signer.certificate, chain, at=NOW)).outcome == "trusted"
    crl_server.files["/int.crl"] = crl_revoking(pki.http_inter, signer).public_bytes(DER)
    # the cached copy is still young: the verdict stands
    assert (await trust.evaluate(signer.certificate, chain, at=NOW)).outcome == "trusted"
    assert trust.verdicts.hits == 1
    # once it is older than crl_max_age it is fetched again, and the new CRL decides
    (cached,) = list((tmp_path / "cache").iterdir())
    fetched_long_ago = time.time() - 2 * 3600
    os.utime(cached, (fetched_long_ago, fetched_long_ago))
    revoked = await trust.evaluate(signer.certificate, chain, at=NOW)
    assert (revoked.outcome, revoked.code) == ("revoked", "CERT_REVOKED")
    assert crl_server.hits == 2 and trust.verdicts.hits == 1


async def test_a_verdict_is_never_served_past_the_crl_next_update_or_age(
    pki: Pki, tmp_path: Path
) -> None:
    trust = store(
        tmp_path,
        ("root.pem", pki.root.cert_pem),
        ("int.crl", pki.inter.crl_pem()),  # nextUpdate: NOW + 7 days - 1 hour
        crl_max_age=timedelta(days=30),
    )
    chain = [pki.inter.certificate]
    assert (await trust.evaluate(pki.good.certificate, chain, at=NOW, now=NOW)).valid_now
    assert trust.verdicts.hits == 0
    late = NOW + timedelta(days=8)
    result = await trust.evaluate(pki.good.certificate, chain, at=NOW, now=late)
    assert trust.verdicts.hits == 0  # evaluated afresh
    assert result.outcome == "trusted"

    (tmp_path / "young").mkdir()
    young = store(
        tmp_path / "young",
        ("root.pem", pki.root.cert_pem),
        ("int.crl", pki.inter.crl_pem()),
        crl_max_age=timedelta(minutes=10),
    )
    await young.evaluate(pki.good.certificate, chain, at=NOW, now=NOW)
    await young.evaluate(pki.good.certificate, chain, at=NOW, now=NOW + timedelta(minutes=11))
    assert young.verdicts.hits == 0
    await young.evaluate(pki.good.certificate, chain, at=NOW, now=NOW + timedelta(minutes=12))
    assert young.verdicts.hits == 1  # the fresh verdict of the minute before


async def test_refusals_and_signatures_outside_validity_are_not_served_from_verdicts(
    pki: Pki, tmp_path: Path
) -> None:
    trust = store(tmp_path, ("root.pem", pki.root.cert_pem), ("int.crl", pki.inter.crl_pem()))
    chain = [pki.inter.certificate]
    for _ in range(2):
        revoked = await trust.evaluate(pki.revoked.certificate, chain, at=NOW)
        assert revoked.outcome == "revoked"
    assert trust.verdicts.hits == 0 and len(trust.verdicts) == 0
    assert (await trust.evaluate(pki.good.certificate, chain, at=NOW)).outcome == "trusted"
    expired = await trust.evaluate(pki.good.certificate, chain, at=NOW + timedelta(days=400))
    assert expired.outcome == "untrusted" and trust.verdicts.hits == 0
