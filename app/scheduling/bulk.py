"""Many-row writes for the statements that run once per delivery, without per-row statement
processing.

A batch of deliveries writes each of its tasks, occurrences and log rows with one executemany.
Through a Core statement, SQLAlchemy builds a parameter dictionary for every row and runs each
value through its type's processors; with a few hundred rows per batch that costs more than
the database does. `BulkWrite` has the SQL written once per dialect and rows given as tuples
in a fixed column order, converts only the values that need it, with the processors SQLAlchemy
itself would use (one faster equivalent for SQLite's timestamps, checked against SQLAlchemy's
in the unit tests), and hands the batch to the driver through `exec_driver_sql`, which keeps
SQLAlchemy's error translation and connection handling. An INSERT that returns the ids it
inserted, and any INSERT on PostgreSQL, goes as one statement of many rows (up to `INSERT_PAGE`
of them); UPDATEs go as one statement run for every row (on PostgreSQL, in pages: the engine's
`values_plus_batch` mode).
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Dialect, Table
from sqlalchemy.orm import Session

from app.models import UTCDateTime

Convert = Callable[[Any], Any]

INSERT_PAGE = 500


def sqlite_timestamp(value: datetime) -> str:
    """An aware datetime as SQLite stores it (UTC, naive, always with microseconds): what
    UTCDateTime and SQLAlchemy's SQLite DATETIME together write, computed in C."""
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _converter(table: Table, column: str, dialect: Dialect) -> Convert | None:
    """How a value of `column` goes to the driver (None: as it is)."""
    column_type = table.c[column].type
    if isinstance(column_type, UTCDateTime) and dialect.name == "sqlite":
        return sqlite_timestamp
    return column_type.dialect_impl(dialect).bind_processor(dialect)


def _placeholder(dialect: Dialect) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


class BulkWrite:
    """An INSERT of `columns` (with `unique`, skipping rows that would repeat that key, and
    returning the ids of those inserted), or with `by_id` an UPDATE setting `columns` (and
    `constants`, SQL literals) on the row whose id is the tuple's last value; run for many rows
    at once."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        *,
        by_id: bool = False,
        constants: dict[str, str] | None = None,
        unique: Sequence[str] = (),
    ) -> None:
        self._table = table
        self._columns = tuple(columns) + (("id",) if by_id else ())
        self._by_id = by_id
        self._constants = constants or {}
        self._unique = tuple(unique)
        self._plans: dict[str, tuple[str, list[tuple[int, Convert]]]] = {}

    def _sql(self, dialect: Dialect) -> str:
        # Made of the table's own (quoted) names and placeholders only: no value is in the text.
        mark = _placeholder(dialect)
        quote = dialect.identifier_preparer.quote
        table = quote(self._table.name)
        if not self._by_id:
            names = ", ".join(quote(name) for name in self._columns)
            marks = ", ".join(mark for _ in self._columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608
            if self._unique:
                key = ", ".join(quote(name) for name in self._unique)
                insert += f" ON CONFLICT ({key}) DO NOTHING RETURNING id"
            return insert
        sets = [f"{quote(name)} = {mark}" for name in self._columns[:-1]]
        sets += [f"{quote(name)} = {literal}" for name, literal in self._constants.items()]
        return f"UPDATE {table} SET {', '.join(sets)} WHERE id = {mark}"  # noqa: S608

    def _plan(self, dialect: Dialect) -> tuple[str, list[tuple[int, Convert]]]:
        plan = self._plans.get(dialect.name)
        if plan is None:
            conversions = []
            for index, name in enumerate(self._columns):
                convert = _converter(self._table, name, dialect)
                if convert is not None:
                    conversions.append((index, convert))
            plan = self._plans[dialect.name] = (self._sql(dialect), conversions)
        return plan

    def execute(self, session: Session, rows: Iterable[Sequence[Any]]) -> list[Any]:
        """Write `rows` (tuples in the column order; for an UPDATE, the id last) in the
        session's transaction; the ids inserted, for an INSERT with `unique` (else [])."""
        connection = session.connection()
        dialect = connection.dialect
        sql, conversions = self._plan(dialect)
        parameters = []
        for row in rows:
            values = list(row)
            for index, convert in conversions:
                value = values[index]
                if value is not None:
                    values[index] = convert(value)
            parameters.append(tuple(values))
        if not parameters:
            return []
        if self._by_id or (dialect.name == "sqlite" and not self._unique):
            connection.exec_driver_sql(sql, parameters)
            return []
        inserted = []
        for start in range(0, len(parameters), INSERT_PAGE):
            page = parameters[start : start + INSERT_PAGE]
            flat = tuple(value for values in page for value in values)
            result = connection.exec_driver_sql(_many_rows(sql, len(page)), flat)
            if self._unique:
                inserted += result.scalars().all()
        read_id = self._table.c.id.type.dialect_impl(dialect).result_processor(dialect, None)
        return [read_id(value) for value in inserted] if read_id else inserted


def _many_rows(insert: str, count: int) -> str:
    """An INSERT of one row of placeholders made an INSERT of `count` rows."""
    head, _, rest = insert.partition(" VALUES ")
    row, close, tail = rest.partition(")")
    return f"{head} VALUES {', '.join([row + close] * count)}{tail}"
