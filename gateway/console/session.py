"""The console's session cookie: who signed in, signed with a key derived from the node's
secret key (`Runtime.console_key`), so every process of a node accepts every other's
sessions and nobody else can make one.

The cookie carries no secret: the operator's name, a session id (from which the CSRF token
is derived) and a tag of the operator's token hash, so that a new token ends the sessions
opened with the old one. It is signed (HMAC-SHA256), not encrypted. It is HttpOnly,
SameSite=Strict, limited to `/console`, and Secure when the request came over https
(directly, or through a proxy uvicorn trusts for `X-Forwarded-Proto`). A session lasts
`SESSION_SECONDS` from sign-in; each request also checks that the operator still exists,
is enabled and has the same token (`gateway.console.auth`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "lienthong_console"
SESSION_SECONDS = 8 * 3600
"""A working day: then the operator signs in again."""
MAX_COOKIE_CHARS = 1024


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    token_tag: str
    session_id: str
    issued_at: float


def token_tag(key: bytes, token_sha256: str) -> str:
    """Names the operator's current token without revealing its hash."""
    return hmac.new(key, b"token|" + token_sha256.encode(), hashlib.sha256).hexdigest()[:32]


def new_session(key: bytes, name: str, token_sha256: str) -> Session:
    return Session(name, token_tag(key, token_sha256), secrets.token_hex(16), time.time())


def seal(key: bytes, session: Session) -> str:
    payload = _b64(
        json.dumps(
            {
                "n": session.name,
                "t": session.token_tag,
                "s": session.session_id,
                "i": int(session.issued_at),
            },
            separators=(",", ":"),
        ).encode()
    )
    return f"{payload}.{_b64(_mac(key, payload))}"


def open_session(key: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session in a cookie value, or None when absent, forged, malformed or expired."""
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    payload, _, mac = value.partition(".")
    try:
        if not hmac.compare_digest(_unb64(mac), _mac(key, payload)):
            return None
        fields = json.loads(_unb64(payload))
        session = Session(str(fields["n"]), str(fields["t"]), str(fields["s"]), float(fields["i"]))
    except (ValueError, KeyError, TypeError):
        return None
    age = (time.time() if now is None else now) - session.issued_at
    return session if 0 <= age <= SESSION_SECONDS else None


def _mac(key: bytes, payload: str) -> bytes:
    return hmac.new(key, b"session|" + payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
