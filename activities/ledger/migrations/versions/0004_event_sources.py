"""Event sources sign their events: the sources, their secrets, and the signatures already accepted.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Three new tables, nothing else changes: a ledger with rows upgrades without touching them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "source_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("secret", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source"], ["sources.name"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_source_secrets_source", "source_secrets", ["source"])
    op.create_table(
        "seen_signatures",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("signature", sa.String(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "signature"),
    )
    op.create_index("ix_seen_signatures_expires_at", "seen_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_table("seen_signatures")
    op.drop_table("source_secrets")
    op.drop_table("sources")
