"""inbox poll index: pending deliveries of a system in id order; room for HOT lease updates

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# `gateway.delivery_states.PENDING_FOR_RECIPIENT` when this revision was written, frozen here:
# the store's inbox statements repeat this exact term so that SQLite (which matches a partial
# index's WHERE term by term) uses the index as PostgreSQL does.
PENDING = sa.text("state IN ('available', 'downloaded', 'fail')")


def upgrade() -> None:
    # Lease, list and count read one system's pending items oldest first: an index in id
    # order over the pending rows only lets them stop after a page, however many done
    # deliveries the system has collected over the years.
    op.create_index(
        "ix_deliveries_inbox_pending",
        "deliveries",
        ["system_id", "kind", "id"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    if op.get_bind().dialect.name == "postgresql":
        # A lease rewrites lease_until/lease_count, which no index holds: with free room on
        # the page the new row version stays there (a HOT update) and no index entry is
        # written. New pages keep 20 % free; existing pages are not rewritten.
        op.execute("ALTER TABLE deliveries SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.drop_index("ix_deliveries_inbox_pending", table_name="deliveries")
