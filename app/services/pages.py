"""Keyset pagination: a `cursor` names the last row of a page; the next page starts after it.

Deep pages by `skip` make the database walk past every skipped row; a cursor goes straight to
the right place in the (time, id) index, however deep. Cursors are opaque to clients.
"""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, Uuid, bindparam, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from app.errors import InvalidField
from app.models import UTCDateTime

Q = TypeVar("Q", bound=Select[Any])


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
        cursor = Cursor(datetime.fromisoformat(at), uuid.UUID(row_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidField("cursor", "not a cursor given by this API", location="query") from None
    if cursor.at.tzinfo is None:
        raise InvalidField("cursor", "not a cursor given by this API", location="query")
    return cursor


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


def next_cursor(rows: list[Any], limit: int, *, at: str) -> str | None:
    """The cursor after the last row when the page is full (there may be more), else None."""
    if len(rows) < limit or not rows:
        return None
    last = rows[-1]
    return encode_cursor(getattr(last, at), last.id)
