"""Certificate trust for package signatures (SPEC §3.4).

Does the signer's certificate chain to a CA this node trusts, and was every certificate of
that chain within its validity period, unrevoked and fit for its purpose when the package was
signed (the TraceHeader timestamp)?

* Trust anchors are the self-signed CA certificates in the trust directory; other CA
  certificates there, and the certificates the package carries in its KeyInfo, are candidates
  for the path.
* Path building and PKIX validation (signatures, names, basic constraints, path length,
  validity) are pyhanko-certvalidator's, at the signing time. Key usage of the signer is
  checked here: pyhanko's ``validate_usage`` wants *all* the usages listed (we accept
  digitalSignature *or* nonRepudiation) and fails a certificate without the extension.
* Revocation is by CRL: files in the trust directory, and for each certificate with an
  HTTP(S) distribution point, the CRL fetched with httpx (bounded by ``fetch_timeout``) and
  cached on disk as ``<cache_dir>/<sha256 of the URL>.crl`` (DER; the file's mtime is the
  fetch time). A cached CRL is reused while younger than ``crl_max_age`` and before its
  nextUpdate, refetched otherwise; a failed download is not retried for
  ``FETCH_FAILURE_BACKOFF`` seconds. A CRL is used (and cached) only once verified: issuer
  name equal to the certificate's issuer, signature by that issuer's key.
* pyhanko checks each certificate against those CRLs (scope, freshness at the signing time,
  revocation time), one certificate at a time so that a problem is reported against the
  right one. CRLs issued after the signing time count: the revocation date decides. A
  verified CRL listing the certificate as revoked at or before the signing time is proof of
  revocation even when pyhanko finds it out of date (certificate holds excepted).
* A revocation status that cannot be established (download failed or timed out and no fresh
  cached copy, a CRL not signed by the issuer, a CRL out of date for the signing time) for a
  certificate that declares where its CRL is, or whose issuer has CRL files, is a distinct
  outcome: ``unverifiable`` / CERT_CRL_UNAVAILABLE, never ``trusted``. A certificate that
  declares no CRL, and whose issuer has no CRL file, is revocation ``not-checked``.

Algorithm policy: SHA-1 and RSA keys from 1024 bits are accepted in certificates and CRLs
(legacy CAs, SPEC §3.4); MD2/MD5 are not.

``evaluate`` never raises: every problem, including malformed input, is a ``TrustResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import NameOID
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    PathError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.ltv.poe import POEManager
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    DisallowWeakAlgorithmsPolicy,
    NonRevokedStatusAssertion,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import CertificateRegistry, SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import process_legacy_crl_input
from pyhanko_certvalidator.revinfo.manager import RevinfoManager
from pyhanko_certvalidator.validate import async_validate_path

log = logging.getLogger(__name__)

Outcome = Literal["trusted", "untrusted", "revoked", "unverifiable"]
Revocation = Literal["good", "revoked", "unavailable", "not-checked"]

CERT_UNTRUSTED_ROOT = "CERT_UNTRUSTED_ROOT"
CERT_EXPIRED = "CERT_EXPIRED"
CERT_NOT_YET_VALID = "CERT_NOT_YET_VALID"
CERT_KEY_USAGE = "CERT_KEY_USAGE"
CERT_REVOKED = "CERT_REVOKED"
CERT_CRL_UNAVAILABLE = "CERT_CRL_UNAVAILABLE"
CERT_CHAIN = "CERT_CHAIN"
TRUST_NOT_CONFIGURED = "TRUST_NOT_CONFIGURED"
TRUST_ERROR = "TRUST_ERROR"
"""An unexpected failure inside the evaluation itself (a bug, not the certificate's fault)."""

MAX_CRL_BYTES = 32 * 1024 * 1024
FETCH_FAILURE_BACKOFF = 30.0
"""Seconds during which a failed CRL download is not retried (so a burst of packages from
an agency whose CA is unreachable does not wait ``fetch_timeout`` each)."""

_ALGORITHM_POLICY = DisallowWeakAlgorithmsPolicy(  # type: ignore[no-untyped-call]
    weak_hash_algos=frozenset({"md2", "md5"}), rsa_key_size_threshold=1024)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
_TRUST_SUFFIXES = (".pem", ".crt", ".cer", ".crl")
_CRL_SUFFIXES = (".crl", ".crl.pem")

_VerifyingKey = (rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey
                 | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


@dataclass(frozen=True, slots=True)
class TrustResult:
    outcome: Outcome
    code: str | None
    """CERT_UNTRUSTED_ROOT, CERT_EXPIRED, CERT_NOT_YET_VALID, CERT_KEY_USAGE, CERT_REVOKED,
    CERT_CRL_UNAVAILABLE, CERT_CHAIN, TRUST_NOT_CONFIGURED, TRUST_ERROR; None when trusted."""
    reason: str | None
    """For a clerk or an operator: which certificate (subject CN), what, and the time checked.
    None for a trusted chain that is also valid now; a note otherwise."""
    chain: tuple[str, ...]
    """RFC 4514 subjects, signer first, root last (empty if no path was found)."""
    revocation: Revocation
    """Revoked or unavailable anywhere in the chain; else the signer certificate's status
    (``not-checked`` when it names no CRL and none is on file for its issuer)."""
    valid_now: bool
    """Trusted, and the chain is also within validity and unrevoked at the time of checking."""


@dataclass(frozen=True, slots=True)
class _Material:
    anchors: tuple[x509.Certificate, ...] = ()
    cas: tuple[x509.Certificate, ...] = ()
    crls: tuple[x509.CertificateRevocationList, ...] = ()


@dataclass(slots=True)
class _Link:
    """A certificate of the path below the trust anchor, with its issuer."""

    cert: x509.Certificate
    issuer: x509.Certificate
    role: str
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)
    status: Revocation = "not-checked"
    problem: str | None = None
    revoked_at: datetime | None = None
    revoked_reason: str | None = None


class _Refusal(Exception):
    def __init__(self, result: TrustResult) -> None:
        super().__init__(result.reason)
        self.result = result


class TrustStore:
    def __init__(self, trust_dir: Path | None, *, cache_dir: Path,
                 crl_max_age: timedelta = timedelta(hours=24), fetch_timeout: float = 5.0,
                 fetch_crls: bool = True) -> None:
        self._trust_dir = trust_dir
        self._cache_dir = cache_dir
        self._crl_max_age = crl_max_age
        self._fetch_timeout = fetch_timeout
        self._fetch_crls = fetch_crls
        self._material = _Material()
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, tuple[float, str]] = {}
        self.reload()

    # -- trust directory ------------------------------------------------------------------

    def reload(self) -> None:
        """(Re)read the trust directory: certificates from *.pem, *.crt, *.cer (PEM, possibly
        several per file, or a single DER certificate) and CRLs from *.crl, *.crl.pem (PEM or
        DER). Unreadable files are logged and skipped."""
        anchors: dict[bytes, x509.Certificate] = {}
        cas: dict[bytes, x509.Certificate] = {}
        crls: list[x509.CertificateRevocationList] = []
        directory = self._trust_dir
        if directory is not None and not directory.is_dir():
            log.warning("trust directory %s does not exist: no trusted CA", directory)
        elif directory is not None:
            for path in sorted(directory.iterdir()):
                name = path.name.lower()
                if not path.is_file() or not name.endswith(_TRUST_SUFFIXES):
                    continue
                try:
                    certificates, lists = _parse_trust_file(path.read_bytes(),
                                                            name.endswith(_CRL_SUFFIXES))
                except (OSError, ValueError) as exc:
                    log.warning("trust file %s skipped: %s", path, exc)
                    continue
                crls.extend(lists)
                for certificate in certificates:
                    der = _der(certificate)
                    is_ca = _is_ca(certificate)
                    if _self_signed(certificate) and is_ca is not False:
                        anchors[der] = certificate
                    elif is_ca:
                        cas[der] = certificate
                    else:
                        log.warning("trust file %s: %s is not a CA certificate, ignored",
                                    path, _cn(certificate))
        self._material = _Material(tuple(anchors.values()), tuple(cas.values()), tuple(crls))
        log.info("trust store: %d root(s), %d other CA certificate(s), %d CRL(s)",
                 len(anchors), len(cas), len(crls))

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return self._material.anchors

    # -- evaluation -----------------------------------------------------------------------

    async def evaluate(self, signer: x509.Certificate,
                       intermediates: Sequence[x509.Certificate], at: datetime,
                       now: datetime | None = None) -> TrustResult:
        try:
            return await self._evaluate(signer, intermediates, _utc(at),
                                        _utc(now or datetime.now(UTC)))
        except _Refusal as refusal:
            return refusal.result
        except Exception as exc:  # never raise: a bug must not pass a package as trusted
            log.exception("certificate trust evaluation failed")
            return TrustResult("unverifiable", TRUST_ERROR,
                               f"The certificate trust could not be evaluated ({exc}).",
                               (), "not-checked", False)

    async def _evaluate(self, signer: x509.Certificate,
                        intermediates: Sequence[x509.Certificate], at: datetime,
                        now: datetime) -> TrustResult:
        material = self._material
        name = _describe(signer)
        if not material.anchors:
            where = (f"the trust directory {self._trust_dir} holds none" if self._trust_dir
                     else "no trust directory is configured")
            return TrustResult("unverifiable", TRUST_NOT_CONFIGURED,
                               f"This node has no trusted root CA certificate ({where}), so "
                               f"the signer's certificate {name} could not be checked "
                               f"(signing time {_fmt(at)}).", (), "not-checked", False)

        path = await self._build_path(signer, intermediates, material, at)
        certs = _path_certificates(path)
        chain = _subjects(certs)
        links = [_Link(cert, certs[index - 1], _role(index, certs))
                 for index, cert in enumerate(certs) if index > 0]

        # pyhanko does not check the trust anchor's own validity period: do it for all.
        problem = _validity_problem(certs, at)
        if problem:
            return TrustResult("untrusted", problem[0], problem[1], chain, "not-checked", False)

        usage = _key_usage_problem(signer)
        if usage:
            return TrustResult("untrusted", CERT_KEY_USAGE, usage, chain, "not-checked", False)

        await self._check_revocation(path, links, certs[0], at)

        revoked = [link for link in links if link.status == "revoked"]
        if revoked:
            link = revoked[0]
            assert link.revoked_at is not None
            return TrustResult("revoked", CERT_REVOKED,
                               f"The {link.role} {_describe(link.cert)} was revoked on "
                               f"{_fmt(link.revoked_at)} (reason: {link.revoked_reason}), "
                               f"at or before the signing time {_fmt(at)}.",
                               chain, "revoked", False)
        unavailable = [link for link in links if link.status == "unavailable"]
        if unavailable:
            link = unavailable[0]
            return TrustResult("unverifiable", CERT_CRL_UNAVAILABLE,
                               f"The revocation status of the {link.role} "
                               f"{_describe(link.cert)} at the signing time {_fmt(at)} could "
                               f"not be established: {link.problem}.",
                               chain, "unavailable", False)

        # (no links: the signer's certificate is itself one of the trusted roots)
        revocation: Revocation = "good" if links and links[-1].status == "good" else "not-checked"
        later = _now_problem(certs, links, now)
        return TrustResult("trusted", None, later, chain, revocation, later is None)

    async def _build_path(self, signer: x509.Certificate,
                          intermediates: Sequence[x509.Certificate], material: _Material,
                          at: datetime) -> ValidationPath:
        """Path building and PKIX validation at the signing time, without revocation."""
        name = _describe(signer)
        try:
            leaf = _asn1(signer)
            others = [_asn1(c) for c in (*intermediates, *material.cas)]
            context = ValidationContext(
                trust_roots=[_asn1(c) for c in material.anchors], other_certs=others,
                moment=at, revocation_mode="none", algorithm_usage_policy=_ALGORITHM_POLICY)
            return await CertificateValidator(leaf, validation_context=context
                                              ).async_validate_path()
        except (ExpiredError, NotYetValidError) as exc:
            certs = _path_certificates(exc.current_path)
            chain = _subjects(certs)
            problem = _validity_problem(certs, at)
            if problem:
                raise _Refusal(TrustResult("untrusted", problem[0], problem[1], chain,
                                           "not-checked", False)) from exc
            code = CERT_EXPIRED if isinstance(exc, ExpiredError) else CERT_NOT_YET_VALID
            raise _Refusal(TrustResult("untrusted", code,
                                       f"{_humanize(exc.failure_msg, certs)} (signing time "
                                       f"{_fmt(at)}).", chain, "not-checked", False)) from exc
        except (PathBuildingError, InvalidCertificateError, PathError) as exc:
            reason = _missing_link(signer, intermediates, material)
            log.info("no path for %s: %s", name, exc)
            raise _Refusal(TrustResult("untrusted", CERT_UNTRUSTED_ROOT, reason, (),
                                       "not-checked", False)) from exc
        except DisallowedAlgorithmError as exc:
            certs = _error_path(exc)
            raise _Refusal(TrustResult(
                "untrusted", CERT_CHAIN, f"The certificate chain of {name} uses an algorithm "
                f"this node does not accept: {_lower(_humanize(exc.failure_msg, certs))}.",
                _subjects(certs), "not-checked", False)) from exc
        except ValidationError as exc:
            certs = _error_path(exc)
            raise _Refusal(TrustResult(
                "untrusted", CERT_CHAIN, f"The certificate chain of {name} is not valid at the "
                f"signing time {_fmt(at)}: {_lower(_humanize(exc.failure_msg, certs))}.",
                _subjects(certs), "not-checked", False)) from exc
        except ValueError as exc:  # asn1crypto could not parse a certificate
            raise _Refusal(TrustResult(
                "untrusted", CERT_CHAIN, f"A certificate of the chain of {name} could not be "
                f"read: {_explain(exc)}.", (), "not-checked", False)) from exc

    # -- revocation -----------------------------------------------------------------------

    async def _check_revocation(self, path: ValidationPath, links: list[_Link],
                                anchor: x509.Certificate, at: datetime) -> None:
        await asyncio.gather(*(self._collect_crls(link) for link in links))
        for index, link in enumerate(links):
            if not link.crls:
                continue
            await self._pyhanko_revocation(path, links, index, anchor, at)
            if link.status == "revoked":
                continue
            # pyhanko takes a revocation exactly at the validation time as not yet effective
            # (the SPEC says "at or before"), and ignores a CRL that is out of date for the
            # signing time, even one (verified) that lists the certificate as revoked before.
            entry = _revocation_entry(link)
            if entry and entry[0] <= at and (link.status == "good"
                                             or entry[1] != "certificateHold"):
                link.status, link.revoked_at, link.revoked_reason = "revoked", *entry

    async def _collect_crls(self, link: _Link) -> None:
        issuer = link.issuer
        on_file = [c for c in self._material.crls if c.issuer == issuer.subject]
        link.crls = [c for c in on_file if _crl_signed_by(c, issuer)]
        problems = []
        urls = _crl_urls(link.cert)
        for url in urls:
            crl, problem = await self._crl_from(url, issuer)
            if crl is not None:
                link.crls.append(crl)
                break
            problems.append(problem)
        if link.crls:
            return
        if len(on_file) > len(link.crls):
            problems.append(f"the CRL file(s) in the trust directory for its issuer "
                            f"{_describe(issuer)} are not signed by that CA's key")
        elif problems:
            problems.append(f"no CRL file for its issuer {_describe(issuer)} is in the trust "
                            f"directory")
        if problems:
            link.status = "unavailable"
            link.problem = "; ".join(problems)

    async def _crl_from(self, url: str, issuer: x509.Certificate
                        ) -> tuple[x509.CertificateRevocationList | None, str]:
        """A verified CRL for ``issuer`` from ``url``: the cached copy while it is fresh,
        else a new download (kept only once verified)."""
        cache = self._cache_dir / (hashlib.sha256(url.encode()).hexdigest() + ".crl")
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = _read_cached(cache, self._crl_max_age)
            if cached is not None and _crl_signed_by(cached, issuer):
                return cached, ""
            if not self._fetch_crls:
                return None, (f"there is no fresh cached copy of the CRL at {url} and CRL "
                              f"fetching is disabled")
            failed = self._failures.get(url)
            if failed and time.monotonic() - failed[0] < FETCH_FAILURE_BACKOFF:
                return None, failed[1]
            try:
                data = await self._download(url)
                crl = _load_crl(data)
            except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError, ValueError) as exc:
                problem = f"the CRL at {url} could not be downloaded ({_explain(exc)})"
                self._failures[url] = (time.monotonic(), problem)
                log.warning("%s", problem)
                return None, problem
            if not _crl_signed_by(crl, issuer):
                problem = (f"the CRL at {url} is not signed by the issuing CA "
                           f"{_describe(issuer)} and was not used")
                self._failures[url] = (time.monotonic(), problem)
                log.warning("%s", problem)
                return None, problem
            self._failures.pop(url, None)
            _write_cached(cache, crl)
            return crl, ""

    async def _download(self, url: str) -> bytes:
        async with asyncio.timeout(self._fetch_timeout), httpx.AsyncClient(
                timeout=self._fetch_timeout, follow_redirects=True, max_redirects=3) as client:
            async with client.stream("GET", url, headers={
                    "Accept": "application/pkix-crl, application/x-pkcs7-crl, */*"}) as response:
                response.raise_for_status()
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_CRL_BYTES:
                        raise ValueError(f"larger than {MAX_CRL_BYTES} bytes")
                    chunks.append(chunk)
        return b"".join(chunks)

    async def _pyhanko_revocation(self, path: ValidationPath, links: list[_Link], index: int,
                                  anchor: x509.Certificate, at: datetime) -> None:
        """Check ``links[index]`` alone against its CRLs (the other CA certificates are
        asserted unrevoked for this run, the signer's rule is "no check" unless it is the
        one being checked). CRLs issued after the signing time count (``retroactive``):
        the revocation date in them decides."""
        link = links[index]
        is_signer = index == len(links) - 1
        required, skip = RevocationCheckingRule.CRL_REQUIRED, RevocationCheckingRule.NO_CHECK
        policy = CertRevTrustPolicy(
            RevocationCheckingPolicy(required if is_signer else skip,
                                     skip if is_signer else required),
            retroactive_revinfo=True)
        assertions = [NonRevokedStatusAssertion(hashlib.sha256(_der(other.cert)).digest(), at)
                      for other in links[:-1] if other is not link]
        registry = CertificateRegistry.build([_asn1(other.cert) for other in links])
        revinfo = RevinfoManager(
            certificate_registry=registry, poe_manager=POEManager(),
            crls=process_legacy_crl_input([c.public_bytes(serialization.Encoding.DER)
                                           for c in link.crls]),
            ocsps=(), assertions=assertions)
        context = ValidationContext(
            trust_manager=SimpleTrustManager.build(trust_roots=[_asn1(anchor)]),
            certificate_registry=registry, revinfo_manager=revinfo, moment=at,
            revinfo_policy=policy, algorithm_usage_policy=_ALGORITHM_POLICY)
        try:
            await async_validate_path(context, path)
        except RevokedError as exc:
            entry = _revocation_entry(link)
            link.status = "revoked"
            link.revoked_at = entry[0] if entry else _utc(exc.revocation_dt)
            link.revoked_reason = entry[1] if entry else str(exc.reason.human_friendly)
            return
        except ValidationError as exc:
            detail = exc.failure_msg
            if isinstance(exc, InsufficientRevinfoError):
                detail = detail.partition(" failed: ")[2] or detail
            link.status = "unavailable"
            link.problem = (f"the CRL from its issuer {_describe(link.issuer)} could not be "
                            f"used: {_humanize(detail, [])}")
            return
        link.status = "good"


