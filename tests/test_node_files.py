"""Issue 9: the node's files are owner-only, and a command run away from the node names the
node it looked for instead of creating an empty one."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from adapters.db.engine import create_engine
from gateway.cli import main
from tests.support.samples import document

CLEAN_ENV = {
    "LIENTHONG_DATA_DIR": None,
    "LIENTHONG_DATABASE_URL": None,
    "LIENTHONG_SECRET_KEY": None,
    "LIENTHONG_BROKER_URL": None,
}


def lienthong(*args: str, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), env={**CLEAN_ENV, **env}, catch_exceptions=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no node in it, under the usual umask."""
    monkeypatch.chdir(tmp_path)
    previous = os.umask(0o022)
    yield tmp_path
    os.umask(previous)


def test_the_data_directory_database_and_key_are_owner_only(elsewhere: Path) -> None:
    result = lienthong("migrate")
    assert result.exit_code == 0, result.output
    data = elsewhere / "lienthong-data"
    assert mode(data) == 0o700
    assert mode(data / "lienthong.sqlite3") == 0o600
    result = lienthong("systems", "add", "sys.files", "--serves", "#.H53")
    assert result.exit_code == 0, result.output
    assert mode(data / "secret.key") == 0o600

    async def write_in_wal_mode() -> None:  # SQLite gives -wal/-shm the database's mode
        engine = create_engine(f"sqlite+aiosqlite:///{data / 'lienthong.sqlite3'}")
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE probe (x)")
            for name in ("lienthong.sqlite3-wal", "lienthong.sqlite3-shm"):
                assert mode(data / name) == 0o600, name
        await engine.dispose()

    asyncio.run(write_in_wal_mode())


def test_a_command_away_from_the_node_names_it_and_creates_nothing(elsewhere: Path) -> None:
    for args in (("systems", "list"), ("agencies", "list"), ("messages", "stuck")):
        result = lienthong(*args)
        assert result.exit_code == 1, (args, result.output)
        assert (
            f"no node database at {elsewhere / 'lienthong-data' / 'lienthong.sqlite3'}"
            in result.output
        ), result.output
        assert "LIENTHONG_DATA_DIR" in result.output and "unreachable" not in result.output
        assert not (elsewhere / "lienthong-data").exists()
    # A relative LIENTHONG_DATA_DIR is named absolute too.
    result = lienthong("systems", "list", LIENTHONG_DATA_DIR="node")
    assert f"no node database at {elsewhere / 'node' / 'lienthong.sqlite3'}" in result.output
    # Where the node is, the same command works; tools that need no node always do.
    assert lienthong("migrate").exit_code == 0
    assert lienthong("systems", "list").exit_code == 0
    (elsewhere / "package.edxml").write_bytes(document("000.00.01.H53", ["000.00.02.H53"]))
    checked = lienthong("edxml", "validate", "package.edxml", LIENTHONG_DATA_DIR="node")
    assert checked.exit_code == 0, checked.output
    assert not (elsewhere / "node").exists()
