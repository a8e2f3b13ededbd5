"""Cursors of paginated listings: opaque to clients, a row id to us."""

from __future__ import annotations

from gateway.errors import InvalidRequest


def parse_cursor(value: str | None) -> int:
    """The position after which the next page starts; refuses what this API never returned."""
    if value is None:
        return 0
    if not value.isdigit():
        raise InvalidRequest(f"cursor {value!r} is not one this API returned")
    return int(value)
