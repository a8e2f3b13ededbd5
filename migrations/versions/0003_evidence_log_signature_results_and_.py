"""evidence log, signature results and trust bindings

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "agency_certificates",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("agency_code", sa.String(length=35), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("subject", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_certificates")),
    )
    with op.batch_alter_table("agency_certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agency_certificates_agency_code"), ["agency_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_agency_certificates_fingerprint"), ["fingerprint"], unique=False
        )

    op.create_table(
        "evidence",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("delivery_id", sa.String(length=36), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_evidence")),
    )
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_evidence_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_evidence_message_id"), ["message_id"], unique=False)

    op.create_table(
        "evidence_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evidence_head")),
    )
    # The chain starts from a head at entry 0 whose hash is the genesis value.
    op.bulk_insert(
        sa.table(
            "evidence_head",
            sa.column("id", sa.Integer),
            sa.column("seq", sa.BigInteger),
            sa.column("entry_hash", sa.String),
        ),
        [{"id": 1, "seq": 0, "entry_hash": "0" * 64}],
    )
    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature_policy", sa.String(length=24), nullable=True))

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature_outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.JSON(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_messages_signature_outcome"), ["signature_outcome"], unique=False
        )

    with op.batch_alter_table("systems", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature_policy", sa.String(length=24), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("systems", schema=None) as batch_op:
        batch_op.drop_column("signature_policy")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_signature_outcome"))
        batch_op.drop_column("signature")
        batch_op.drop_column("signature_outcome")

    with op.batch_alter_table("agencies", schema=None) as batch_op:
        batch_op.drop_column("signature_policy")

    op.drop_table("evidence_head")
    with op.batch_alter_table("evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evidence_message_id"))
        batch_op.drop_index(batch_op.f("ix_evidence_at"))

    op.drop_table("evidence")
    with op.batch_alter_table("agency_certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agency_certificates_fingerprint"))
        batch_op.drop_index(batch_op.f("ix_agency_certificates_agency_code"))

    op.drop_table("agency_certificates")
