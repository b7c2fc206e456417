"""A trigram index for the task name search (`GET /tasks?search=`), on PostgreSQL.

The search is a substring match, `lower(name) LIKE '%…%'`, which no B-tree index serves; with
100,000 tasks it scanned them all (about 170 ms). A GIN index of pg_trgm trigrams serves it.

pg_trgm ships with PostgreSQL and is a trusted extension (PostgreSQL 13+: a user who may
create objects in the database may install it; Cloud SQL and most hosted services allow it).
Where it cannot be installed, the index is skipped with a warning and search keeps working,
only slower. SQLite has no such index; its search stays a scan.

The extension is installed in the first schema of the search path. Building the index locks
the tasks table against writes for as long as it takes (well under a second for 100,000 tasks).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_tasks_name_trgm"
# insufficient_privilege, undefined_file (the server lacks the contrib files),
# feature_not_supported: the extension cannot be had here; anything else is a real failure.
NOT_AVAILABLE = frozenset({"42501", "58P01", "0A000"})
logger = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            # The operator class lives in the extension's schema, which may not be on the
            # search path (an extension installed earlier, elsewhere).
            schema = bind.execute(
                text(
                    "SELECT n.nspname FROM pg_extension e "
                    "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
                )
            ).scalar_one()
            quoted = bind.dialect.identifier_preparer.quote_identifier(schema)
            bind.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {INDEX} ON tasks "
                    f"USING gin (lower(name) {quoted}.gin_trgm_ops)"
                )
            )
    except DBAPIError as exc:
        code = getattr(exc.orig, "pgcode", None)
        if code not in NOT_AVAILABLE:
            raise  # a timeout or a lost connection: fail, and the next start tries again
        logger.warning(
            "pg_trgm is not available (SQLSTATE %s); task search will scan the tasks table",
            code,
        )


def downgrade() -> None:
    # The extension stays: other objects in the database may use it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(text(f"DROP INDEX IF EXISTS {INDEX}"))
