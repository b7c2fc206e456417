"""The monthly partitions of `task_logs` on PostgreSQL: created ahead of time, dropped when old.

On PostgreSQL `task_logs` is partitioned by range of `execution_time` (migration 0008): one
partition per calendar month in UTC, `task_logs_YYYY_MM`, and a DEFAULT partition that takes any
row no month covers, so that an insert never fails. The service keeps the current month and the
next `MONTHS_AHEAD` in place; retention drops the months that lie wholly before its cutoff, a
catalog change instead of deleting their rows one by one.

A month is added as a table of its own that is then attached: attaching locks the parent table
only against other DDL (SHARE UPDATE EXCLUSIVE), where `CREATE TABLE … PARTITION OF` would lock
out every reader, and any of the month's rows already in the default partition (written by hand
with a time far ahead) move into it first, where creating the partition would fail on them.
Dropping a partition does lock the parent; the DDL here waits at most `LOCK_WAIT` for its locks,
and gives up until the next call rather than queueing the API behind it.

Every function runs in the caller's transaction, which should be short and hold nothing else.
Replicas doing this at the same moment are serialized by a transaction-level advisory lock, under
which the catalog is read again, so the later one finds the work done. On SQLite, or when
`task_logs` is a plain table, every function does nothing.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

PARENT = "task_logs"
COLUMN = "execution_time"
DEFAULT_NAME = f"{PARENT}_default"
MONTHS_AHEAD = 3
LOCK_WAIT = "5s"
# An arbitrary constant naming "task log partitions" among advisory locks (next to the
# migrations' 724_310_551 in app/schema/env.py).
PARTITION_LOCK_ID = 724_310_552
LOCK_NOT_AVAILABLE = "55P03"

_LIST = text(
    """
    SELECT c.oid::regclass::text AS name,
           pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS start,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS "end"
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = to_regclass(:parent)
    ORDER BY start NULLS FIRST
    """
)
_IS_PARTITIONED = text(
    "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:parent))"
)


@dataclass(frozen=True)
class Partition:
    """One partition of task_logs: its (possibly schema-qualified) name and [start, end) range,
    both None for the default partition."""

    name: str
    start: datetime | None
    end: datetime | None

    @property
    def is_default(self) -> bool:
        """Whether this is the DEFAULT partition."""
        return self.start is None and self.end is None


def month_start(moment: datetime) -> datetime:
    """The first instant (UTC) of the calendar month in UTC that holds `moment`."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def add_months(month: datetime, count: int) -> datetime:
    """The first instant of the month `count` months after (or before) `month`'s."""
    index = month.year * 12 + month.month - 1 + count
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def partition_name(month: datetime) -> str:
    """The name of the partition of the month starting at `month`: task_logs_YYYY_MM."""
    return f"{PARENT}_{month:%Y_%m}"


def bound_literal(moment: datetime) -> str:
    """`moment` as a timestamptz SQL literal with an explicit UTC offset (for partition bounds,
    which take no bound parameters)."""
    return f"'{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S}+00'"


def _connection(db: Session | Connection) -> Connection:
    """The connection a session works in (beginning its transaction), or `db` itself."""
    return db.connection() if isinstance(db, Session) else db


def _on_postgresql(db: Session | Connection) -> bool:
    """Whether `db` is PostgreSQL, asked without a statement (none is sent to SQLite)."""
    bind = db.get_bind() if isinstance(db, Session) else db
    return bind.dialect.name == "postgresql"


def is_partitioned(db: Session | Connection) -> bool:
    """Whether task_logs is a partitioned table here (False on SQLite)."""
    if not _on_postgresql(db):
        return False
    return bool(_connection(db).execute(_IS_PARTITIONED, {"parent": PARENT}).scalar())


def list_partitions(db: Session | Connection) -> list[Partition]:
    """task_logs' partitions from pg_inherits, the default first, then by start (none on SQLite
    or for a plain table)."""
    if not _on_postgresql(db):
        return []
    rows = _connection(db).execute(_LIST, {"parent": PARENT}).all()
    return [
        Partition(
            name=row.name,
            start=None if row.is_default else row.start.astimezone(UTC),
            end=None if row.is_default else row.end.astimezone(UTC),
        )
        for row in rows
    ]


