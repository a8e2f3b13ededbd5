"""Schema migrations as a step of their own (never inside a running event loop)."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import migrations
from adapters.db.engine import create_private_sqlite_file

SCRIPT_LOCATION = Path(migrations.__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database to `revision`. env.py runs its own event loop, which cannot nest in
    a running one, so under a running loop the work goes to a thread (and blocks: migrating is
    a step of its own, nothing else should run meanwhile)."""
    create_private_sqlite_file(url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), revision)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


@functools.cache
def revisions() -> tuple[str, frozenset[str]]:
    """(head, every revision) of the migrations this code ships: a database at the head is
    what this code needs; at another known revision it is behind (a migration is due); at
    an unknown one, ahead (migrated by a newer version)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head, frozenset(r.revision for r in script.walk_revisions())
