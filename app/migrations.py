"""Apply the Alembic migrations from code, as the service does on start.

The migrations live inside the package (`app/schema/`), so that an installed service (`pip
install .`, then `insignia`) carries them; the root `alembic.ini` points there for running
`alembic` by hand.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config

from app.scheduling.single import fcntl, sqlite_database_path

SCRIPT_LOCATION = Path(__file__).resolve().parent / "schema"


def alembic_config(url: str) -> Config:
    """An Alembic config for this project's migrations against `url`."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # ConfigParser treats % as interpolation; URLs may contain percent-escapes.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["skip_logging_config"] = True
    return config


def upgrade_database(url: str) -> None:
    """Bring the database at `url` to the latest schema (safe to run from several replicas:
    PostgreSQL serializes them with an advisory lock in env.py, a SQLite file with a lock file
    beside it, since SQLite's batch migrations read the table before they rebuild it)."""
    with _sqlite_migration_lock(sqlite_database_path(url)):
        command.upgrade(alembic_config(url), "head")


@contextlib.contextmanager
def _sqlite_migration_lock(database: Path | None) -> Iterator[None]:
    """Hold `<database>.migrate.lock` exclusively while migrating (nothing for other databases)."""
    if database is None or fcntl is None:
        yield
        return
    with open(database.with_name(database.name + ".migrate.lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
