"""What every CLI command shares: running one unit of work against the node's store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from adapters.db.store import SqlStore
from gateway.datadir import missing_node
from gateway.errors import GatewayError
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


