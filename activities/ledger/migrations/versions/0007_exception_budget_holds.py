"""Handoffs can be held by their exception budget: the `holds` table, the audit of every hold and its decision.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29

One new table: a row per hold (the figures that tripped it, who resumed or rejected it, when and why). The unique
`active_handoff` (the handoff's name while the hold is active, NULL once decided) keeps one active hold a handoff,
on SQLite and PostgreSQL alike, however many runs trip the budget at once. Going back drops the table and its history.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("handoff", sa.String(), nullable=False),
        sa.Column("active_handoff", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("runs_with_case", sa.Integer(), nullable=False),
        sa.Column("case_rate", sa.Float(), nullable=False),
        sa.Column("window_seconds", sa.Float(), nullable=False),
        sa.Column("owner_group", sa.String(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("active_handoff"),
    )
    op.create_index("ix_holds_handoff", "holds", ["handoff"])
    op.create_index("ix_holds_state", "holds", ["state"])


def downgrade() -> None:
    op.drop_index("ix_holds_state", table_name="holds")
    op.drop_index("ix_holds_handoff", table_name="holds")
    op.drop_table("holds")
