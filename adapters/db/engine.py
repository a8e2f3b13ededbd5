"""One async engine per process, configured for the backend it talks to."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gateway.errors import TextUnstorable

READ_ONLY = "lienthong_read_only"
"""Execution option marking a transaction that only reads (see `SqlStore.reading`)."""


UNSTORABLE = (
    "a value holds a NUL character (U+0000) or a lone UTF-16 surrogate, which no "
    "id, code, name or reason can hold, or is a number beyond 64 bits"
)


INT64 = range(-(2**63), 2**63)


def _unstorable(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return value not in INT64
    if isinstance(value, str):
        if "\x00" in value:
            return True
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, tuple | list):
        return any(_unstorable(item) for item in value)
    if isinstance(value, dict):
        return any(_unstorable(item) for item in value.values())
    return False


def _refuse_unstorable(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _executemany: bool
) -> None:
    """Text that is not storable UTF-8 never reaches a database. PostgreSQL cannot hold
    U+0000 and no UTF-8 can hold a lone surrogate (JSON's `"\\ud800"` decodes to one):
    asyncpg failed such a statement like a lost connection, so a NUL in an id
    (`/api/v1/packages/a%00b`), a filter or a JSON body was answered 503 "database
    unreachable" — telling the client to retry what can never succeed — and SQLite raised
    UnicodeEncodeError (500) on a surrogate. Refused here, before anything is written, it is
    a 400 (27 on /vxp) on both backends. A number beyond 64 bits is refused the same way
    (SQLite raised OverflowError on one); parameters are bounded where they are read, this
    is the net under them."""
    if _unstorable(parameters):
        raise TextUnstorable(UNSTORABLE)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another backend or an in-memory one."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_private_sqlite_file(url: str) -> None:
    """Create a missing SQLite database file with mode 0600 before SQLite does (it would use
    0644 under the usual umask); SQLite gives its -wal and -shm files the same mode. An empty
    file is an empty database. An existing file keeps its mode."""
    path = sqlite_path(url)
    if path is None or path.exists() or not path.parent.is_dir():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _closed_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server closed (a restart terminates every session, and the
    driver sees the socket close) is found here without a round trip; the whole pool is
    refreshed, since its other connections went with the same server."""
    driver = getattr(dbapi_connection, "_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        raise exc.InvalidatePoolError("connection closed by the server while pooled")


def create_engine(url: str, *, pool_size: int = 10, pool_timeout: float = 30.0) -> AsyncEngine:
    """PostgreSQL gets a pool of `pool_size` connections (and as many again in overflow)
    without pre-ping (a `BEGIN; SELECT; ROLLBACK` per checkout): a connection the server
    closed is dropped at checkout, one that fails at BEGIN is replaced by the transaction
    helper (`adapters.db.store.base`); a checkout that waits `pool_timeout` seconds raises
    (503). SQLite gets WAL and `BEGIN IMMEDIATE`, because a deferred transaction that reads
    and then writes fails at once with SQLITE_BUSY when another writer got there first,
    whatever the busy timeout."""
    if not is_sqlite(url):
        engine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=pool_timeout,
            pool_recycle=1800,
        )
        event.listen(engine.sync_engine, "before_cursor_execute", _refuse_unstorable)
        event.listen(engine.sync_engine, "checkout", _closed_on_checkout)
        return engine
    create_private_sqlite_file(url)
    engine = create_async_engine(url, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_unstorable)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Readers take no lock in WAL mode: only writers need to queue for the write lock.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[Any]:
    return async_sessionmaker(engine, expire_on_commit=False)
