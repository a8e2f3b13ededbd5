"""CSRF protection of the console's forms: every POST carries a token derived from the
session (or, for the sign-in form, from a nonce cookie), and a cross-site POST is refused
before its token is even read.

Three layers, each enough on its own against a form on another site: the session cookie is
SameSite=Strict (the browser does not send it cross-site); a POST whose `Origin` (or, without
one, `Sec-Fetch-Site`) names another site is refused; and the form's token must match.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

from gateway.console.errors import CsrfRefused

LOGIN_COOKIE = "lienthong_console_login"
"""The sign-in form's nonce: there is no session yet to derive its token from."""
FIELD = "csrf"


def new_nonce() -> str:
    return secrets.token_hex(16)


def token_for(key: bytes, purpose: str, value: str) -> str:
    """The form token of a session id (`purpose` "session") or a sign-in nonce ("login")."""
    return hmac.new(key, f"csrf|{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def check_token(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfRefused("the form's CSRF token is missing or does not match the session")


def check_same_origin(request: Request) -> None:
    """Refuse a POST that a page of another origin made the browser send."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        parts = urlsplit(origin)
        if (parts.scheme, parts.netloc) != (request.url.scheme, request.url.netloc):
            raise CsrfRefused(f"cross-origin form post from {origin[:100]}")
        return
    if origin == "null" or request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRefused("cross-site form post")
