"""The one place where domain errors become HTTP answers."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import Conflict, InvalidField, NotFound

logger = logging.getLogger(__name__)

BODY_PARSE_ERROR = "There was an error parsing the body"  # FastAPI's words for undecodable bodies


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping from our errors to JSON `{"detail": ...}` answers."""

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == BODY_PARSE_ERROR:
            # A body that is not even text (bad UTF-8) is malformed JSON like any other: 422.
            detail = [{"type": "json_invalid", "loc": ["body"], "msg": "body is not valid JSON"}]
            return JSONResponse({"detail": detail}, status_code=422)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": plain_errors(exc.errors())}, status_code=422)

    @app.exception_handler(InvalidField)
    async def invalid_field(_request: Request, exc: InvalidField) -> JSONResponse:
        detail = [{"type": "value_error", "loc": [exc.location, exc.field], "msg": exc.message}]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(OperationalError)
    async def database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # OperationalError is the driver's "cannot talk to the database" family (refused
        # connection, lost connection, SQLite busy past its timeout): a 503 the client may retry.
        logger.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "Database unavailable; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )


def plain_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """One plain error per wrong field: `loc` is where the field is and its name (no validator
    or union-member names after it), `msg` without pydantic's prefixes, and no echo of the
    input (which may be megabytes, or hold a webhook's secret)."""
    plain: dict[tuple, dict[str, Any]] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))[:2]
        if loc in plain:
            continue
        message = str(error.get("msg", "invalid"))
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        plain[loc] = {"type": error.get("type", "value_error"), "loc": list(loc), "msg": message}
    return list(plain.values())
