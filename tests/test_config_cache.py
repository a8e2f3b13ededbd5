"""The configuration cache (`gateway.config`): systems, credentials, policies, bindings and
the directory facts of the hot path come from a snapshot checked with one read per request;
a change made through one store (another gateway process, the CLI) is seen by the next read
through another store on the same database. Also the transaction helper without pre-ping:
connections lost while pooled are replaced, an exhausted pool answers 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from adapters.db.engine import create_engine
from adapters.db.store import SqlStore
from gateway.config import request_scope
from gateway.errors import ServiceUnavailable
from gateway.records import AgencyRecord, AgencyRegistration
from gateway.runtime import build_secret_box, build_store
from gateway.signatures import CertificateBinding
from gateway.types import AgencyCode
from tests.support.nodes import PG_ADMIN_DSN, Backing, Node

SERVES = "000.00.01.H53"


@pytest.fixture
async def two_stores(backing: Backing) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """Two stores on one database, as two gateway processes (or a node and the CLI) hold."""
    settings = backing.settings()
    first, second = build_store(settings), build_store(settings)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@contextmanager
def statements(store: SqlStore) -> Iterator[list[str]]:
    """The SQL statements `store` sends (transaction control left out)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.strip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)


async def test_systems_changed_through_one_store_are_seen_by_the_other(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    writer, reader = two_stores
    assert await reader.get_credentials("sys.a") is None  # cached: no such system

    await writer.add_system("sys.a", "first-secret", [SERVES])
    credentials = await reader.get_credentials("sys.a")
    assert credentials is not None and credentials.secret == "first-secret"
    assert credentials.system.enabled
    assert [s.system_id for s in await reader.list_systems()] == ["sys.a"]

    await writer.set_system_enabled("sys.a", False)
    credentials = await reader.get_credentials("sys.a")
    assert credentials is not None and not credentials.system.enabled
    assert [s.enabled for s in await reader.list_systems()] == [False]

    await writer.set_system_enabled("sys.a", True)
    await writer.set_system_secret("sys.a", "rotated-secret")
    credentials = await reader.get_credentials("sys.a")
    assert credentials is not None and credentials.secret == "rotated-secret"
    assert credentials.system.enabled
    assert credentials.previous_secret is None
    assert credentials.secrets_at(datetime.now(UTC)) == ("rotated-secret",)

    until = datetime.now(UTC) + timedelta(minutes=5)
    await writer.set_system_secret("sys.a", "third-secret", previous_until=until)
    credentials = await reader.get_credentials("sys.a")
    assert credentials is not None and credentials.previous_until == until
    assert credentials.system.previous_secret_until == until
    assert credentials.secrets_at(datetime.now(UTC)) == ("third-secret", "rotated-secret")
    assert credentials.secrets_at(until) == ("third-secret",)  # the grace is over

    await writer.remove_system("sys.a")
    assert await reader.get_credentials("sys.a") is None
    assert await reader.get_system("sys.a") is None
    assert await reader.list_systems() == []


async def test_policies_bindings_and_the_directory_changed_through_one_store_are_seen(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    writer, reader = two_stores
    await writer.add_system("sys.a", "secret", [SERVES])
    await writer.upsert_agencies([AgencyRecord(AgencyCode(SERVES), "Sở A")])
    assert await reader.signature_policies("sys.a", SERVES) == (None, None)
    assert await reader.certificate_bindings(SERVES, None) == []

    await writer.set_signature_policy(system_id="sys.a", policy="require")
    assert await reader.signature_policies("sys.a", SERVES) == ("require", None)
    await writer.set_signature_policy(agency_code=SERVES, policy="off")
    assert await reader.signature_policies("sys.a", SERVES) == ("require", "off")

    await writer.add_binding(SERVES, "ab" * 32, None)
    assert await reader.certificate_bindings(SERVES, None) == [
        CertificateBinding(SERVES, "ab" * 32, None)
    ]
    # any agency's binding of the signer's fingerprint is returned (spoofing check)
    assert await reader.certificate_bindings("000.00.99.H53", "AB" * 32) == [
        CertificateBinding(SERVES, "ab" * 32, None)
    ]

    old, new = "000.00.02.H53", "000.00.03.H53"
    assert await reader.current_codes([old]) == {old: old}
    await writer.upsert_agencies(
        [
            AgencyRecord(AgencyCode(new), "Sở mới"),
            AgencyRecord(AgencyCode(old), "Sở cũ", status="merged", successor_code=new),
        ]
    )
    assert await reader.current_codes([old, new]) == {old: new, new: new}

    assert await reader.closed_agencies([new]) == {}
    await writer.delete_agency(new, actor="test")
    assert await reader.closed_agencies([new, old]) == {new: "deleted"}
    await writer.register_agency(
        AgencyRegistration(code=AgencyCode(new), name="Sở mới", parent_code=None), actor="test"
    )
    assert await reader.closed_agencies([new]) == {}


async def test_one_version_read_per_request_and_a_reload_only_on_change(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    writer, reader = two_stores
    await writer.add_system("sys.a", "secret", [SERVES])

    async def one_request() -> None:
        with request_scope():
            assert await reader.get_credentials("sys.a") is not None
            await reader.list_systems()
            await reader.signature_policies("sys.a", SERVES)
            await reader.certificate_bindings(SERVES, None)
            await reader.current_codes([SERVES])
            await reader.closed_agencies([SERVES])

    await one_request()
    loads = reader.config_loads
    with statements(reader) as sent:
        await one_request()
    assert len(sent) == 1 and "config_version" in sent[0], sent
    assert reader.config_loads == loads

    await writer.set_signature_policy(system_id="sys.a", policy="off")
    with statements(reader) as sent:
        await one_request()
    assert reader.config_loads == loads + 1
    assert "config_version" in sent[0], sent
    with statements(reader) as sent:
        await one_request()
    assert len(sent) == 1, sent


async def test_a_change_in_this_process_is_seen_at_once_even_within_a_request(
    two_stores: tuple[SqlStore, SqlStore],
) -> None:
    store, _ = two_stores
    await store.add_system("sys.a", "secret", [SERVES])
    with request_scope():
        before = await store.get_credentials("sys.a")
        assert before is not None and before.system.enabled
        await store.set_system_enabled("sys.a", False)
        after = await store.get_credentials("sys.a")
        assert after is not None and not after.system.enabled


async def test_a_node_refuses_at_once_a_system_the_cli_disabled_or_rotated(node: Node) -> None:
    client = await node.add_system("sys.a", SERVES)
    cli = build_store(node.runtime.settings)  # another process on the same database
    try:
        headers = node.rest_headers(client)
        assert (await node.http.get("/api/v1/inbox", headers=headers)).status_code == 200
        assert (await client.get_received())["status"] == "OK"

        await cli.set_system_enabled("sys.a", False)
        refused = await node.http.get("/api/v1/inbox", headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "SYSTEM_DISABLED")
        assert (await client.get_received())["ErrorCode"] == "29"

        await cli.set_system_enabled("sys.a", True)
        await cli.set_system_secret("sys.a", "a-new-secret-of-enough-length")
        assert (await node.http.get("/api/v1/inbox", headers=headers)).status_code == 401
        rotated = {"Authorization": "Bearer sys.a:a-new-secret-of-enough-length"}
        assert (await node.http.get("/api/v1/inbox", headers=rotated)).status_code == 200

        # With a grace period the node's snapshot holds the previous secret too.
        until = datetime.now(UTC) + timedelta(hours=1)
        await cli.set_system_secret("sys.a", "the-third-secret-here", previous_until=until)
        for secret in ("a-new-secret-of-enough-length", "the-third-secret-here"):
            good = {"Authorization": f"Bearer sys.a:{secret}"}
            assert (await node.http.get("/api/v1/inbox", headers=good)).status_code == 200
        assert (await node.http.get("/api/v1/inbox", headers=headers)).status_code == 401
    finally:
        await cli.close()


@pytest.mark.backends("production")
async def test_pooled_connections_killed_by_the_server_are_replaced(backing: Backing) -> None:
    """No pre-ping: a connection the server ended while it sat in the pool is dropped at
    checkout or replaced at BEGIN, so the next unit of work succeeds (no 503)."""
    store = build_store(backing.settings())
    try:
        await store.add_system("sys.a", "secret", [SERVES])

        # fill the pool with a few idle connections
        async def hold() -> None:
            async with store.transaction(read_only=True) as session:
                await session.connection()
                await asyncio.sleep(0.05)

        await asyncio.gather(*(hold() for _ in range(4)))
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                backing.database,
            )
        finally:
            await admin.close()
        assert ended >= 1
        await asyncio.sleep(0.2)  # the driver sees the sockets close
        await store.set_system_enabled("sys.a", False)  # a write
        credentials = await store.get_credentials("sys.a")  # the version read, and a reload
        assert credentials is not None and not credentials.system.enabled
    finally:
        await store.close()


@pytest.mark.backends("production")
async def test_killed_connections_not_yet_noticed_are_replaced_at_begin(backing: Backing) -> None:
    store = build_store(backing.settings())
    try:
        await store.ping()
        admin = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                backing.database,
            )
        finally:
            await admin.close()
        # no sleep: the first use may meet the closed socket only when it sends BEGIN
        await store.add_system("sys.a", "secret", [SERVES])
        assert await store.get_system("sys.a") is not None
    finally:
        await store.close()


@pytest.mark.backends("production")
async def test_an_exhausted_pool_answers_service_unavailable(backing: Backing) -> None:
    settings = backing.settings()
    engine = create_engine(settings.resolved_database_url, pool_size=1, pool_timeout=0.2)
    store = SqlStore(engine, build_secret_box(settings))
    release = asyncio.Event()
    held = asyncio.Event()
    holders: list[asyncio.Task[None]] = []

    async def hold() -> None:
        async with store.transaction(read_only=True) as session:
            await session.connection()
            held.set()
            await release.wait()

    try:
        for _ in range(2):  # pool_size, and as many again in overflow
            held.clear()
            holders.append(asyncio.create_task(hold()))
            await held.wait()
        with pytest.raises(ServiceUnavailable, match="connection"):
            await store.ping()
        with pytest.raises(ServiceUnavailable):
            await store.get_credentials("sys.a")
    finally:
        release.set()
        await asyncio.gather(*holders)
        await store.close()
