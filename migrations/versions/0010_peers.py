"""peer nodes (federation, SPEC §3.5): peers, the items polled from them, the peer and
downstream state of forwarded deliveries, the peer that serves a learned agency

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "peers",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("url", sa.String(1000), nullable=False),
        sa.Column("system_id", sa.String(64), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("prefixes", sa.JSON(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("poll_owner", sa.String(64), nullable=True),
        sa.Column("poll_until", WHEN, nullable=True),
        sa.Column("last_poll_at", WHEN, nullable=True),
        sa.Column("last_poll_error", sa.Text(), nullable=True),
        sa.Column("last_contact_at", WHEN, nullable=True),
        sa.Column("last_error_at", WHEN, nullable=True),
        sa.Column("directory_version", BIG_ID, nullable=True),
        sa.Column("directory_synced_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peers")),
        sa.UniqueConstraint("name", name=op.f("uq_peers_name")),
    )
    op.create_table(
        "peer_items",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("peer", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("item_id", sa.String(100), nullable=False),
        sa.Column("recipient_code", sa.String(35), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("seen_at", WHEN, nullable=False),
        sa.Column("acknowledged_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_peer_items")),
        sa.UniqueConstraint("peer", "kind", "item_id", name=op.f("uq_peer_items_peer")),
    )
    op.create_index(op.f("ix_peer_items_outcome"), "peer_items", ["outcome"])
    # Plain ADD COLUMN on both backends (no table rebuild: deliveries may be millions).
    op.add_column("deliveries", sa.Column("peer", sa.String(64), nullable=True))
    op.add_column("deliveries", sa.Column("peer_doc_id", sa.String(100), nullable=True))
    op.add_column("deliveries", sa.Column("downstream_state", sa.String(32), nullable=True))
    op.add_column("deliveries", sa.Column("downstream_at", WHEN, nullable=True))
    op.add_column("agencies", sa.Column("peer", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agencies") as batch:
        batch.drop_column("peer")
    with op.batch_alter_table("deliveries") as batch:
        for column in ("downstream_at", "downstream_state", "peer_doc_id", "peer"):
            batch.drop_column(column)
    op.drop_index(op.f("ix_peer_items_outcome"), table_name="peer_items")
    op.drop_table("peer_items")
    op.drop_table("peers")
