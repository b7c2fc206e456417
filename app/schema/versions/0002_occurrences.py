"""Occurrences: claimed firings of tasks, with their lease and retry time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTCDateTime = app.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "occurrences",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("scheduled_for", UTCDateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("available_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("rate_limit_wait_seconds", sa.Float(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_occurrences_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_occurrences")),
        sa.UniqueConstraint(
            "task_id", "scheduled_for", name=op.f("uq_occurrences_task_id_scheduled_for")
        ),
    )
    op.create_index(op.f("ix_occurrences_available_at"), "occurrences", ["available_at"])
    op.create_index(op.f("ix_occurrences_finished_at"), "occurrences", ["finished_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_occurrences_finished_at"), table_name="occurrences")
    op.drop_index(op.f("ix_occurrences_available_at"), table_name="occurrences")
    op.drop_table("occurrences")
