"""Every way the gateway refuses a request, each with one stable code.

    GatewayError                 code, HTTP status, /vxp ErrorCode, Vietnamese ErrorDesc
     ├─ AuthenticationFailed     wrong system id, secret or HMAC                (401, 15)
     ├─ PermissionDenied         authenticated, but not allowed to do this      (403, 19)
     ├─ PackageRejected          the package itself is wrong; carries Problems  (422, 22/10)
     ├─ PackageTooLarge          over LIENTHONG_MAX_PACKAGE_BYTES               (413, 10)
     ├─ UnsupportedMediaType     a package body with a Content-Type it cannot be (415, 10)
     ├─ RequestTooLarge          a JSON body over LIENTHONG_MAX_JSON_BODY_BYTES (413, 27)
     ├─ HeadersTooLarge          request head over LIENTHONG_MAX_HEADER_*       (431, 27)
     ├─ RequestTimeout           head or body not received in time             (408, 27)
     ├─ TooManyUploads           over LIENTHONG_MAX_UPLOADS_PER_SYSTEM         (429, 28)
     ├─ RecipientUnknown         no local system serves it and no route covers  (422, 18)
     ├─ DuplicatePackage         same DocumentId from the same sender           (409, 24)
     ├─ NotFound                 unknown id, or one the caller may not see      (404, 26)
     ├─ InvalidRequest           a parameter or state transition is wrong       (400, 27)
     └─ ServiceUnavailable       database or storage unreachable; retry later   (503, 20)

The catalogue is the contract with agency software: codes never change meaning. `/vxp` maps to
`ErrorCode`/`ErrorDesc` (SPEC §4.1, extended from 24 on), `/api/v1` to problem+json.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a package: where (element path), which rule, and what to fix."""

    code: str
    path: str
    message: str
    severity: str = "error"

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message,
                "severity": self.severity}


MAX_PROBLEMS_PER_CODE = 20
MAX_PROBLEMS = 200
MAX_PROBLEM_BYTES = 64 << 10


