"""Alembic environment: async engine, batch mode for SQLite, a lock so concurrent starts of
several gateway processes against one PostgreSQL do not race on the same migration."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text

from adapters.db.engine import create_engine, is_sqlite
from adapters.db.models import Base

MIGRATION_LOCK_ID = 0x4C54_4D49  # "LTMI": any constant shared by every node of a cluster


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if not sqlite:
        connection.execute(text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_ID})"))
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    finally:
        if not sqlite:
            connection.execute(text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_ID})"))
            connection.commit()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
if context.is_offline_mode():
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=is_sqlite(str(url)),
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async(str(url)))
