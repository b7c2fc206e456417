"""API keys with scopes, and the secrets that sign deliveries.

api_keys: one row per key, the key itself stored only as its SHA-256. tasks: `signing_secret`
(whsec_…), and the one it replaced with when (kept valid for a day after a rotation).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.models import JSONDocument, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", JSONDocument, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("signing_secret", sa.String(128), nullable=True))
        batch.add_column(sa.Column("previous_signing_secret", sa.String(128), nullable=True))
        batch.add_column(sa.Column("signing_rotated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        for column in ("signing_rotated_at", "previous_signing_secret", "signing_secret"):
            batch.drop_column(column)
    op.drop_table("api_keys")