def bounded(problems: Sequence[Problem], per_code: int = MAX_PROBLEMS_PER_CODE,
            total: int = MAX_PROBLEMS, budget: int = MAX_PROBLEM_BYTES) -> tuple[Problem, ...]:
    """What is kept, stored and answered of a package's problems: at most `per_code` of one
    code and severity, then one "N more like this"; at most `total` and about `budget`
    bytes in all. A package of half a million identical defects must not become half a
    million stored warnings (issue #9); errors come before warnings."""
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    kept: list[Problem] = []
    omitted: dict[tuple[str, str], tuple[Problem, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    used = 0
    for problem in ordered:
        key = (problem.code, problem.severity)
        seen[key] = seen.get(key, 0) + 1
        size = len(problem.path) + len(problem.message) + len(problem.code) + 40
        if seen[key] > per_code or len(kept) >= total or used + size > budget:
            first, count = omitted.get(key, (problem, 0))
            omitted[key] = (first, count + 1)
            continue
        kept.append(problem)
        used += size
    kept += [Problem(code, first.path, f"+{count} more like this", severity)
             for (code, severity), (first, count) in omitted.items()]
    return tuple(kept)


@dataclass
class GatewayError(Exception):
    """Base of every refusal; `detail` is English, `desc_vi` the ASCII-safe ErrorDesc."""

    detail: str
    desc_vi: str = ""
    problems: list[Problem] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    code = "GATEWAY_ERROR"
    http_status = 500
    vxp_code = "20"
    title = "Gateway error"

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    @property
    def response_headers(self) -> dict[str, str]:
        """HTTP headers the answer carries besides its body (e.g. `Retry-After`)."""
        return {}

    @property
    def error_desc(self) -> str:
        """ErrorDesc as the SDKs print it: Vietnamese then English, ASCII only. It is all an
        SDK user ever sees, so a refused package names every error (warnings only when there
        is no error), up to ERROR_DESC_BUDGET characters, then how many more there are."""
        head = f"{self.desc_vi}: " if self.desc_vi else ""
        problems = [p for p in self.problems if p.severity == "error"] or self.problems
        if not problems:
            return ascii_safe(head + self.detail)
        return ascii_safe(head + list_within(
            [f"{p.path}: {p.message} [{p.code}]" if p.path else f"{p.message} [{p.code}]"
             for p in problems],
            ERROR_DESC_BUDGET - len(head)))


ERROR_DESC_BUDGET = 1000


def list_within(items: list[str], budget: int, separator: str = "; ") -> str:
    """As many items as fit in `budget` characters, then "+N more" for the rest."""
    shown: list[str] = []
    used = 0
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        tail = len(f"{separator}+{rest} more") if rest else 0
        cost = len(item) + (len(separator) if shown else 0)
        if used + cost + tail > budget and shown:
            break
        if used + cost + tail > budget:
            item = item[: max(budget - tail - 1, 0)] + "…"
            cost = len(item)
        shown.append(item)
        used += cost
    text = separator.join(shown)
    left = len(items) - len(shown)
    return f"{text}{separator}+{left} more" if left else text


def ascii_safe(text: str) -> str:
    """Fold Vietnamese to ASCII (`Đồng` → `Dong`): old SDK clients mangle anything else."""
    folded = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    return folded.encode("ascii", "ignore").decode("ascii")


class AuthenticationFailed(GatewayError):
    code, http_status, vxp_code, title = "AUTH_FAILED", 401, "15", "Authentication failed"


class PermissionDenied(GatewayError):
    code, http_status, vxp_code, title = "PERMISSION_DENIED", 403, "19", "Not allowed"


class PackageRejected(GatewayError):
    code, http_status, vxp_code, title = "PACKAGE_INVALID", 422, "22", "Package rejected"


class PackageTooLarge(GatewayError):
    code, http_status, vxp_code, title = "PACKAGE_TOO_LARGE", 413, "10", "Package too large"


class UnsupportedMediaType(GatewayError):
    code, http_status, vxp_code, title = ("UNSUPPORTED_MEDIA_TYPE", 415, "10",
                                          "Unsupported media type")


class RequestTooLarge(GatewayError):
    code, http_status, vxp_code, title = "REQUEST_TOO_LARGE", 413, "27", "Request too large"


class HeadersTooLarge(GatewayError):
    code, http_status, vxp_code, title = ("HEADERS_TOO_LARGE", 431, "27",
                                          "Request header fields too large")


class RequestTimeout(GatewayError):
    code, http_status, vxp_code, title = "REQUEST_TIMEOUT", 408, "27", "Request timeout"


class TooManyUploads(GatewayError):
    """Throttling, not a verdict on the package: the client should send it again later."""

    code, http_status, vxp_code, title = "TOO_MANY_UPLOADS", 429, "28", "Too many uploads"
    retry_after_seconds = 5

    @property
    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class BodyIntegrityFailed(GatewayError):
    code, http_status, vxp_code, title = "BODY_HASH_MISMATCH", 400, "10", "Body does not match"


class RecipientUnknown(GatewayError):
    code, http_status, vxp_code, title = "RECIPIENT_UNKNOWN", 422, "18", "Recipient unknown"


class DuplicatePackage(GatewayError):
    code, http_status, vxp_code, title = "DUPLICATE_DOCUMENT", 409, "24", "Duplicate document"


class NotFound(GatewayError):
    code, http_status, vxp_code, title = "NOT_FOUND", 404, "26", "Not found"


class InvalidRequest(GatewayError):
    code, http_status, vxp_code, title = "INVALID_REQUEST", 400, "27", "Invalid request"


class ServiceUnavailable(GatewayError):
    code, http_status, vxp_code, title = "SERVICE_UNAVAILABLE", 503, "20", "Service unavailable"


class BrokerUnavailable(Exception):
    """The broker did not confirm a publish; the outbox row stays unpublished (not a refusal)."""