# -- helpers ------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _fmt(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _asn1(certificate: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(_der(certificate))


def _from_asn1(certificate: Any) -> x509.Certificate:
    return x509.load_der_x509_certificate(certificate.dump())


def _path_certificates(path: ValidationPath) -> list[x509.Certificate]:
    """Root first, signer last."""
    return [_from_asn1(c) for c in path.iter_certs(include_root=True)]


def _lower(sentence: str) -> str:
    """A sentence to go after a colon."""
    return (sentence[:1].lower() + sentence[1:]).rstrip(".")


def _error_path(exc: ValidationError) -> list[x509.Certificate]:
    path = getattr(exc, "current_path", None)
    return _path_certificates(path) if isinstance(path, ValidationPath) else []


def _subjects(certs: list[x509.Certificate]) -> tuple[str, ...]:
    """RFC 4514 subjects, signer first (``certs`` is root first)."""
    return tuple(c.subject.rfc4514_string() for c in reversed(certs))


_POSITION = re.compile(r"(?:the )?(intermediate certificate (\d+)|end-entity certificate)")


def _humanize(message: str, certs: list[x509.Certificate]) -> str:
    """pyhanko names certificates by position ("intermediate certificate 1", counted from
    the root, "the end-entity certificate"): name them by subject CN instead."""
    def name(match: re.Match[str]) -> str:
        if match.group(2) is None:
            return (f"the signer's certificate {_describe(certs[-1])}" if certs
                    else match.group(0))
        index = int(match.group(2))
        return (f"the certificate {_describe(certs[index])}" if 0 < index < len(certs)
                else match.group(0))

    text = _POSITION.sub(name, message.removeprefix("The path could not be validated because "))
    return text[:1].upper() + text[1:]


