"""What every CLI command shares: running one unit of work against the node's store."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from adapters.db.store import SqlStore
from gateway.datadir import missing_node
from gateway.errors import GatewayError, InvalidRequest
from gateway.runtime import build_store
from gateway.settings import Settings

T = TypeVar("T")


def run_with_store(settings: Settings, work: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Run `work` against the node's store; refused (nothing created) when there is no node
    where the settings point (`gateway.datadir.missing_node`)."""
    problem = missing_node(settings)
    if problem is not None:
        raise click.ClickException(problem)
    async def run() -> T:
        store = build_store(settings)
        try:
            return await work(store)
        finally:
            await store.close()
    try:
        return asyncio.run(run())
    except GatewayError as error:
        raise click.ClickException(error.detail) from None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str) -> float:
    """`90`, `45s`, `30m`, `2h`, `1d`, `1w`, or combinations such as `1h30m`, in seconds."""
    text = value.strip().lower()
    position, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != position or not match.group(0):
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise InvalidRequest(f"{value!r} is not a duration (e.g. 90, 45s, 30m, 2h, 1d)")
    return total
