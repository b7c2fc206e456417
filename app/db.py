"""Engine and session factories. Nothing is built at import time.

SQLite is the embedded default. It allows one writer at a time, so every transaction starts with
`BEGIN IMMEDIATE`: a transaction that reads and then writes takes the write lock up front and
waits (busy_timeout) instead of failing with "database is locked" when another connection wrote
in between. WAL mode lets readers run alongside the writer.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 5


def create_db_engine(url: str) -> Engine:
    """An engine for `url` with the connection settings this service relies on."""
    if url.startswith("sqlite"):
        return _create_sqlite_engine(url)
    # values_plus_batch: the ORM's many-row UPDATEs (claims, recorded attempts) go to the
    # server in pages instead of one round trip per row.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        executemany_mode="values_plus_batch",
        # Fail fast when the server is unreachable instead of hanging a request or a probe.
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
    )


def _create_sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Take transaction control away from pysqlite so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the API returns them)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with factory() as session, session.begin():
        yield session