def _cn(certificate: x509.Certificate) -> str:
    try:
        names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if names:
            value = names[0].value
            return value if isinstance(value, str) else value.decode(errors="replace")
        return certificate.subject.rfc4514_string() or "(empty subject)"
    except ValueError:
        return "(unreadable subject)"


def _describe(certificate: x509.Certificate) -> str:
    return f"'{_cn(certificate)}'"


def _is_ca(certificate: x509.Certificate) -> bool | None:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return None


def _self_signed(certificate: x509.Certificate) -> bool:
    if certificate.subject != certificate.issuer:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except Exception:  # InvalidSignature, ValueError, TypeError (unsupported key types)
        return False
    return True


def _role(index: int, certs: list[x509.Certificate]) -> str:
    if index == len(certs) - 1:
        return "signer's certificate"
    return "root CA certificate" if index == 0 else "CA certificate"


def _validity_problem(certs: list[x509.Certificate], at: datetime) -> tuple[str, str] | None:
    """The first certificate (from the root) not valid at ``at``: (code, reason)."""
    for index, certificate in enumerate(certs):
        role, name = _role(index, certs), _describe(certificate)
        if at < certificate.not_valid_before_utc:
            return CERT_NOT_YET_VALID, (
                f"The {role} {name} is valid only from "
                f"{_fmt(certificate.not_valid_before_utc)}, after the signing time {_fmt(at)}.")
        if at > certificate.not_valid_after_utc:
            return CERT_EXPIRED, (
                f"The {role} {name} expired on {_fmt(certificate.not_valid_after_utc)}, before "
                f"the signing time {_fmt(at)}.")
    return None


