"""The first ledger: runs, cases with their violations, decisions, escalations, deliveries and operators.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Runs carry no override flag nor failure yet, and refused decision signals are not recorded (0002 adds them).
Hand-checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("handoff", sa.String(), nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("dedupe_key", sa.String(), nullable=False),
        sa.Column("contract_version", sa.Integer(), nullable=False),
        sa.Column("contract_hash", sa.String(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("last_step", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("workflow_id"),
    )
    with op.batch_alter_table("runs") as batch:
        batch.create_index("ix_runs_handoff", ["handoff"])
        batch.create_index("ix_runs_contract_hash", ["contract_hash"])
        batch.create_index("ix_runs_stage", ["stage"])
        batch.create_index("ix_runs_received_at", ["received_at"])

    op.create_table(
        "cases",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("handoff", sa.String(), nullable=False),
        sa.Column("owner_group", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(), nullable=True),
        sa.Column("allowed", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cases") as batch:
        batch.create_index("ix_cases_workflow_id", ["workflow_id"])
        batch.create_index("ix_cases_handoff", ["handoff"])
        batch.create_index("ix_cases_owner_group", ["owner_group"])
        batch.create_index("ix_cases_status", ["status"])

    op.create_table(
        "violations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "position"),
    )
    with op.batch_alter_table("violations") as batch:
        batch.create_index("ix_violations_case_id", ["case_id"])

    op.create_table(
        "decisions",
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("handoff", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("operator", sa.String(), nullable=False),
        sa.Column("group", sa.String(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("patch", sa.JSON(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by_timeout", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("decisions") as batch:
        batch.create_index("ix_decisions_workflow_id", ["workflow_id"])
        batch.create_index("ix_decisions_handoff", ["handoff"])

    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("from_group", sa.String(), nullable=False),
        sa.Column("to_group", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "to_group"),
    )
    with op.batch_alter_table("escalations") as batch:
        batch.create_index("ix_escalations_case_id", ["case_id"])
        batch.create_index("ix_escalations_workflow_id", ["workflow_id"])

    op.create_table(
        "deliveries",
        sa.Column("workflow_id", sa.String(), nullable=False),
        sa.Column("system", sa.String(), nullable=False),
        sa.Column("handoff", sa.String(), nullable=False),
        sa.Column("record_key", sa.String(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("workflow_id", "system"),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.create_index("ix_deliveries_handoff", ["handoff"])

    op.create_table(
        "operators",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("operators") as batch:
        batch.create_index("ix_operators_token_hash", ["token_hash"], unique=True)


def downgrade() -> None:
    for table in ("operators", "deliveries", "escalations", "decisions", "violations", "cases", "runs"):
        op.drop_table(table)
