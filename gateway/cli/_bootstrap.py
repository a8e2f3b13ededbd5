"""What CLI commands run against, built by the composition root (`gateway.runtime`).

Commands never build adapters themselves: one that needs the node's store runs one unit of
work in `run_with_store`; `verifier` checks signatures as the node would; `migrate` creates or
upgrades the node. The two developer tools that need no node — signing a package, and the
files of the trust directory — are the adapters' own functions, named here and nowhere else in
the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from adapters.signatures import trust_files
from adapters.signatures.signing import sign_package
from gateway import runtime
from gateway.datadir import missing_node
from gateway.errors import GatewayError
from gateway.ports import NodeStore, PeerCaller, SignatureVerifier
from gateway.settings import Settings

__all__ = [
    "migrate",
    "run_with_peers",
    "run_with_store",
    "sign_package",
    "trust_files",
    "verifier",
]

T = TypeVar("T")


def run_with_store(settings: Settings, work: Callable[[NodeStore], Awaitable[T]]) -> T:
    """Run `work` against the node's store; refused (nothing created) when there is no node
    where the settings point (`gateway.datadir.missing_node`)."""
    problem = missing_node(settings)
    if problem is not None:
        raise click.ClickException(problem)

    async def run() -> T:
        store = runtime.build_store(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except GatewayError as error:
        raise click.ClickException(error.detail) from None


def run_with_peers(settings: Settings, work: Callable[[NodeStore, PeerCaller], Awaitable[T]]) -> T:
    """`run_with_store` with a client of the node's peers (`lienthong agencies sync`)."""

    async def with_peers(store: NodeStore) -> T:
        peers = runtime.build_peer_client(settings)
        try:
            return await work(store, peers)
        finally:
            await peers.close()

    return run_with_store(settings, with_peers)


def verifier(settings: Settings) -> SignatureVerifier:
    """Signatures checked against this machine's trust directory, as the node checks them."""
    return runtime.build_verifier(settings)


def migrate(settings: Settings) -> None:
    """Create or upgrade the database schema (and the data directory, owner-only)."""
    runtime.migrate_database(settings)
