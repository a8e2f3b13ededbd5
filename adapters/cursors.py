"""Page cursors that reveal nothing (issue #9): a row id handed to a client would let it count
the whole node's traffic between two polls, and would work in another system's listing.

The position is sealed (Fernet: AES-CBC + HMAC) together with the scope it was issued for — the
listing and the caller — with a key derived from the node's secret key, so every process of a
node reads every other's cursors and nobody else can read or forge one.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from gateway.errors import CursorInvalid

MAX_CURSOR_CHARS = 512


class CursorSeal:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, scope: str, position: int) -> str:
        return self._fernet.encrypt(f"{scope}\n{position}".encode()).decode("ascii")

    def open(self, scope: str, cursor: str | None) -> int:
        """The position after which the next page starts (0 without a cursor); refuses a
        cursor this node did not issue for this listing and caller."""
        if cursor is None or cursor == "":
            return 0
        try:
            if len(cursor) > MAX_CURSOR_CHARS:
                raise ValueError
            issued_for, _, position = (
                self._fernet.decrypt(cursor.encode("ascii")).decode().partition("\n")
            )
            if issued_for != scope or not (position.isascii() and position.isdigit()):
                raise ValueError
            return int(position)
        except (InvalidToken, UnicodeError, ValueError):
            raise CursorInvalid(
                "cursor is not one this listing returned to you (take "
                "next_cursor from the previous page as it is)"
            ) from None
