"""The commands that run or describe the service itself: serve, token, version; and the local
token the client commands use by default.

The service's modules (settings, database, uvicorn) are imported where they are used, so that
`--help`, `version` and the client commands start quickly.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from app import __version__
from app.cli.client import TOKEN_VARIABLE, Api, api_url

if TYPE_CHECKING:
    from app.config import Settings

SETTINGS_ERROR_EXIT = 2
NO_TOKEN_YET = "No token yet: start the service once (python main.py) to generate one."  # noqa: S105


def load_settings() -> Settings:
    """The settings, or one line per wrong setting on stderr and exit status 2."""
    from pydantic import ValidationError

    from app.cli.settings_errors import settings_error_lines
    from app.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        for line in settings_error_lines(exc):
            typer.echo(line, err=True)
        raise typer.Exit(SETTINGS_ERROR_EXIT) from None


def serve() -> None:
    """Serve the API and run the scheduler (the default command), in WORKERS processes."""
    import uvicorn

    from app.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,  # the service writes its own access line, with route and request id
        "proxy_headers": True,
        # Cloud Run kills 10 s after SIGTERM: 2 s for open requests, then the scheduler's
        # SHUTDOWN_GRACE_SECONDS (5) for deliveries and a short flush of their records.
        "timeout_graceful_shutdown": 2,
    }
    workers = settings.worker_count
    if workers == 1:
        uvicorn.run("app.main:create_app", factory=True, **options)
        return
    # Each worker is a fresh process: it sets up its own logging (create_worker_app), and the
    # workers' counters meet in one directory so that /metrics shows them all.
    with shared_metrics_directory():
        uvicorn.run("app.main:create_worker_app", factory=True, workers=workers, **options)


@contextlib.contextmanager
def shared_metrics_directory() -> Iterator[Path]:
    """A new empty directory for the workers' metrics, named in PROMETHEUS_MULTIPROC_DIR while
    the service runs, removed after."""
    from app.metrics import MULTIPROCESS_DIRECTORY

    with tempfile.TemporaryDirectory(prefix="insignia-metrics-") as directory:
        previous = os.environ.get(MULTIPROCESS_DIRECTORY)
        os.environ[MULTIPROCESS_DIRECTORY] = directory
        try:
            yield Path(directory)
        finally:
            if previous is None:
                os.environ.pop(MULTIPROCESS_DIRECTORY, None)
            else:
                os.environ[MULTIPROCESS_DIRECTORY] = previous


def token() -> None:
    """Print the API token the service accepts."""
    found = local_token(load_settings(), migrate=True)
    if found is None:
        typer.echo(NO_TOKEN_YET, err=True)
        raise typer.Exit(1)
    typer.echo(found)


def version() -> None:
    """Print the version of this program."""
    typer.echo(__version__)


def local_token(settings: Settings, *, migrate: bool) -> str | None:
    """The configured API_TOKEN, else the token generated and stored in the database. With
    `migrate`, the database is brought up to date first (as the service would); without it a
    database that is missing or unreadable simply has no token."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    from sqlalchemy.exc import SQLAlchemyError

    from app.db import create_db_engine, create_session_factory
    from app.migrations import upgrade_database
    from app.tokens import read_stored_token

    if migrate:
        upgrade_database(settings.sqlalchemy_url)
    elif not _database_exists(settings.sqlalchemy_url):
        return None
    engine = create_db_engine(settings.sqlalchemy_url)
    try:
        return read_stored_token(create_session_factory(engine))
    except SQLAlchemyError:
        if migrate:
            raise
        return None
    finally:
        engine.dispose()


def _database_exists(url: str) -> bool:
    """False for a SQLite file that is not there (opening it would create it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return True
    return (
        bool(parsed.database) and parsed.database != ":memory:" and Path(parsed.database).exists()
    )


def client_token() -> str:
    """INSIGNIA_TOKEN, else the local service's token; exit 1 with what to do if neither."""
    given = os.environ.get(TOKEN_VARIABLE, "").strip()
    if given:
        return given
    found = local_token(load_settings(), migrate=False)
    if found is None:
        typer.echo(
            f"error: no API token: set {TOKEN_VARIABLE} (without it the local service's token "
            "is used, and none was found: is DATABASE_URL the service's?)",
            err=True,
        )
        raise typer.Exit(1)
    return found


def connect() -> Api:
    """A client for the API at INSIGNIA_URL with INSIGNIA_TOKEN (or the local token)."""
    return Api(api_url(), client_token)
