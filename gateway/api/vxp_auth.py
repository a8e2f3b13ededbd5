"""Authentication of national-axis SDK requests (SPEC §4.1).

`XroadVnpt-sign-header` is a JSON object of header names and values; `XroadVnpt-hash-header`
is hex HMAC-SHA256 over its exact text with the system's secret. A request is genuine when the
HMAC matches (constant-time) and every header the JSON names carries exactly the signed value.
Operations read their parameters only from the signed set, so nothing unsigned can steer them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from starlette.datastructures import Headers

from gateway.errors import (
    CredentialsMissing,
    HeaderTampered,
    ParameterMissing,
    SignHeaderMalformed,
    SystemDisabled,
    SystemIdUnsigned,
    TimestampInFuture,
    TimestampInvalid,
    TimestampStale,
    WrongCredentials,
    WrongOperation,
)
from gateway.ports import Store
from gateway.records import SystemRecord
from gateway.services.directory import is_system_id
from gateway.settings import Settings

PREFIX = "xroadvnpt-"
WRONG_CREDENTIALS = "unknown system id, or HMAC not made with its secret"


def sign(secret: str, sign_header: str) -> str:
    return sign_bytes(secret, sign_header.encode("utf-8"))


def sign_bytes(secret: str, sign_header: bytes) -> str:
    return hmac.new(secret.encode(), sign_header, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class VxpCall:
    system: SystemRecord
    signed: dict[str, str]
    """Signed parameters by their exact name without the `XroadVnpt-` prefix: a client whose
    sticky header map holds both `docId` and `docid` signs both, with different values."""

    def param(self, *spellings: str) -> str | None:
        """The first spelling present exactly, else any case-insensitive match of the first
        (SPEC §4.1: getEdoc reads `docId` then `docid`, updateStatus `docid` then `docId`)."""
        for name in spellings:
            if name in self.signed:
                return self.signed[name]
        wanted = spellings[0].lower()
        return next((v for k, v in self.signed.items() if k.lower() == wanted), None)

    def required(self, *spellings: str) -> str:
        value = self.param(*spellings)
        if not value:
            raise ParameterMissing(
                f"header XroadVnpt-{spellings[0]} is required and must be "
                "covered by XroadVnpt-sign-header",
                name=spellings[0],
            )
        return value


def _request_values(headers: Headers) -> dict[str, list[bytes]]:
    """Raw values by lower-cased name, in request order. Web servers lower-case header names
    (ASGI), so two spellings of one name arrive as one name with two values."""
    values: dict[str, list[bytes]] = {}
    for name, value in headers.raw:
        values.setdefault(name.decode("latin-1").lower(), []).append(value)
    return values


def _first(values: dict[str, list[bytes]], name: str) -> bytes | None:
    found = values.get(name)
    return found[0] if found else None


def _text(raw: bytes | None) -> str | None:
    """A header value as the client meant it: UTF-8 (what clients that authenticate send);
    bytes that are not UTF-8 are kept as Latin-1 so they can still be compared and refused."""
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


PACKAGE_OPERATIONS = frozenset({"sendEdoc"})
"""Operations whose body is a package; every other one is called with a JSON body. The SDK
signs the type of the body it sends (`XroadVnpt-Content-Type`), and a captured request sent
to another operation keeps it, so a send replayed to a list (or the reverse) shows, while the
sticky headers of a real client (which ride along on every call) do not matter."""
ANY_TYPE_OPERATIONS = frozenset({"downloadEdoc", "getEdoc"})
"""Operations whose callers also use GET, where clients differ in the type they sign."""


def _body_kind(media_type: str) -> str | None:
    """`package` or `json` for the types either kind of operation is called with; None for
    anything else (refused with its own precise error where the body is read)."""
    if media_type in (
        "application/octet-stream",
        "application/xml",
        "text/xml",
    ) or media_type.endswith("+xml"):
        return "package"
    return "json" if media_type == "application/json" else None


async def authenticate(
    headers: Headers, store: Store, settings: Settings, operation: str = ""
) -> VxpCall:
    values = _request_values(headers)
    system_id = _text(_first(values, "xroadvnpt-systemid"))
    sign_header = _first(values, "xroadvnpt-sign-header")
    mac = _first(values, "xroadvnpt-hash-header")
    if not system_id or sign_header is None or not mac:
        raise CredentialsMissing(
            "XroadVnpt-systemid, XroadVnpt-sign-header and XroadVnpt-hash-header are required"
        )
    # A value that cannot be a system id (a NUL, a megabyte) is a stranger without asking
    # the database, which would refuse such text as invalid (27) instead of unknown (15).
    credentials = await store.get_credentials(system_id) if is_system_id(system_id) else None
    # The HMAC covers the sign-header's bytes as sent (UTF-8 for non-ASCII values); a stranger
    # and a wrong secret cost the same and read the same. Within a rotation's grace period
    # the previous secret is good too (each candidate is compared, none short-circuits).
    candidates = credentials.secrets_at(datetime.now(UTC)) if credentials else ("\0invalid",)
    offered = mac.strip().lower()
    matched = [
        hmac.compare_digest(sign_bytes(secret, sign_header).encode(), offered)
        for secret in candidates
    ]
    if credentials is None or not any(matched):
        raise WrongCredentials(WRONG_CREDENTIALS)
    system = credentials.system
    try:
        signed_headers = json.loads(sign_header.decode("utf-8"))
    except ValueError:
        raise SignHeaderMalformed("XroadVnpt-sign-header is not UTF-8 JSON") from None
    if not isinstance(signed_headers, dict):
        raise SignHeaderMalformed("XroadVnpt-sign-header is not a JSON object")
    signed: dict[str, str] = {}
    unclaimed = {name: [_text(v) for v in raw] for name, raw in values.items()}
    for name, value in signed_headers.items():
        if not isinstance(value, str) or not name.lower().startswith(PREFIX):
            raise SignHeaderMalformed(f"sign-header entry {name!r} is not an XroadVnpt header")
        present = unclaimed.get(name.lower(), [])
        if value not in present:
            raise HeaderTampered(f"header {name} differs from its signed value")
        present.remove(value)  # each value on the request vouches for one signed entry
        signed[name[len(PREFIX) :]] = value
    if VxpCall(system, signed).param("systemid") != system_id:
        raise SystemIdUnsigned("XroadVnpt-systemid is not covered by the signature")
    call = VxpCall(system=system, signed=signed)
    _check_operation_fit(call, operation)
    _check_freshness(call.param("timestamp"), settings)
    if not system.enabled:  # told only to a caller that authenticated in every other way
        raise SystemDisabled(f"system {system_id} is disabled on this node")
    return call


def _check_operation_fit(call: VxpCall, operation: str) -> None:
    """Refuse a signed request made for another operation (SPEC §4.1 "Replay")."""
    signed_type = call.param("Content-Type")
    if signed_type is None or operation in ANY_TYPE_OPERATIONS or not operation:
        return
    kind = _body_kind(signed_type.split(";")[0].strip().lower())
    expected = "package" if operation in PACKAGE_OPERATIONS else "json"
    if kind is not None and kind != expected:
        raise WrongOperation(
            f"this request was signed for a {kind} body, which {operation} does not take: "
            "a request made for another operation"
        )


def _check_freshness(timestamp: str | None, settings: Settings) -> None:
    """The SDK fixes its timestamp when the client object is built: a long-lived client sends
    an old one, so age is checked only when configured; a time in the future never is
    legitimate beyond clock skew."""
    zone = ZoneInfo(settings.timezone)
    try:
        at: datetime | None = datetime.strptime((timestamp or "")[:15], "%d%m%YT%H%M%S").replace(
            tzinfo=zone
        )
    except ValueError:
        at = None
    skew = settings.vxp_max_clock_skew_seconds
    if at is None:
        if skew is not None:
            raise TimestampInvalid("XroadVnpt-timestamp is missing or malformed")
        return
    ahead = (at - datetime.now(zone)).total_seconds()
    if ahead > settings.vxp_max_future_seconds:
        raise TimestampInFuture(f"XroadVnpt-timestamp is {ahead:.0f} s in the future")
    if skew is not None and abs(ahead) > skew:
        raise TimestampStale(f"XroadVnpt-timestamp is more than {skew:.0f} s away")
