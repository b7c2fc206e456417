"""A second scheduler in the test process: a replica, with a wall clock of the test's choice."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from app.config import Settings
from app.db import create_db_engine, create_session_factory
from app.delivery.client import create_http_client
from app.delivery.sender import Sender
from app.scheduling.scheduler import Scheduler


def _real_clock() -> datetime:
    return datetime.now(UTC)


@contextmanager
def second_scheduler(
    settings: Settings, clock: Callable[[], datetime] = _real_clock
) -> Iterator[None]:
    """A second scheduler (a replica) in a thread of its own, whose wall clock is `clock`."""
    started = threading.Event()
    stop: dict[str, asyncio.Event] = {}

    async def run() -> None:
        engine = create_db_engine(settings.sqlalchemy_url)
        client = create_http_client(max_connections=10, allow_private=True)
        sender = Sender(
            client=client,
            timeout_seconds=2,
            allow_private=True,
            discord_hosts=settings.discord_hosts,
            clock=clock,
        )
        scheduler = Scheduler(
            engine=engine,
            session_factory=create_session_factory(engine),
            settings=settings,
            sender=sender,
            clock=clock,
        )
        await scheduler.start()
        stop["event"] = asyncio.Event()
        started.set()
        await stop["event"].wait()
        await scheduler.stop()
        await sender.close()
        engine.dispose()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(10), "the skewed scheduler did not start"
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop["event"].set)
        thread.join(15)
        loop.close()
