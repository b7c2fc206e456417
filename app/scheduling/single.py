"""On SQLite only one process may run the scheduler: a lock file next to the database says who.

SQLite has no `SKIP LOCKED`, so two schedulers on one file could claim the same work. The first
process to take the lock runs the scheduler; any other serves the API only and says so. The
operating system drops the lock when the process ends, even on kill -9.
"""

import logging
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; run a single process there
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)


def sqlite_database_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


def acquire_scheduler_lock(database: Path) -> IO[str] | None:
    """Take the scheduler lock of a SQLite database file: the open lock file (keep it open while
    the scheduler runs), or None when another process holds it."""
    handle = open(database.with_name(database.name + ".scheduler.lock"), "a+")  # noqa: SIM115
    if fcntl is None:
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
