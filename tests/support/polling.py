"""Waiting for what a test can observe — an inbox, a delivery state, any condition — with a
timeout, instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from adapters.db.store import SqlStore
from adapters.vxp_client import VxpClient


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def poll_until(
    client: VxpClient, count: int, messagetype: str = "edoc", timeout: float = 20.0
) -> list[dict[str, str]]:
    """Poll like an agency system until `count` items have been handed out."""
    seen: list[dict[str, str]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(seen) < count:
        answer = await client.get_received(messagetype)
        assert answer["status"] == "OK", answer
        seen += answer["data"]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"only {len(seen)} of {count} items arrived: {seen}")
        if len(seen) < count:
            await asyncio.sleep(0.05)
    return seen


async def inbox_until(
    http: httpx.AsyncClient, auth: dict[str, str], count: int
) -> list[dict[str, Any]]:
    """Read the REST inbox until it lists at least `count` items."""
    for _ in range(200):
        page = (await http.get("/api/v1/inbox", headers=auth, params={"limit": 500})).json()
        if len(page["items"]) >= count:
            return list(page["items"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"inbox never reached {count} items")


async def deliveries(store: SqlStore, message_id: str) -> dict[str, tuple[str, str]]:
    """recipient → (delivery id, state)."""
    detail = await store.message_detail(message_id)
    return {d.to_code: (d.delivery_id, d.state) for d in detail.deliveries}


async def settle(
    store: SqlStore, message_id: str, state: str = "available", timeout: float = 20.0
) -> dict[str, str]:
    """Wait until every delivery of the message is in `state`; recipient → delivery id."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await deliveries(store, message_id)
        if all(s == state for _, s in found.values()):
            return {to: delivery for to, (delivery, _) in found.items()}
        assert asyncio.get_running_loop().time() < deadline, found
        await asyncio.sleep(0.05)
