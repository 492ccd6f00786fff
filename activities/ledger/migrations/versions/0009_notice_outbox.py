"""Notices wait in the ledger until a worker sends them: the notice outbox.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

One new table, `notice_outbox`: a notice about a case (opened, escalated), written in the same transaction as the
ledger record it goes with, and sent by the workers' outbox sender, retried until it is taken or given up. Going back
drops the table and the notices still waiting in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("owner_group", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("handoff", sa.String(), nullable=False),
        sa.Column("notice", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("gave_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "event", "owner_group"),
    )
    # The senders' question, every second: the waiting notices that are due. Sent ones pile up behind them.
    op.create_index("ix_notice_outbox_waiting", "notice_outbox", ["sent_at", "gave_up_at", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_notice_outbox_waiting", table_name="notice_outbox")
    op.drop_table("notice_outbox")
