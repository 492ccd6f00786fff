"""Cases can be claimed, released, reassigned and commented on; notifications about them are sent once.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-21

Two nullable columns on `cases` (who holds the case, since when) and two new tables: `case_events` (what people did
on a case besides deciding it) and `notices` (each notification sent, unique per case, event, group and notifier).
Existing cases read as held by nobody. Going back drops the columns and tables, and the history they hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("to_operator", sa.String(), nullable=True),
        sa.Column("text", sa.String(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])
    op.create_index("ix_case_events_workflow_id", "case_events", ["workflow_id"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("owner_group", sa.String(), nullable=False),
        sa.Column("notifier", sa.String(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "event", "owner_group", "notifier"),
    )
    op.create_index("ix_notices_case_id", "notices", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_notices_case_id", table_name="notices")
    op.drop_table("notices")
    op.drop_index("ix_case_events_workflow_id", table_name="case_events")
    op.drop_index("ix_case_events_case_id", table_name="case_events")
    op.drop_table("case_events")
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
