"""report indexes: the quarterly report's aggregates read narrow index entries, not the
wide message rows (issue #13; measured by bench/report_quarter.py)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE_COLUMNS = [
    "kind",
    "received_at",
    "from_code",
    "sender_system_id",
    "paper",
    "status_code",
    "id",
]
DELIVERY_COLUMNS = ["message_id", "route", "kind", "recipient_code", "state"]


def upgrade() -> None:
    # A quarter's report groups every package of the period by agency. A message row holds
    # its header JSON (kilobytes): scanning the rows reads gigabytes for a province's
    # quarter, these entries (every column the report reads, `id` last for the join) a few
    # hundred megabytes. A lease changes no indexed column and stays a HOT update (0007); a
    # state change already rewrites the deliveries' index entries (the state is in
    # ix_deliveries_state_changed), so holding the state here costs PostgreSQL nothing more.
    op.create_index("ix_messages_report", "messages", MESSAGE_COLUMNS, unique=False)
    op.create_index("ix_deliveries_report", "deliveries", DELIVERY_COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_deliveries_report", table_name="deliveries")
    op.drop_index("ix_messages_report", table_name="messages")
