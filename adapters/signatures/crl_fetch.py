"""CRLs fetched from a certificate's distribution points, verified, and cached on disk.

A CRL is used (and cached) only once verified: issuer name equal to the certificate's issuer,
signature by that issuer's key. The cache is ``<cache_dir>/<sha256 of the URL>.crl`` (DER;
the file's mtime is the fetch time), reused while younger than ``max_age`` and before its
nextUpdate; a failed download is not retried for ``FETCH_FAILURE_BACKOFF`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from adapters.signatures.certificates import describe, explain

log = logging.getLogger(__name__)


MAX_CRL_BYTES = 32 * 1024 * 1024
FETCH_FAILURE_BACKOFF = 30.0
"""Seconds during which a failed CRL download is not retried (so a burst of packages from
an agency whose CA is unreachable does not wait ``fetch_timeout`` each)."""


_VerifyingKey = (
    rsa.RSAPublicKey
    | dsa.DSAPublicKey
    | ec.EllipticCurvePublicKey
    | ed25519.Ed25519PublicKey
    | ed448.Ed448PublicKey
)


class CrlFetcher:
    """Verified CRLs by URL: the cached copy while it is fresh, else a download (bounded by
    ``fetch_timeout`` and ``MAX_CRL_BYTES``); one download per URL at a time."""

    def __init__(
        self, cache_dir: Path, *, max_age: timedelta, fetch_timeout: float, enabled: bool = True
    ) -> None:
        self._cache_dir = cache_dir
        self._crl_max_age = max_age
        self._fetch_timeout = fetch_timeout
        self._fetch_crls = enabled
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, tuple[float, str]] = {}
        self._parsed: dict[Path, tuple[tuple[int, int, int], x509.CertificateRevocationList]] = {}
        """Cached files already parsed, by (inode, mtime, size): a new download (here or by
        another process sharing the cache directory) is a new file, read again."""

    async def fetch(
        self, url: str, issuer: x509.Certificate
    ) -> tuple[x509.CertificateRevocationList | None, str]:
        """A verified CRL for ``issuer`` from ``url``: the cached copy while it is fresh,
        else a new download (kept only once verified)."""
        cache = self._cache_dir / (hashlib.sha256(url.encode()).hexdigest() + ".crl")
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = _read_cached(cache, self._crl_max_age, self._parsed)
            if cached is not None and crl_signed_by(cached, issuer):
                return cached, ""
            if not self._fetch_crls:
                return None, (
                    f"there is no fresh cached copy of the CRL at {url} and CRL "
                    f"fetching is disabled"
                )
            failed = self._failures.get(url)
            if failed and time.monotonic() - failed[0] < FETCH_FAILURE_BACKOFF:
                return None, failed[1]
            try:
                data = await self._download(url)
                crl = _load_crl(data)
            except (httpx.HTTPError, httpx.InvalidURL, TimeoutError, OSError, ValueError) as exc:
                problem = f"the CRL at {url} could not be downloaded ({explain(exc)})"
                self._failures[url] = (time.monotonic(), problem)
                log.warning("%s", problem)
                return None, problem
            if not crl_signed_by(crl, issuer):
                problem = (
                    f"the CRL at {url} is not signed by the issuing CA "
                    f"{describe(issuer)} and was not used"
                )
                self._failures[url] = (time.monotonic(), problem)
                log.warning("%s", problem)
                return None, problem
            self._failures.pop(url, None)
            _write_cached(cache, crl)
            with contextlib.suppress(OSError):  # the next read finds this very object
                stat = cache.stat()
                self._parsed[cache] = ((stat.st_ino, stat.st_mtime_ns, stat.st_size), crl)
            return crl, ""

    async def _download(self, url: str) -> bytes:
        async with (
            asyncio.timeout(self._fetch_timeout),
            httpx.AsyncClient(
                timeout=self._fetch_timeout, follow_redirects=True, max_redirects=3
            ) as client,
        ):
            async with client.stream(
                "GET", url, headers={"Accept": "application/pkix-crl, application/x-pkcs7-crl, */*"}
            ) as response:
                response.raise_for_status()
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_CRL_BYTES:
                        raise ValueError(f"larger than {MAX_CRL_BYTES} bytes")
                    chunks.append(chunk)
        return b"".join(chunks)


_VERIFIED: dict[int, tuple[x509.CertificateRevocationList, dict[bytes, bool]]] = {}
"""Signature checks already made, by CRL object (kept alive by its entry, so its id is not
reused) and issuer fingerprint: the same CRL is checked against the same CA for every
package, and a CRL of the national CA can be megabytes."""
VERIFIED_LIMIT = 512


def crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    if crl.issuer != issuer.subject:
        return False
    slot = _VERIFIED.get(id(crl))
    if slot is None or slot[0] is not crl:
        if len(_VERIFIED) >= VERIFIED_LIMIT:
            _VERIFIED.clear()
        slot = _VERIFIED[id(crl)] = (crl, {})
    fingerprint = issuer.fingerprint(hashes.SHA256())
    known = slot[1].get(fingerprint)
    if known is None:
        known = slot[1][fingerprint] = _signature_valid(crl, issuer)
    return known


def _signature_valid(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, _VerifyingKey):
        return False
    try:
        return crl.is_signature_valid(key)
    except Exception:  # unsupported algorithm
        return False


def crl_urls(certificate: x509.Certificate) -> list[str]:
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and urlsplit(
                name.value
            ).scheme.lower() in ("http", "https"):
                urls.append(name.value)
    return urls


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def _read_cached(
    path: Path,
    max_age: timedelta,
    parsed: dict[Path, tuple[tuple[int, int, int], x509.CertificateRevocationList]],
) -> x509.CertificateRevocationList | None:
    """The cached CRL if it was fetched less than ``max_age`` ago and its nextUpdate has
    not passed (parsed once per file version)."""
    try:
        stat = path.stat()
        if time.time() - stat.st_mtime >= max_age.total_seconds():
            return None
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        known = parsed.get(path)
        if known is not None and known[0] == version:
            crl = known[1]
        else:
            crl = x509.load_der_x509_crl(path.read_bytes())
            parsed[path] = (version, crl)
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
