"""Runs record an override and a failure; refused decision signals are kept for the audit trail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Hand-checked on SQLite and PostgreSQL, on a ledger with rows: existing runs get override = false and no failure.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing runs need a value for the new NOT NULL column: the server default fills them in, then goes, because
    # the model always writes the column itself (and the schema should equal the model). Two batches on purpose:
    # SQLite adds the column in place, then copies the table to drop the default; one batch would copy first and
    # find no value for the rows.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("override", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("failure", sa.String(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("override", existing_type=sa.Boolean(), existing_nullable=False, server_default=None)

    op.create_table(
        "refused_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("handoff", sa.String(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("refusal", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id", "sequence"),
    )
    with op.batch_alter_table("refused_decisions") as batch:
        batch.create_index("ix_refused_decisions_workflow_id", ["workflow_id"])


def downgrade() -> None:
    op.drop_table("refused_decisions")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("failure")
        batch.drop_column("override")
