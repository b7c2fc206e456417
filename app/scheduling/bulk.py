"""Many-row writes for the statements that run once per delivery, without per-row statement
processing.

A batch of deliveries writes each of its tasks, occurrences and log rows with one statement
each. Through a Core executemany, SQLAlchemy processes every row's parameters in Python and
runs each value through its type's processors; with a few hundred rows per batch that cost more
than the database did. `BulkWrite` has the SQL written once per dialect, reads each row's values
(a mapping of column names) in the statement's order in one C call, converts only the values
that need it, with the processors SQLAlchemy itself would use (one faster equivalent for
SQLite's timestamps, checked against SQLAlchemy's in the unit tests), and hands the batch to
the driver through `exec_driver_sql`, which keeps SQLAlchemy's error translation and
connection handling.

On PostgreSQL every write is one statement for a page of rows (up to `PAGE_ROWS`: an INSERT of
many rows, an UPDATE joined to a VALUES list), so that the server parses and plans once per
page, not once per row. On SQLite, in-process, one prepared statement runs for every row,
except an INSERT that returns the ids it inserted, which is one statement of many rows there
too.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Dialect, Table
from sqlalchemy.orm import Session

from app.models import UTCDateTime

Convert = Callable[[Any], Any]

PAGE_ROWS = 500


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
    `constants`, SQL literals) on the row with the row's `id`; run for many rows at once."""

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
        if len(self._columns) < 2:
            raise ValueError("a bulk write names two columns at least")
        self._pick = itemgetter(*self._columns)  # a row's values in the statement's order
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Dialect) -> "_Plan":
        plan = self._plans.get(dialect.name)
        if plan is None:
            conversions = []
            for index, name in enumerate(self._columns):
                convert = _converter(self._table, name, dialect)
                if convert is not None:
                    conversions.append((index, convert))
            plan = self._plans[dialect.name] = self._statement(dialect, conversions)
        return plan

    def _statement(self, dialect: Dialect, conversions: list[tuple[int, Convert]]) -> "_Plan":
        # Made of the table's own (quoted) names, types and placeholders: no value is in the text.
        mark = _placeholder(dialect)
        quote = dialect.identifier_preparer.quote
        table = quote(self._table.name)
        names = [quote(name) for name in self._columns]
        postgres = dialect.name == "postgresql"
        if not self._by_id:
            head = f"INSERT INTO {table} ({', '.join(names)}) VALUES "  # noqa: S608
            tail = ""
            if self._unique:
                key = ", ".join(quote(name) for name in self._unique)
                tail = f" ON CONFLICT ({key}) DO NOTHING RETURNING id"
            row = f"({', '.join(mark for _ in names)})"
            return _Plan(head, row, tail, conversions, many_rows=postgres or bool(self._unique))
        constants = [f"{quote(name)} = {literal}" for name, literal in self._constants.items()]
        if not postgres:  # one prepared statement, run for every row
            sets = [f"{name} = {mark}" for name in names[:-1]] + constants
            head = f"UPDATE {table} SET {', '.join(sets)} WHERE id = "  # noqa: S608
            return _Plan(head, mark, "", conversions, many_rows=False)
        # One statement for a page of rows, joined to a VALUES list; each value cast to its
        # column's type, as VALUES alone would guess types from the first row.
        sets = [f"{name} = v.{name}" for name in names[:-1]] + constants
        casts = [
            f"{mark}::{self._table.c[name].type.compile(dialect=dialect)}" for name in self._columns
        ]
        head = f"UPDATE {table} SET {', '.join(sets)} FROM (VALUES "  # noqa: S608
        tail = f") AS v ({', '.join(names)}) WHERE {table}.id = v.id"
        return _Plan(head, f"({', '.join(casts)})", tail, conversions, many_rows=True)

    def execute(self, session: Session, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Write `rows` (each a mapping of column name to value; other keys are ignored; an
        UPDATE's rows name their `id`) in the session's transaction; the ids inserted, for an
        INSERT with `unique` (else [])."""
        connection = session.connection()
        dialect = connection.dialect
        plan = self._plan(dialect)
        pick = self._pick
        parameters = []
        for row in rows:
            values = list(pick(row))
            for index, convert in plan.conversions:
                value = values[index]
                if value is not None:
                    values[index] = convert(value)
            parameters.append(tuple(values))
        if self._by_id:  # one write per row, the last one's if an id comes twice
            parameters = list({values[-1]: values for values in parameters}.values())
        if not parameters:
            return []
        if not plan.many_rows:
            connection.exec_driver_sql(plan.head + plan.row + plan.tail, parameters)
            return []
        inserted = []
        for start in range(0, len(parameters), PAGE_ROWS):
            page = parameters[start : start + PAGE_ROWS]
            flat = tuple(value for values in page for value in values)
            result = connection.exec_driver_sql(plan.sql(len(page)), flat)
            if self._unique:
                inserted += result.scalars().all()
        read_id = self._table.c.id.type.dialect_impl(dialect).result_processor(dialect, None)
        return [read_id(value) for value in inserted] if read_id else inserted


@dataclass(frozen=True)
class _Plan:
    """A statement as a head, a row of placeholders and a tail; with `many_rows` the row is
    repeated, comma-separated, once for every row of a page."""

    head: str
    row: str
    tail: str
    conversions: list[tuple[int, Convert]]
    many_rows: bool

    def sql(self, count: int) -> str:
        """The statement for `count` rows."""
        return f"{self.head}{', '.join([self.row] * count)}{self.tail}"
