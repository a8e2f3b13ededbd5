"""Fixtures: a gateway node on each backend (`node`, `make_node`), the test's own database
and broker namespace (`backing`). The machinery lives in `tests/support/nodes.py`.

Every test using `backend` runs on each of LIENTHONG_TEST_BACKENDS (default: both); the
production backend's tests fail, never skip, when PostgreSQL or RabbitMQ is unreachable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.nodes import (
    BACKENDS,
    Backing,
    Node,
    NodeFactory,
    Nodes,
    create_pg_template,
    drop_pg_template,
    migrated_sqlite,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test using a node runs on every backend, unless marked `backends(...)` for a
    fault that exists on one only (a database server restart)."""
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("backends")
        chosen = [b for b in BACKENDS if only is None or b in only.args]
        metafunc.parametrize("backend", chosen, scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "[production" in item.nodeid:
            item.add_marker(pytest.mark.production)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once; each test gets a copy."""
    return migrated_sqlite(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """Migrated once; each test's database is created from it."""
    name = create_pg_template()
    yield name
    drop_pg_template(name)


@pytest.fixture
async def backing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Backing]:
    backing = Backing(backend, tmp_path, request)
    await backing.create()
    try:
        yield backing
    finally:
        await backing.remove()


@pytest.fixture
async def make_node(backing: Backing) -> AsyncIterator[NodeFactory]:
    """Start a node (settings may be overridden per test); all are stopped at teardown."""
    nodes = Nodes(backing)
    yield nodes.start
    await nodes.stop_all()


@pytest.fixture
async def node(make_node: NodeFactory) -> Node:
    return await make_node()


# Several nodes with their own databases, connected as peers (`tests/support/federation.py`).
from tests.support.federation import federation  # noqa: E402, F401
