"""On PostgreSQL, task logs partitioned by month of `execution_time`.

`task_logs` becomes a table partitioned by range of `execution_time`, the attempt's time that
the API's filters, its ordering and retention all use: one partition per calendar month in UTC
(task_logs_YYYY_MM) and a DEFAULT partition (task_logs_default) for rows no month covers, so an
insert never fails. Retention can then drop whole months instead of deleting their rows one by
one, and a query bounded in time reads only the months it names. While the service runs,
app.scheduling.partitions creates the months ahead and drops the expired ones.

Partitions are created for every month that holds rows (so the months from the oldest row's to
the newest's, without empty tables for the gaps, should a few stray rows lie far apart), back to
MAX_HISTORY_MONTHS before the current month, and for the current month and the MONTHS_AHEAD after
it. Rows outside those months (older, or far ahead) go to the default partition, where retention
deletes them row by row, or from where the service moves them into their month once it comes.

PostgreSQL requires the primary key of a partitioned table to include the partition column: the
key becomes (id, execution_time). ids are random UUIDs the application generates: no sequence is
involved, and every row keeps its id. Nothing references task_logs by foreign key; its own key to
tasks (ON DELETE CASCADE) is kept, as are its indexes (now partitioned indexes on the parent).

This migration rewrites the table: the old one is renamed, its rows copied into the new one with
one INSERT … SELECT, the keys and indexes built afterwards, the old table dropped. It holds an
ACCESS EXCLUSIVE lock on task_logs until it commits, so logs can be neither read nor written
meanwhile, and needs room for a second copy of the table. Measured on 2 cores: 18 s for 2 million
rows (736 MB with indexes), so budget about 10 s per million. The downgrade rewrites it back into
a plain table keyed by id the same way (and fails, changing nothing, should two rows share an id,
which the partitioned key allows).

The migration carries its own SQL instead of importing app.scheduling.partitions: a migration is
a fixed step of history and must do the same thing whatever that module becomes.

SQLite: nothing changes; its task_logs stays one table keyed by id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

from app.models import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "task_logs"
MONTHS_AHEAD = 3
MAX_HISTORY_MONTHS = 60
INDEXES = {
    "ix_task_logs_task_id_execution_time_id": ["task_id", "execution_time", "id"],
    "ix_task_logs_execution_time_id": ["execution_time", "id"],
    "ix_task_logs_status_execution_time_id": ["status", "execution_time", "id"],
}
# Each month that holds rows, found with one probe of the execution_time index per month.
MONTHS_HOLDING_ROWS = text(
    """
    WITH RECURSIVE months(start) AS (
        SELECT date_trunc('month', min(execution_time), 'UTC') FROM task_logs
        UNION ALL
        SELECT (SELECT date_trunc('month', min(execution_time), 'UTC') FROM task_logs
                WHERE execution_time >= (months.start AT TIME ZONE 'UTC' + interval '1 month')
                                        AT TIME ZONE 'UTC')
        FROM months WHERE months.start IS NOT NULL
    )
    SELECT start FROM months WHERE start IS NOT NULL
    """
)
COLUMNS = (
    "id, task_id, execution_time, scheduled_for, status, retry_count, message, http_status, "
    "duration_ms, response_body, trigger, created_at"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    months = _months_to_create()  # while the old table's index can answer
    _set_aside("task_logs_unpartitioned")
    _create_table(postgresql_partition_by="RANGE (execution_time)")
    for month in months:
        _create_partition(month)
    op.execute(f"CREATE TABLE {TABLE}_default PARTITION OF {TABLE} DEFAULT")
    _fill_from("task_logs_unpartitioned", key=["id", "execution_time"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    _set_aside("task_logs_partitioned")
    _create_table()
    _fill_from("task_logs_partitioned", key=["id"])


def _set_aside(new_name: str) -> None:
    """Rename the current table and free the names of its key and indexes for the new one."""
    for index in INDEXES:
        op.drop_index(index, table_name=TABLE)
    op.drop_constraint("fk_task_logs_task_id_tasks", TABLE, type_="foreignkey")
    op.drop_constraint("pk_task_logs", TABLE, type_="primary")
    op.rename_table(TABLE, new_name)


def _create_table(**options: str) -> None:
    """The table as migrations 0001 and 0003 made it, without its keys and indexes (built after
    the rows are in, which is faster than maintaining them row by row)."""
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("execution_time", UTCDateTime(), nullable=False),
        sa.Column("scheduled_for", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        **options,
    )


def _fill_from(old: str, *, key: list[str]) -> None:
    """Copy every row of `old` in one statement, then build the keys and indexes, drop `old`."""
    copy = f"INSERT INTO {TABLE} ({COLUMNS}) SELECT {COLUMNS} FROM {old}"  # noqa: S608 (our names)
    op.execute(copy)
    op.create_primary_key("pk_task_logs", TABLE, key)
    op.create_foreign_key(
        "fk_task_logs_task_id_tasks", TABLE, "tasks", ["task_id"], ["id"], ondelete="CASCADE"
    )
    for index, columns in INDEXES.items():
        op.create_index(index, TABLE, columns)
    op.drop_table(old)
    op.execute(f"ANALYZE {TABLE}")


def _months_to_create() -> list[datetime]:
    """The past months that hold rows, back to MAX_HISTORY_MONTHS, and the current month with
    the MONTHS_AHEAD after it, by the database's clock."""
    bind = op.get_bind()
    current = _month_index(bind.execute(text("SELECT now()")).scalar_one())
    ahead = set(range(current, current + MONTHS_AHEAD + 1))
    held = {_month_index(start) for start in bind.execute(MONTHS_HOLDING_ROWS).scalars()}
    wanted = {index for index in held if current - MAX_HISTORY_MONTHS <= index < current} | ahead
    return [datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC) for index in sorted(wanted)]


def _month_index(moment: datetime) -> int:
    """Months since year 0 of `moment`'s month in UTC."""
    moment = moment.astimezone(UTC)
    return moment.year * 12 + moment.month - 1


def _create_partition(month: datetime) -> None:
    """The partition of the month starting at `month`, bounded in UTC."""
    end = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=UTC)
    op.execute(
        f"CREATE TABLE {TABLE}_{month:%Y_%m} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ('{month:%Y-%m-%d} 00:00:00+00') TO ('{end:%Y-%m-%d} 00:00:00+00')"
    )
