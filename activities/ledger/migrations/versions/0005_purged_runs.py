"""Runs remember when `handoff purge` removed their payload snapshots (`runs.purged_at`).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14

One nullable column, nothing else changes: every existing run reads as never purged. Going back drops the column,
and with it the only record of which runs were purged (their payloads stay empty, since nothing can bring them back).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("purged_at")
