"""directory versions node-wide, registered contact fields, sync indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "directory_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", BIG_ID, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_version")),
    )
    # Versions were counted per row until now: number them node-wide (row ids are unique and
    # grow), so that the first incremental sync of a peer sees one order, and start the
    # counter after the highest.
    op.execute("UPDATE agencies SET version = id")
    op.execute(
        "INSERT INTO directory_version (id, value) "
        "SELECT 1, COALESCE(MAX(version), 0) FROM agencies"
    )
    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mobile", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("fax", sa.String(length=50), nullable=True))
        batch_op.create_index(batch_op.f("ix_agencies_version"), ["version"], unique=True)
        batch_op.create_index(batch_op.f("ix_agencies_parent_code"), ["parent_code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agencies_parent_code"))
        batch_op.drop_index(batch_op.f("ix_agencies_version"))
        batch_op.drop_column("fax")
        batch_op.drop_column("mobile")
    op.drop_table("directory_version")
