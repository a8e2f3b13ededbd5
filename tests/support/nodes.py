"""Gateway nodes under test: one test's database and broker namespace (`Backing`) on each
backend, and in-process nodes (`Node`) reached through HTTP (ASGI) like a real client.

Backends come from LIENTHONG_TEST_BACKENDS (default: both). The production backend needs
PostgreSQL and RabbitMQ; when they are unreachable its tests fail, they are never skipped.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet

from adapters.broker.embedded import EmbeddedBroker
from adapters.broker.rabbitmq import RabbitMQBroker
from adapters.broker.topology import Topology
from adapters.db.migrate import migrate
from adapters.vxp_client import VxpClient
from gateway.api.app import create_app
from gateway.runtime import Runtime
from gateway.services.directory import add_system
from gateway.settings import Settings
from tests.support.quiet import DelayWatch, handling_nothing, rabbitmq_holds_nothing

BACKENDS = [
    b for b in os.environ.get("LIENTHONG_TEST_BACKENDS", "embedded,production").split(",") if b
]
PG_HOST = os.environ.get("LIENTHONG_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:5432/test"
AMQP_URL = os.environ.get("LIENTHONG_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SECRET_KEY = Fernet.generate_key().decode()
RUN_ID = uuid.uuid4().hex[:8]


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://postgres@{PG_HOST}:5432/{database}"


def run_blocking(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion even when called under the session's running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def migrated_sqlite(directory: Path) -> Path:
    """A migrated SQLite database that each test copies (migrating every time would dominate
    runtime)."""
    path = directory / "template.sqlite3"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


def create_pg_template() -> str:
    """A migrated PostgreSQL database used as CREATE DATABASE … TEMPLATE for each test;
    a test fails (never skips) when PostgreSQL cannot be reached."""
    name = f"lt_tpl_{RUN_ID}"

    async def create() -> None:
        try:
            admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        except (OSError, asyncpg.PostgresError) as error:
            pytest.fail(
                f"PostgreSQL at {PG_HOST}:5432 is unreachable ({error}); the "
                "production backend needs it (LIENTHONG_TEST_BACKENDS=embedded "
                "runs without it)"
            )
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()

    run_blocking(create())
    migrate(pg_url(name))
    return name


def drop_pg_template(name: str) -> None:
    run_blocking(_drop_database(name))


async def _drop_database(name: str) -> None:
    admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


class Backing:
    """The database and broker namespace of one test, created fresh and removed after."""

    def __init__(self, backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.backend = backend
        self.data_dir = tmp_path / "data"
        self.namespace = f"lt.test.{RUN_ID}.{uuid.uuid4().hex[:8]}"
        self.database = f"lt_{RUN_ID}_{uuid.uuid4().hex[:10]}"
        self._request = request
        self.retry_tiers: set[tuple[float, ...]] = set()

    @property
    def production(self) -> bool:
        return self.backend == "production"

    async def create(self) -> None:
        self.data_dir.mkdir(parents=True)
        if self.production:
            template = self._request.getfixturevalue("pg_template")
            admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
            try:
                await admin.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{template}"')
            finally:
                await admin.close()
        else:
            template = self._request.getfixturevalue("sqlite_template")
            shutil.copy(template, self.data_dir / "lienthong.sqlite3")

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            data_dir=self.data_dir,
            secret_key=SECRET_KEY,
            environment="test",
            broker_namespace=self.namespace,
            relay_interval_seconds=0.1,
            requeue_after_seconds=3.0,
            fail_retry_seconds=0.5,
            inbox_lease_seconds=30.0,
        )
        if self.production:
            values.update(database_url=pg_url(self.database), broker_url=AMQP_URL)
        values.update(overrides)
        settings = Settings(**values)
        self.retry_tiers.add(settings.push_retry_tiers_seconds)
        return settings

    def environment(self, **overrides: Any) -> dict[str, str]:
        """The same settings as `LIENTHONG_*` variables, for gateway subprocesses."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIENTHONG_")}
        settings = self.settings(**overrides)
        for name in Settings.model_fields:
            value = getattr(settings, name)
            if isinstance(value, set | frozenset):
                env[f"LIENTHONG_{name.upper()}"] = json.dumps(sorted(value))
            elif isinstance(value, tuple | list):
                env[f"LIENTHONG_{name.upper()}"] = json.dumps(list(value))
            elif value is not None:
                env[f"LIENTHONG_{name.upper()}"] = str(value)
        return env

    async def remove(self) -> None:
        if self.production:
            await _drop_database(self.database)
            for tiers in self.retry_tiers or {Topology(self.namespace, 4).retry_tiers}:
                await RabbitMQBroker(AMQP_URL, Topology(self.namespace, 4, tiers)).delete_topology()


class Node:
    """One in-process gateway under test, reached through HTTP (ASGI) like a real client."""

    def __init__(self, backing: Backing, app: Any, client: httpx.AsyncClient) -> None:
        self.backing = backing
        self.app = app
        self.http = client
        broker = self.runtime.broker
        self._delays = DelayWatch(broker) if isinstance(broker, EmbeddedBroker) else None

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    async def add_system(self, system_id: str, *serves: str) -> VxpClient:
        secret = await add_system(self.runtime.store, system_id, serves)
        return VxpClient(self.http, system_id, secret)

    def rest_headers(self, client: VxpClient) -> dict[str, str]:
        return {"Authorization": f"Bearer {client.system_id}:{client._secret}"}

    async def quiet(self) -> bool:
        """Nothing in flight (`tests/support/quiet.py`): no broker handler running, no message
        queued, delayed or due for redelivery."""
        if not handling_nothing():
            return False
        if self._delays is not None:
            holds_nothing = self._delays.holds_nothing()
        else:
            holds_nothing = await rabbitmq_holds_nothing(AMQP_URL, self.runtime.settings)
        return holds_nothing and handling_nothing()

    async def stop_broker(self) -> None:
        if self.backing.production:
            await rabbitmqctl("stop_app")
        else:
            broker = self.runtime.broker
            assert isinstance(broker, EmbeddedBroker)
            broker.stop_accepting()

    async def start_broker(self) -> None:
        if self.backing.production:
            await rabbitmqctl("start_app")
        else:
            broker = self.runtime.broker
            assert isinstance(broker, EmbeddedBroker)
            broker.resume_accepting()


async def rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 0, f"rabbitmqctl {' '.join(args)}: {stderr.decode()}"


NodeFactory = Callable[..., Awaitable[Node]]


class Nodes:
    """The nodes one test started (settings may be overridden per node), stopped together."""

    def __init__(self, backing: Backing) -> None:
        self._backing = backing
        self._started: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def start(self, **overrides: Any) -> Node:
        app = create_app(self._backing.settings(**overrides))
        manager = LifespanManager(app, startup_timeout=30, shutdown_timeout=30)
        await manager.__aenter__()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app),
            base_url="http://gateway.test",
            timeout=30,
        )
        self._started.append((manager, client))
        if self._backing.production:
            broker = app.state.runtime.broker
            assert isinstance(broker, RabbitMQBroker)
            await broker.wait_connected(timeout=30)
        return Node(self._backing, app, client)

    async def stop_all(self) -> None:
        for manager, client in reversed(self._started):
            await client.aclose()
            await manager.__aexit__(None, None, None)
