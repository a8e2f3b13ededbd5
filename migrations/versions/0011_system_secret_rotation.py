"""secret rotation with a grace period: a system's previous secret (sealed) and until when it
still authenticates

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN (nullable) on both backends: no table rebuild.
    op.add_column("systems", sa.Column("previous_secret_ciphertext", sa.Text(), nullable=True))
    op.add_column("systems", sa.Column("previous_secret_until", WHEN, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("systems") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret_ciphertext")
