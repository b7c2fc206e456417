"""Schedules people actually have: windows and run limits, several schedules, exclusions, quiet
hours, fan-out to several webhooks, tags.

tasks: `start_at`, `end_at`, `max_runs`; `schedules` (the several-schedule form), `exclude`,
`quiet_hours`; `webhook_urls` and `targets` (the fan-out form and each target's own state);
`tags`. occurrences: `target` (which of the task's webhooks; 0 for one-webhook tasks) joins the
unique key, so each target's run is claimed once; `fire_kind` marks silent and deferred runs.
task_logs: `target`. Every column is empty or 0 for the tasks that exist, which keep working as
they did.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models import OptionalJSON, UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TASK_JSON_COLUMNS = ("schedules", "exclude", "quiet_hours", "webhook_urls", "targets", "tags")
OLD_KEY = "uq_occurrences_task_id_scheduled_for"
NEW_KEY = "uq_occurrences_task_id_target_scheduled_for"


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("start_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("end_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("max_runs", sa.Integer(), nullable=True))
        for name in TASK_JSON_COLUMNS:
            batch.add_column(sa.Column(name, OptionalJSON, nullable=True))
    with op.batch_alter_table("occurrences") as batch:
        batch.add_column(sa.Column("target", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("fire_kind", sa.String(16), nullable=True))
        batch.drop_constraint(OLD_KEY, type_="unique")
        batch.create_unique_constraint(NEW_KEY, ["task_id", "target", "scheduled_for"])
    op.add_column("task_logs", sa.Column("target", sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_tasks_tags ON tasks USING gin (tags jsonb_path_ops) "
            "WHERE tags IS NOT NULL"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_tasks_tags")
    op.drop_column("task_logs", "target")
    # Fan-out runs have no place in the old key: only the first target's are kept.
    op.execute("DELETE FROM occurrences WHERE target <> 0")
    with op.batch_alter_table("occurrences") as batch:
        batch.drop_constraint(NEW_KEY, type_="unique")
        batch.create_unique_constraint(OLD_KEY, ["task_id", "scheduled_for"])
        batch.drop_column("fire_kind")
        batch.drop_column("target")
    with op.batch_alter_table("tasks") as batch:
        for name in reversed(TASK_JSON_COLUMNS):
            batch.drop_column(name)
        for name in ("max_runs", "end_at", "start_at"):
            batch.drop_column(name)
