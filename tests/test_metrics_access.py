"""Issue 9: `/metrics` can be closed to the public: a bearer token, a listener of its own."""

from __future__ import annotations

import httpx
import pytest

from tests.support.nodes import Backing, NodeFactory
from tests.support.processes import free_port, serving

TOKEN = "scrape-" + "t" * 32


@pytest.mark.backends("embedded")  # access control in front of the same figures
async def test_metrics_with_a_token_need_it(make_node: NodeFactory) -> None:
    open_node = await make_node()
    assert (await open_node.http.get("/metrics")).status_code == 200  # the default: open
    node = await make_node(metrics_token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = await node.http.get("/metrics", headers=headers)
        assert refused.status_code == 401, headers
        assert refused.json()["code"] == "AUTH_FAILED"
        assert "LIENTHONG_METRICS_TOKEN" in refused.json()["detail"]
    scraped = await node.http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scraped.status_code == 200 and "lienthong_deliveries" in scraped.text


@pytest.mark.backends("embedded")
async def test_metrics_on_a_listener_of_their_own(backing: Backing) -> None:
    port = free_port()
    env = backing.environment(metrics_bind=f"127.0.0.1:{port}", metrics_token=TOKEN)
    async with (
        serving(env, backing.data_dir / "gateway.log") as gateway,
        httpx.AsyncClient(timeout=10) as http,
    ):
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get(f"{gateway.url}/metrics", headers=bearer)).status_code == 404
        assert (await http.get(f"{gateway.url}/healthz")).status_code == 200
        metrics = f"http://127.0.0.1:{port}"
        scraped = await http.get(f"{metrics}/metrics", headers=bearer)
        assert scraped.status_code == 200 and "lienthong_deliveries" in scraped.text
        assert (await http.get(f"{metrics}/metrics")).status_code == 401
        for path in ("/healthz", "/api/v1/inbox", "/docs"):
            assert (await http.get(f"{metrics}{path}")).status_code == 404, path
