"""Cursors of paginated listings: sealed positions, opaque to clients (`adapters.cursors`)."""

from __future__ import annotations

from gateway.runtime import Runtime


def parse_cursor(runtime: Runtime, scope: str, value: str | None) -> int:
    """The position after which the next page starts; refuses what this API never returned
    to this caller for this listing."""
    return runtime.cursors.open(scope, value)


def next_cursor(runtime: Runtime, scope: str, position: int | None) -> str | None:
    return runtime.cursors.seal(scope, position) if position is not None else None