_USAGE_NAMES = {
    "digital_signature": "digitalSignature", "content_commitment": "nonRepudiation",
    "key_encipherment": "keyEncipherment", "data_encipherment": "dataEncipherment",
    "key_agreement": "keyAgreement", "key_cert_sign": "keyCertSign", "crl_sign": "cRLSign"}


def _key_usage_problem(signer: x509.Certificate) -> str | None:
    try:
        usage = signer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if usage.digital_signature or usage.content_commitment:
        return None
    present = [label for attribute, label in _USAGE_NAMES.items() if getattr(usage, attribute)]
    return (f"The signer's certificate {_describe(signer)} is not meant for signatures: its key "
            f"usage ({', '.join(present) or 'none'}) has neither digitalSignature nor "
            f"nonRepudiation.")


def _missing_link(signer: x509.Certificate, intermediates: Sequence[x509.Certificate],
                  material: _Material) -> str:
    """Where the chain of ``signer`` stops, in words."""
    known = [*intermediates, *material.cas, *material.anchors]
    current, seen = signer, {_der(signer)}
    while True:
        which = ("The signer's certificate" if current is signer
                 else f"The chain of the signer's certificate {_describe(signer)} reaches the "
                      f"CA certificate")
        if _self_signed(current):
            if current is signer:
                return (f"The signer's certificate {_describe(signer)} is self-signed and is "
                        f"not one of the root CAs this node trusts.")
            return (f"The chain of the signer's certificate {_describe(signer)} ends at the "
                    f"root CA {_describe(current)}, which is not one of the root CAs this node "
                    f"trusts.")
        parent = next((c for c in known if c.subject == current.issuer
                       and _der(c) not in seen and _issued_by(current, c)), None)
        if parent is None:
            issuer = current.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
            label = (f"'{issuer[0].value!s}'" if issuer
                     else f"'{current.issuer.rfc4514_string()}'")
            return (f"{which} {_describe(current)}, issued by {label}: that CA is neither a "
                    f"root this node trusts nor among its CA certificates or those sent with "
                    f"the package.")
        if any(_der(parent) == _der(anchor) for anchor in material.anchors):
            return (f"The chain of the signer's certificate {_describe(signer)} reaches the "
                    f"trusted root {_describe(parent)} but could not be validated.")
        current = parent
        seen.add(_der(parent))


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except Exception:  # InvalidSignature, ValueError, TypeError, unsupported key types
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    if crl.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    if not isinstance(key, _VerifyingKey):
        return False
    try:
        return crl.is_signature_valid(key)
    except Exception:  # unsupported algorithm
        return False


