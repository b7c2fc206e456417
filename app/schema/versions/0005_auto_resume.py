"""Failing tasks come back by themselves: the health ladder's columns on tasks.

`auto_resume` (the user's choice), `resume_at` (when the next probe is due), `failing_since` and
`failures` (the ladder: consecutive failed occurrences), `status_changed_at` (when the status
last changed, by the API or by the service, for clients that poll).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(
            sa.Column("auto_resume", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("resume_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("failing_since", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("status_changed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in ("status_changed_at", "failures", "failing_since", "resume_at"):
            batch.drop_column(column)
        batch.drop_column("auto_resume")
