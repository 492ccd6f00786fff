"""Operators have a role: administrator, operator, viewer or source (`schemas.operators.Role`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Hand-checked on SQLite and PostgreSQL, on a ledger with rows: every existing operator becomes an `operator`, which
is what they could do before (decide their groups' cases).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # As in 0002: the server default fills in the existing rows, then goes, because the model always writes the
    # column itself. Two batches, so SQLite adds the column in place before it copies the table to drop the default.
    with op.batch_alter_table("operators") as batch:
        batch.add_column(sa.Column("role", sa.String(), nullable=False, server_default="operator"))
    with op.batch_alter_table("operators") as batch:
        batch.alter_column("role", existing_type=sa.String(), existing_nullable=False, server_default=None)


def downgrade() -> None:
    # Before 0003 everyone in the table was an operator who may decide for their groups: take the groups of the
    # other roles away, so that going back gives no viewer, administrator or source a decision they did not have.
    op.execute("UPDATE operators SET groups = '[]' WHERE role <> 'operator'")
    with op.batch_alter_table("operators") as batch:
        batch.drop_column("role")