def _crl_urls(certificate: x509.Certificate) -> list[str]:
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        for name in point.full_name or ():
            if (isinstance(name, x509.UniformResourceIdentifier)
                    and urlsplit(name.value).scheme.lower() in ("http", "https")):
                urls.append(name.value)
    return urls


def _revocation_entry(link: _Link) -> tuple[datetime, str] | None:
    """The earliest revocation of ``link.cert`` in its verified CRLs (certificates taken off
    hold, reason removeFromCRL, do not count)."""
    found: list[tuple[datetime, str]] = []
    for crl in link.crls:
        entry = crl.get_revoked_certificate_by_serial_number(link.cert.serial_number)
        if entry is None:
            continue
        reason = "unspecified"
        with contextlib.suppress(x509.ExtensionNotFound):
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        if reason != "removeFromCRL":
            found.append((entry.revocation_date_utc, reason))
    return min(found) if found else None


def _now_problem(certs: list[x509.Certificate], links: list[_Link], now: datetime
                 ) -> str | None:
    for index, cert in enumerate(certs):
        role, name = _role(index, certs), _describe(cert)
        if now > cert.not_valid_after_utc:
            return (f"The signature was made while the chain was valid; the {role} {name} "
                    f"has since expired ({_fmt(cert.not_valid_after_utc)}; checked {_fmt(now)}).")
        if now < cert.not_valid_before_utc:
            return (f"The {role} {name} is valid only from {_fmt(cert.not_valid_before_utc)}, "
                    f"after the time of checking {_fmt(now)}.")
    for link in links:
        entry = _revocation_entry(link)
        if entry and entry[0] <= now:
            return (f"The signature was made before the {link.role} {_describe(link.cert)} "
                    f"was revoked ({_fmt(entry[0])}, reason: {entry[1]}); checked {_fmt(now)}.")
    return None


