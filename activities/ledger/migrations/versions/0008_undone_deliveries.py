"""A delivery can be undone: ordered deliveries undo their earlier writes when a later target refuses the record.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

One nullable column on `deliveries`: when the write was undone (`SyncTarget.undo`). Existing deliveries read as
standing. Going back drops the column, and with it which writes were undone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("undone_at")
