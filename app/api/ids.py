"""Path ids: anything that is not a UUID names no object, so it is a 404 like an unknown id."""

import uuid

from app.errors import NotFound


def parse_id(value: str, what: str) -> uuid.UUID:
    """The UUID in `value`, or NotFound(what)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound(what) from None
