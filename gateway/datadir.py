"""The node's data directory: created owner-only, and never created by accident.

It holds the SQLite database, the generated secret key, the payload store and the spool —
system secrets and official documents — so it is created with mode 0700 (the database file
with 0600, see `adapters.db.engine`), whatever the umask: a default 0644 database was readable
by every local user.

The default `./lienthong-data` is relative to the working directory (made absolute when the
settings are read). `serve` and `migrate` create a node there; every other command works on an
existing node, and run elsewhere used to create an empty directory and then report "the
database is unreachable". `missing_node` names the absolute path instead, and nothing is
created.
"""

from __future__ import annotations

from pathlib import Path

from adapters.db.engine import sqlite_path
from gateway.settings import Settings

PRIVATE_DIR = 0o700


def ensure_data_dir(path: Path) -> None:
    """Create `path` (0700) if missing; an existing directory keeps its mode."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def missing_node(settings: Settings) -> str | None:
    """Why a command that needs an existing node cannot run here, or None."""
    where = (
        f"LIENTHONG_DATA_DIR is {settings.data_dir}; its default ./lienthong-data is "
        "relative to the current directory"
    )
    database = sqlite_path(settings.resolved_database_url)
    if database is not None and not database.exists():
        return (
            f"no node database at {database} ({where}): run this command where "
            "`lienthong serve` runs or set LIENTHONG_DATA_DIR (or LIENTHONG_DATABASE_URL) "
            "to the node's; `lienthong migrate` or `lienthong serve` creates a new node"
        )
    if database is None and not settings.secret_key and not settings.data_dir.is_dir():
        return (
            f"no data directory at {settings.data_dir} ({where}) and LIENTHONG_SECRET_KEY "
            "is not set: a new key here could not open the secrets the node sealed; set "
            "the node's LIENTHONG_SECRET_KEY or LIENTHONG_DATA_DIR"
        )
    return None
