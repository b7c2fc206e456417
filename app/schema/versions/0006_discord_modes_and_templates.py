"""Templates and all of Discord: what tasks and occurrences keep for them.

tasks: `template` (render the payload), `discord_mode` (post | edit | replace),
`delete_after_seconds`, `discord_message_id` (the last message posted or edited), `runs` (how
many occurrences have fired: a template's `run_number`). occurrences: `run_number`, and
`message_id` (the message a deletion occurrence deletes).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(
            sa.Column("template", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("discord_mode", sa.String(16), nullable=False, server_default="post")
        )
        batch.add_column(sa.Column("delete_after_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("discord_message_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("runs", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("occurrences") as batch:
        batch.add_column(sa.Column("run_number", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("occurrences") as batch:
        batch.drop_column("message_id")
        batch.drop_column("run_number")
    with op.batch_alter_table("tasks") as batch:
        for column in ("runs", "discord_message_id", "delete_after_seconds", "discord_mode"):
            batch.drop_column(column)
        batch.drop_column("template")
