"""BulkWrite's SQL and value conversion, against what SQLAlchemy itself would send."""

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from app.models import Occurrence, Task, TaskLog
from app.scheduling.bulk import BulkWrite, sqlite_timestamp

SQLITE = sqlite.dialect()
POSTGRESQL = postgresql.psycopg2.dialect()

INSTANTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1, 1, 1, 12, tzinfo=timezone(timedelta(hours=-11))),
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),  # in the spring gap
    datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 11, 30, 5, 0, 0, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("instant", INSTANTS, ids=str)
def test_sqlite_timestamps_are_what_sqlalchemy_writes(instant: datetime):
    column_type = Task.__table__.c.next_run_at.type
    sqlalchemys = column_type.dialect_impl(SQLITE).bind_processor(SQLITE)
    assert sqlite_timestamp(instant) == sqlalchemys(instant)


def test_a_naive_timestamp_is_refused_as_sqlalchemy_refuses_it():
    naive = datetime(2026, 11, 30, 5, 0)
    column_type = Task.__table__.c.next_run_at.type
    with pytest.raises(ValueError, match="naive"):
        column_type.dialect_impl(SQLITE).bind_processor(SQLITE)(naive)
    with pytest.raises(ValueError, match="naive"):
        sqlite_timestamp(naive)


def single(write: BulkWrite, dialect) -> str:
    plan = write._plan(dialect)
    assert not plan.many_rows
    return plan.sql(1)


def test_an_insert_names_its_columns_in_the_rows_order():
    write = BulkWrite(TaskLog.__table__, ("id", "task_id", "message"))
    assert single(write, SQLITE) == (
        "INSERT INTO task_logs (id, task_id, message) VALUES (?, ?, ?)"
    )
    assert write._plan(POSTGRESQL).sql(2) == (
        "INSERT INTO task_logs (id, task_id, message) VALUES (%s, %s, %s), (%s, %s, %s)"
    )


def finishing_occurrences() -> BulkWrite:
    columns = ("attempt", "finished_at")
    return BulkWrite(Occurrence.__table__, columns, by_id=True, constants={"lease_owner": "NULL"})


def test_an_update_on_sqlite_is_one_statement_run_for_every_row():
    write = finishing_occurrences()
    assert single(write, SQLITE) == (
        "UPDATE occurrences SET attempt = ?, finished_at = ?, lease_owner = NULL WHERE id = ?"
    )


def test_an_update_on_postgresql_joins_a_page_of_typed_values():
    write = finishing_occurrences()
    row = "(%s::INTEGER, %s::TIMESTAMP WITH TIME ZONE, %s::UUID)"
    expected = (
        "UPDATE occurrences SET attempt = v.attempt, finished_at = v.finished_at, "
        "lease_owner = NULL FROM (VALUES ROWS) AS v (attempt, finished_at, id) "
        "WHERE occurrences.id = v.id"
    )
    assert write._plan(POSTGRESQL).sql(2) == expected.replace("ROWS", f"{row}, {row}")


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRESQL], ids=["sqlite", "postgresql"])
def test_each_value_is_converted_as_sqlalchemy_converts_it(dialect):
    columns = ("status", "next_run_at", "failures", "targets", "discord_message_id")
    write = BulkWrite(Task.__table__, columns, by_id=True)
    conversions = write._plan(dialect).conversions
    task_id = uuid.uuid4()
    row = ("active", INSTANTS[4], 3, [{"status": "active", "é": "\U0001f600"}], None, task_id)
    converted = list(row)
    for index, convert in conversions:
        converted[index] = convert(row[index])
    for name, value, sent in zip((*columns, "id"), row, converted, strict=True):
        processor = Task.__table__.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        assert sent == (processor(value) if processor and value is not None else value), name


def test_an_insert_of_many_rows_keeps_its_conflict_clause_once():
    write = BulkWrite(Occurrence.__table__, ("id", "task_id"), unique=("task_id", "id"))
    plan = write._plan(SQLITE)
    assert plan.many_rows
    assert plan.sql(3) == (
        "INSERT INTO occurrences (id, task_id) VALUES (?, ?), (?, ?), (?, ?) "
        "ON CONFLICT (task_id, id) DO NOTHING RETURNING id"
    )
