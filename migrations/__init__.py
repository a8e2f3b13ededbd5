"""Alembic migrations; run through `lienthong migrate` (gateway.cli) or adapters.db.migrate."""
