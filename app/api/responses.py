"""Error answers as the OpenAPI document describes them."""

from pydantic import BaseModel


class ErrorMessage(BaseModel):
    detail: str


def _error(description: str) -> dict:
    return {"model": ErrorMessage, "description": description}


UNAUTHORIZED = {401: _error("Missing or wrong bearer token (with `WWW-Authenticate: Bearer`)")}
NOT_FOUND = {404: _error("No object with this id")}
UNAVAILABLE = {503: _error("The database cannot be reached right now; try again shortly")}
CONFLICT = {409: _error("Another process runs the scheduler for this SQLite database")}
ALREADY_DELIVERED = {409: _error("A one-time task that was delivered is not made active again")}
TOO_LARGE = {413: _error("The request body is over MAX_REQUEST_BYTES")}
FORBIDDEN = {403: _error("The key lacks the scope this route needs (named in `detail`)")}
PROTECTED = UNAUTHORIZED | FORBIDDEN | UNAVAILABLE