def missing_months(partitions: list[Partition], months: list[datetime]) -> list[datetime]:
    """The months (first instants) that no partition but the default overlaps."""
    ranges = [(p.start, p.end) for p in partitions if p.start is not None and p.end is not None]
    return [
        month
        for month in months
        if not any(start < add_months(month, 1) and month < end for start, end in ranges)
    ]


def ensure_partitions(
    db: Session | Connection, now: datetime, months_ahead: int = MONTHS_AHEAD
) -> list[str]:
    """Create the default partition and those of `now`'s month and the `months_ahead` after it,
    where missing; the names created (none when all exist, on SQLite, or on lock timeout)."""
    if not is_partitioned(db):
        return []
    months = [add_months(month_start(now), n) for n in range(months_ahead + 1)]
    existing = list_partitions(db)
    if not missing_months(existing, months) and any(p.is_default for p in existing):
        return []  # the usual case: a catalog read, no lock taken
    return _locked(db, lambda connection: _create_missing(connection, months))


def drop_partitions_before(db: Session | Connection, cutoff: datetime) -> list[str]:
    """Drop the month partitions whose whole range lies before `cutoff` (their rows with them);
    the names dropped. Rows before the cutoff elsewhere are the batched delete's to remove."""
    if not is_partitioned(db):
        return []
    if not _wholly_before(list_partitions(db), cutoff):
        return []
    return _locked(db, lambda connection: _drop_old(connection, cutoff))


def _wholly_before(partitions: list[Partition], cutoff: datetime) -> list[Partition]:
    """The month partitions that end at or before `cutoff`."""
    return [p for p in partitions if p.end is not None and p.end <= cutoff]


def _locked(db: Session | Connection, work: Callable[[Connection], list[str]]) -> list[str]:
    """Run `work` in a savepoint under the advisory lock, its lock waits bounded by LOCK_WAIT;
    on a lock timeout, nothing is changed and [] returned (the next call tries again)."""
    connection = _connection(db)
    try:
        with connection.begin_nested():
            previous = connection.execute(text("SELECT current_setting('lock_timeout')")).scalar()
            connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'"))
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PARTITION_LOCK_ID})
            done = work(connection)
            # The caller's transaction goes on with its own setting (a rollback restores it).
            connection.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": previous})
            return done
    except DBAPIError as exc:
        if getattr(exc.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
            raise
        logger.warning("task log partitions: a lock was not available; trying again later")
        return []


def _create_missing(connection: Connection, months: list[datetime]) -> list[str]:
    """Under the lock: the default partition and the months still missing (read again)."""
    existing = list_partitions(connection)
    created = []
    default = next((p.name for p in existing if p.is_default), None)
    if default is None:
        connection.execute(text(f"CREATE TABLE {DEFAULT_NAME} PARTITION OF {PARENT} DEFAULT"))
        created.append(DEFAULT_NAME)
        default = DEFAULT_NAME
    for month in missing_months(existing, months):
        created.append(_attach_month(connection, month, default=default))
    return created


def _attach_month(connection: Connection, month: datetime, *, default: str) -> str:
    """Create the month's table, move the month's rows out of the default partition into it,
    and attach it; its name."""
    name = partition_name(month)
    start, end = bound_literal(month), bound_literal(add_months(month, 1))
    within = f"{COLUMN} >= {start} AND {COLUMN} < {end}"
    connection.execute(
        text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    )
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} WHERE {within} RETURNING *) "  # noqa: S608 (names made here)
            f"INSERT INTO {name} SELECT * FROM moved"
        )
    )
    connection.execute(
        text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})")
    )
    return name


def _drop_old(connection: Connection, cutoff: datetime) -> list[str]:
    """Under the lock: drop the partitions wholly before the cutoff (read again)."""
    dropped = []
    for partition in _wholly_before(list_partitions(connection), cutoff):
        connection.execute(text(f"DROP TABLE {partition.name}"))
        dropped.append(partition.name)
    return dropped
