"""Several nodes in one test, each with its own database and broker namespace (a province,
the national axis, another province), connected as peers over HTTP to each other's app.

In-process nodes reach each other through ASGI transports attached to their peer clients;
`tests/test_federation_processes.py` runs the same path with separate `lienthong serve`
processes over loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.db.store import SqlStore
from adapters.peer_client import PeerClient
from gateway.services.directory import add_system
from tests.support.nodes import Backing, Node, Nodes


class Federation:
    def __init__(self, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self._backend = backend
        self._tmp_path = tmp_path
        self._request = request
        self._backings: list[Backing] = []
        self._nodes: list[Nodes] = []
        self.members: dict[str, Node] = {}

    async def node(self, name: str, code: str, **overrides: Any) -> Node:
        """A node called `name` (its URL is `http://<name>.test/vxp`) writing `code` in its
        TraceHeaders."""
        backing = Backing(self._backend, self._tmp_path / name, self._request)
        (self._tmp_path / name).mkdir()
        await backing.create()
        self._backings.append(backing)
        nodes = Nodes(backing)
        self._nodes.append(nodes)
        overrides.setdefault("peer_poll_seconds", 0.2)
        overrides.setdefault("peer_downstream_seconds", 0.3)
        node = await nodes.start(node_code=code, **overrides)
        self.members[name] = node
        for other_name, other in self.members.items():
            for a, b_name, b in ((node, other_name, other), (other, name, node)):
                client = a.runtime.peer_client
                assert isinstance(client, PeerClient)
                client.attach(url_of(b_name), httpx.ASGITransport(app=b.app))
        return node

    async def connect(
        self,
        below: str,
        above: str,
        system_id: str,
        prefixes: tuple[str, ...] = (),
        *,
        serves: tuple[str, ...],
        default: bool = True,
    ) -> None:
        """Register node `below` as system `system_id` of node `above` (serving `serves`)
        and make `above` a peer of `below`, the way a province joins the national axis."""
        secret = await add_system(self.members[above].runtime.store, system_id, serves)
        await self.store(below).add_peer(above, url_of(above), system_id, secret, prefixes, default)

    def store(self, name: str) -> SqlStore:
        store = self.members[name].runtime.store
        assert isinstance(store, SqlStore)
        return store

    async def close(self) -> None:
        for nodes in reversed(self._nodes):
            await nodes.stop_all()
        for backing in self._backings:
            await backing.remove()


def url_of(name: str) -> str:
    return f"http://{name}.test/vxp"


@pytest.fixture
async def federation(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Federation]:
    group = Federation(backend, tmp_path, request)
    try:
        yield group
    finally:
        await group.close()