def _explain(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    text = (str(exc) or type(exc).__name__).splitlines()[0].rstrip(".")
    return text if len(text) < 200 else text[:197] + "..."


def _parse_trust_file(data: bytes, crl_file: bool
                      ) -> tuple[list[x509.Certificate], list[x509.CertificateRevocationList]]:
    certificates: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    if b"-----BEGIN" not in data:
        if crl_file:
            crls.append(x509.load_der_x509_crl(data))
        else:
            certificates.append(x509.load_der_x509_certificate(data))
        return certificates, crls
    for match in _PEM_BLOCK.finditer(data):
        label = match.group(1)
        try:
            if label in (b"CERTIFICATE", b"X509 CERTIFICATE"):
                certificates.append(x509.load_pem_x509_certificate(match.group(0)))
            elif label == b"X509 CRL":
                crls.append(x509.load_pem_x509_crl(match.group(0)))
        except ValueError as exc:
            log.warning("trust file: a %s block could not be read: %s", label.decode(), exc)
    return certificates, crls


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _read_cached(path: Path, max_age: timedelta) -> x509.CertificateRevocationList | None:
    """The cached CRL if it was fetched less than ``max_age`` ago and its nextUpdate has
    not passed."""
    try:
        fetched = path.stat().st_mtime
        if time.time() - fetched >= max_age.total_seconds():
            return None
        crl = x509.load_der_x509_crl(path.read_bytes())
    except (OSError, ValueError):
        return None
    next_update = crl.next_update_utc
    if next_update is not None and next_update <= datetime.now(UTC):
        return None
    return crl


def _write_cached(path: Path, crl: x509.CertificateRevocationList) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(crl.public_bytes(serialization.Encoding.DER))
        os.replace(partial, path)
    except OSError as exc:
        log.warning("CRL cache %s not written: %s", path, exc)
