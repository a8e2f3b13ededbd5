"""evidence sequencer: entries written unchained, chained in batches

An entry is now written in its event's transaction without its place in the chain (`seq`,
`prev_hash`, `entry_hash` NULL) and chained later by the sequencer, which locks the head row
once per batch instead of once per event. `seq` stops being the primary key: `id` (insertion
order) takes its place, existing entries keep `id = seq`; `seq` stays unique where it is set
(a unique index allows several NULLs on both backends), and a partial index finds the
unchained entries.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNCHAINED = sa.text("seq IS NULL")


def _columns(*, upgraded: bool) -> list[sa.Column[object]]:
    """The table's columns after (`upgraded`) or before this revision."""
    return [
        *([sa.Column("id", BIG_ID, nullable=False)] if upgraded else []),
        sa.Column("seq", BIG_ID, autoincrement=False, nullable=upgraded),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("delivery_id", sa.String(length=36), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=upgraded),
        sa.Column("entry_hash", sa.String(length=64), nullable=upgraded),
    ]


COPIED = "seq, at, event, message_id, delivery_id, actor, payload_sha256, details, prev_hash, "
COPIED += "entry_hash"


def _sqlite_rebuild(*, upgraded: bool) -> None:
    """SQLite cannot change a primary key in place: copy into a new table and swap."""
    op.create_table(
        "_evidence_new",
        *_columns(upgraded=upgraded),
        sa.PrimaryKeyConstraint("id" if upgraded else "seq", name="pk_evidence"),
    )
    if upgraded:  # existing entries keep their order: id = seq
        op.execute(f"INSERT INTO _evidence_new (id, {COPIED}) SELECT seq, {COPIED} FROM evidence")
    else:
        op.execute(
            f"INSERT INTO _evidence_new ({COPIED}) SELECT {COPIED} FROM evidence "
            "WHERE seq IS NOT NULL"
        )
    op.drop_table("evidence")  # its indexes go with it
    op.rename_table("_evidence_new", "evidence")
    op.create_index("ix_evidence_at", "evidence", ["at"])
    op.create_index("ix_evidence_message_id", "evidence", ["message_id"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(upgraded=True)
    else:
        op.add_column("evidence", sa.Column("id", sa.BigInteger(), nullable=True))
        op.execute("UPDATE evidence SET id = seq")
        op.execute("CREATE SEQUENCE evidence_id_seq OWNED BY evidence.id")
        op.execute(
            "SELECT setval('evidence_id_seq', COALESCE((SELECT MAX(id) FROM evidence), 0) + 1, "
            "false)"
        )
        op.execute("ALTER TABLE evidence ALTER COLUMN id SET DEFAULT nextval('evidence_id_seq')")
        op.alter_column("evidence", "id", nullable=False)
        op.drop_constraint("pk_evidence", "evidence", type_="primary")
        op.create_primary_key("pk_evidence", "evidence", ["id"])
        for name in ("seq", "prev_hash", "entry_hash"):
            op.alter_column("evidence", name, nullable=True)
    op.create_index("uq_evidence_seq", "evidence", ["seq"], unique=True)
    op.create_index(
        "ix_evidence_unchained",
        "evidence",
        ["id"],
        postgresql_where=UNCHAINED,
        sqlite_where=UNCHAINED,
    )


def downgrade() -> None:
    # Entries not yet chained cannot be kept by the old schema: chain them first (start the
    # node, or run `lienthong audit verify`), or they are dropped here.
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_rebuild(upgraded=False)
        return
    op.drop_index("ix_evidence_unchained", table_name="evidence")
    op.drop_index("uq_evidence_seq", table_name="evidence")
    op.execute("DELETE FROM evidence WHERE seq IS NULL")
    for name in ("seq", "prev_hash", "entry_hash"):
        op.alter_column("evidence", name, nullable=False)
    op.drop_constraint("pk_evidence", "evidence", type_="primary")
    op.create_primary_key("pk_evidence", "evidence", ["seq"])
    op.drop_column("evidence", "id")  # its sequence goes with it (OWNED BY)
