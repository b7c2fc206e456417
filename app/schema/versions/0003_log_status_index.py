"""Index task logs by status, for the status filter and its count on large tables.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_task_logs_status_execution_time_id", "task_logs", ["status", "execution_time", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_task_logs_status_execution_time_id", table_name="task_logs")
