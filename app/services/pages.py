"""Keyset pagination: a `cursor` names the last row of a page; the next page starts after it.

Deep pages by `skip` make the database walk past every skipped row; a cursor goes straight to
the right place in the (time, id) index, however deep. Cursors are opaque to clients.
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, Uuid, bindparam, func, literal_column, select, tuple_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.expression import ClauseElement, Executable

from app.errors import InvalidField
from app.models import UTCDateTime

Q = TypeVar("Q", bound=Select[Any])

EXACT_COUNT_LIMIT = 10_000
# A planner estimate above this multiple of the limit is taken without counting at all.
TRUST_ESTIMATE_FACTOR = 2


@dataclass(frozen=True)
class Cursor:
    """The (time, id) of the last row of a page, in the list's order (newest first)."""

    at: datetime
    id: uuid.UUID


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    """An opaque cursor for the row with this sort time and id."""
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str | None) -> Cursor | None:
    """The cursor a client sent back, or a 422 on the `cursor` query parameter."""
    if text is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        at, row_id = raw.split("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return Cursor(moment.astimezone(UTC), uuid.UUID(row_id))
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidField("cursor", "not a cursor given by this API", location="query") from None


def after_cursor(
    query: Q,
    cursor: Cursor | None,
    *,
    at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
) -> Q:
    """`query` restricted to rows after the cursor in newest-first (time, id) order."""
    if cursor is None:
        return query
    bound = tuple_(
        bindparam("cursor_at", cursor.at, type_=UTCDateTime()),
        bindparam("cursor_id", cursor.id, type_=Uuid()),
    )
    return query.where(tuple_(at, row_id) < bound)


def count_rows(session: Session, query: Select[Any]) -> tuple[int, bool]:
    """How many rows `query` matches: exact up to `EXACT_COUNT_LIMIT`, else the query planner's
    estimate (PostgreSQL) or the limit itself (SQLite), flagged as an estimate. An exact count
    of millions of rows reads them all; a list page should not wait for that.

    On PostgreSQL the planner is asked first (a fraction of a millisecond): when it expects
    well over the limit, even the bounded count (which reads `EXACT_COUNT_LIMIT` index
    entries, several milliseconds) is skipped."""
    exact_up_to = EXACT_COUNT_LIMIT
    postgres = session.get_bind().dialect.name == "postgresql"
    estimate = _planner_estimate(session, query) if postgres else None
    if estimate is not None and estimate > TRUST_ESTIMATE_FACTOR * exact_up_to:
        return estimate, True
    # The caller passes the query in the list's order: the database then walks its (time, id)
    # index and stops after the limit, instead of collecting every match first.
    bounded = query.with_only_columns(literal_column("1"), maintain_column_froms=True).limit(
        exact_up_to + 1
    )
    counted = session.scalar(select(func.count()).select_from(bounded.subquery())) or 0
    if counted <= exact_up_to:
        return counted, False
    return max(estimate or 0, exact_up_to), True


class _Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON) <statement>`, with the statement's values as bound parameters
    (never spliced into the SQL text)."""

    inherit_cache = False

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)


def _planner_estimate(session: Session, query: Select[Any]) -> int:
    """The number of rows PostgreSQL's planner expects `query` to match (no rows are read)."""
    statement = query.with_only_columns(literal_column("1"), maintain_column_froms=True).order_by(
        None
    )
    plan = session.execute(_Explain(statement)).scalar()
    return int(plan[0]["Plan"]["Plan Rows"])


def page_total(
    session: Session,
    query: Select[Any],
    page: list[Any],
    *,
    skip: int,
    limit: int,
    cursor: Cursor | None,
) -> tuple[int, bool]:
    """The total for a list page: a first page that is not full holds every match, so its
    length is the exact total; otherwise `count_rows`."""
    if skip == 0 and cursor is None and len(page) < limit:
        return len(page), False
    return count_rows(session, query)


def next_cursor(rows: list[Any], limit: int, *, at: str) -> str | None:
    """The cursor after the last row when the page is full (there may be more), else None."""
    if len(rows) < limit or not rows:
        return None
    last = rows[-1]
    return encode_cursor(getattr(last, at), last.id)
