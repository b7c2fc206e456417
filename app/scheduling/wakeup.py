"""Waking schedulers when due work moves earlier (a task created, changed, or run by hand).

Services call `request_wake(session)` inside the transaction that made the change. After the
commit, schedulers in this process are woken through the session factory's `after_commit` hook;
on PostgreSQL the same transaction also sends `NOTIFY`, which reaches the schedulers of every
replica (PostgreSQL delivers it at commit, never for a transaction that rolled back); on SQLite,
where one of the worker processes runs the scheduler, the others ring its `SqliteDoorbell`.
"""

import asyncio
import contextlib
import hashlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

WAKE_CHANNEL = "insignia_scheduler"
_WAKE_FLAG = "wake_scheduler"


def request_wake(session: Session) -> None:
    """Ask schedulers to look at the due work again once this transaction commits."""
    session.info[_WAKE_FLAG] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})


def on_committed_wake(factory: sessionmaker[Session], callback: Callable[[], None]) -> None:
    """Call `callback` after each commit of a session from `factory` that requested a wake."""

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        if session.info.pop(_WAKE_FLAG, False):
            callback()

    @event.listens_for(factory, "after_rollback")
    def _after_rollback(session: Session) -> None:
        session.info.pop(_WAKE_FLAG, None)


class PostgresWakeListener:
    """LISTENs on a dedicated connection and calls `on_wake` for each notification.

    The connection is watched by the event loop (`add_reader`), so listening costs nothing while
    nothing happens. If the connection breaks, `active` turns False and the scheduler falls back
    to short polling until `connect` succeeds again.
    """

    def __init__(self, engine: Engine, on_wake: Callable[[], None]) -> None:
        self._engine = engine
        self._on_wake = on_wake
        self._connection: Any = None
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def active(self) -> bool:
        return self._connection is not None

    async def connect(self) -> None:
        """Open the listening connection (blocking work runs in a thread)."""
        self._loop = asyncio.get_running_loop()
        connection = await asyncio.to_thread(self._open)
        self._connection, self._fd = connection, connection.fileno()
        self._loop.add_reader(self._fd, self._on_readable)

    def _open(self) -> Any:
        dialect = self._engine.dialect
        args, kwargs = dialect.create_connect_args(self._engine.url)
        # Fail fast, and notice a silently dropped connection (TCP keepalives) so that the
        # scheduler falls back to polling instead of waiting for notifications that never come.
        kwargs |= {
            "connect_timeout": 5,
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
        connection = dialect.loaded_dbapi.connect(*args, **kwargs)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {WAKE_CHANNEL}")
        return connection

    def _on_readable(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            connection.poll()
        except Exception:
            logger.warning("scheduler wake-up connection lost; polling until it is back")
            self.close()
            self._on_wake()
            return
        if connection.notifies:
            connection.notifies.clear()
            self._on_wake()

    def close(self) -> None:
        """Stop listening and close the connection."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._loop is not None and self._fd is not None:
            self._loop.remove_reader(self._fd)
        try:
            connection.close()
        except Exception:  # already broken; nothing more to release
            logger.debug("closing a broken wake-up connection failed", exc_info=True)


class SqliteDoorbell:
    """Wakes the scheduler of a SQLite database from the other processes using it.

    On SQLite one process runs the scheduler (see `single`) while every worker serves the API;
    a task created or run by hand in another worker rings this bell so the scheduler looks at
    once instead of at its next poll. The bell is a Unix datagram socket in Linux's abstract
    namespace, named after the database file (nothing on disk to clean up); elsewhere it is
    silent and the scheduler finds the work at its next poll (SCHEDULER_POLL_SECONDS).
    """

    def __init__(self, database: Path) -> None:
        digest = hashlib.sha256(str(database).encode()).hexdigest()[:32]
        self._address = f"\0insignia-wake-{digest}"
        self._socket: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def listen(self, on_ring: Callable[[], None]) -> bool:
        """Answer rings with `on_ring` (in the running loop); False where this cannot be done."""
        if not sys.platform.startswith("linux"):
            return False
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            listener.bind(self._address)
        except OSError:
            listener.close()
            return False
        listener.setblocking(False)
        self._socket, self._loop = listener, asyncio.get_running_loop()
        self._loop.add_reader(listener.fileno(), self._drain, on_ring)
        return True

    def _drain(self, on_ring: Callable[[], None]) -> None:
        assert self._socket is not None
        with contextlib.suppress(BlockingIOError):
            while self._socket.recv(16):
                pass
        on_ring()

    def ring(self) -> None:
        """Wake the listening process, if there is one (never blocks, never raises)."""
        if not sys.platform.startswith("linux"):
            return
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as bell:
            bell.setblocking(False)
            bell.sendto(b"!", self._address)

    def close(self) -> None:
        """Stop listening."""
        listener, self._socket = self._socket, None
        if listener is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(listener.fileno())
        listener.close()
