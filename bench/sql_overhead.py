"""What one SQL statement costs the node's process: SQLAlchemy's session, its connection, and
the raw asyncpg driver, for the same INSERT on PostgreSQL; and one whole short transaction.

Why: the node's hot path is about 18 statements in 2–3 transactions per package (see
`bench/small_packages.py --sql-profile`); this prints the CPU each layer adds per statement, so
the share of SQLAlchemy in a package's CPU can be read off rather than guessed.

    python bench/sql_overhead.py [--statements 2000] [--url postgresql+asyncpg://…]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import common
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine


async def measure(url: str, statements: int) -> None:
    metadata = MetaData()
    table = Table(
        f"sql_overhead_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("a", String(50)),
        Column("b", String(50)),
    )
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    figures: dict[str, float] = {}
    try:
        async with sessions() as session, session.begin():
            started = time.process_time()
            for _ in range(statements):
                await session.execute(insert(table).values(a="x", b="y"))
            figures["AsyncSession.execute (Core INSERT)"] = time.process_time() - started
            connection = await session.connection()
            started = time.process_time()
            for _ in range(statements):
                await connection.execute(insert(table).values(a="x", b="y"))
            figures["AsyncConnection.execute (Core INSERT)"] = time.process_time() - started
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            sql = f"INSERT INTO {table.name} (a, b) VALUES ($1, $2)"
            started = time.process_time()
            for _ in range(statements):
                await raw.execute(sql, "x", "y")
            figures["asyncpg execute (baseline)"] = time.process_time() - started
        started = time.process_time()
        for _ in range(statements // 4):
            async with sessions() as session, session.begin():
                await session.execute(text("SELECT 1"))
        figures["session + BEGIN + SELECT 1 + COMMIT"] = (time.process_time() - started) * 4
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()
    baseline = figures["asyncpg execute (baseline)"]
    print(f"{'layer':<42} {'CPU ms/statement':>17} {'/asyncpg':>9}")
    for name, seconds in figures.items():
        print(f"{name:<42} {seconds / statements * 1000:>17.3f} {seconds / baseline:>8.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--statements", type=int, default=2000)
    parser.add_argument("--url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(f"command: {common.command_line()}")
    print(f"hardware: {common.hardware()}")
    asyncio.run(measure(args.url, args.statements))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
