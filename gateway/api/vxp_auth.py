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
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.datastructures import Headers

from gateway.errors import AuthenticationFailed, InvalidRequest
from gateway.ports import Store
from gateway.records import SystemRecord
from gateway.settings import Settings

PREFIX = "xroadvnpt-"
WRONG_CREDENTIALS = "unknown system id, or HMAC not made with its secret"


def sign(secret: str, sign_header: str) -> str:
    return hmac.new(secret.encode(), sign_header.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class VxpCall:
    system: SystemRecord
    signed: dict[str, str]
    """Signed parameters by lower-cased name without the `XroadVnpt-` prefix."""

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.signed.get(name.lower(), default)

    def required(self, name: str) -> str:
        value = self.param(name)
        if not value:
            raise InvalidRequest(f"header XroadVnpt-{name} is required and must be covered by "
                                 "XroadVnpt-sign-header", desc_vi=f"Thieu tham so {name}")
        return value


async def authenticate(headers: Headers, store: Store, settings: Settings) -> VxpCall:
    system_id = headers.get("xroadvnpt-systemid")
    sign_header = headers.get("xroadvnpt-sign-header")
    mac = headers.get("xroadvnpt-hash-header")
    if not system_id or sign_header is None or not mac:
        raise AuthenticationFailed("XroadVnpt-systemid, XroadVnpt-sign-header and "
                                   "XroadVnpt-hash-header are required",
                                   desc_vi="Thieu thong tin xac thuc")
    credentials = await store.get_credentials(system_id)
    expected = sign(credentials.secret if credentials else "\0invalid", sign_header)
    if credentials is None or not credentials.system.enabled or not hmac.compare_digest(
            expected, mac.strip().lower()):
        raise AuthenticationFailed(WRONG_CREDENTIALS, desc_vi="Sai systemId hoac secret")
    system = credentials.system
    try:
        signed_headers = json.loads(sign_header)
    except ValueError:
        raise AuthenticationFailed("XroadVnpt-sign-header is not JSON",
                                   desc_vi="Sai dinh dang sign-header") from None
    if not isinstance(signed_headers, dict):
        raise AuthenticationFailed("XroadVnpt-sign-header is not a JSON object",
                                   desc_vi="Sai dinh dang sign-header")
    signed: dict[str, str] = {}
    for name, value in signed_headers.items():
        if not isinstance(value, str) or not name.lower().startswith(PREFIX):
            raise AuthenticationFailed(f"sign-header entry {name!r} is not an XroadVnpt header",
                                       desc_vi="Sai dinh dang sign-header")
        if headers.get(name) != value:
            raise AuthenticationFailed(f"header {name} differs from its signed value",
                                       desc_vi="Header bi thay doi")
        signed[name[len(PREFIX):].lower()] = value
    if signed.get("systemid") != system_id:
        raise AuthenticationFailed("XroadVnpt-systemid is not covered by the signature",
                                   desc_vi="Sai systemId")
    _check_freshness(signed.get("timestamp"), settings)
    return VxpCall(system=system, signed=signed)


def _check_freshness(timestamp: str | None, settings: Settings) -> None:
    """Opt-in: the SDK fixes its timestamp when the client object is built."""
    skew = settings.vxp_max_clock_skew_seconds
    if skew is None:
        return
    try:
        at = datetime.strptime((timestamp or "")[:15], "%d%m%YT%H%M%S").replace(
            tzinfo=ZoneInfo(settings.timezone))
    except ValueError:
        raise AuthenticationFailed("XroadVnpt-timestamp is missing or malformed",
                                   desc_vi="Sai timestamp") from None
    if abs((datetime.now(at.tzinfo) - at).total_seconds()) > skew:
        raise AuthenticationFailed(f"XroadVnpt-timestamp is more than {skew:.0f} s away",
                                   desc_vi="Timestamp het han")
