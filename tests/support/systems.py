"""Agency systems registered on a node under test, as SDK-compatible clients."""

from __future__ import annotations

from gateway.services.directory import add_system
from tests.support.nodes import Node
from tests.support.sdk import StickySdkClient


async def sdk(node: Node, system_id: str, *serves: str) -> StickySdkClient:
    """Register `system_id` serving `serves`; a client that behaves like the VNPT SDK."""
    secret = await add_system(node.runtime.store, system_id, serves)
    return StickySdkClient(node.http, system_id, secret)
