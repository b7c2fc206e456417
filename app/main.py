"""The FastAPI application: `create_app()` builds it; its lifespan prepares the database."""

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__
from app.api import health, task_logs, tasks
from app.api.errors import install_error_handlers
from app.config import Settings, get_settings
from app.db import create_db_engine, create_session_factory
from app.delivery.client import create_http_client
from app.delivery.sender import Sender
from app.migrations import upgrade_database
from app.scheduling.scheduler import Scheduler
from app.scheduling.single import acquire_scheduler_lock, sqlite_database_path
from app.scheduling.wakeup import on_committed_wake
from app.tokens import resolve_api_token

logger = logging.getLogger(__name__)

DESCRIPTION = """
Schedule webhook notifications (Discord first of all): cron, interval or one-time tasks, delivered
with retries and a log row per attempt. Every route but `/`, `/livez`, `/readyz`, `/metrics` and the
docs needs `Authorization: Bearer <API_TOKEN>`.
"""


class TrailingSlashMiddleware:
    """Serve `/tasks/` exactly like `/tasks`, without a redirect."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = dict(scope, path=path.rstrip("/") or "/")
                scope["raw_path"] = scope["path"].encode()
        await self.app(scope, receive, send)


@asynccontextmanager
async def running_scheduler(
    engine: Engine, factory: sessionmaker[Session], settings: Settings
) -> AsyncIterator[Scheduler | None]:
    """A started scheduler, stopped on exit; None when another process runs it (SQLite)."""
    lock = None
    database_file = sqlite_database_path(settings.sqlalchemy_url)
    if database_file is not None:
        lock = acquire_scheduler_lock(database_file)
        if lock is None:
            logger.warning(
                "another process runs the scheduler for this SQLite database; "
                "this process serves the API only",
                extra={"database_file": str(database_file)},
            )
            yield None
            return
    client = create_http_client(
        max_connections=settings.max_concurrent_deliveries,
        allow_private=settings.allow_private_webhook_targets,
    )
    sender = Sender(
        client=client,
        timeout_seconds=settings.delivery_timeout_seconds,
        allow_private=settings.allow_private_webhook_targets,
        discord_hosts=settings.discord_hosts,
    )
    scheduler = Scheduler(engine=engine, session_factory=factory, settings=settings, sender=sender)
    on_committed_wake(factory, scheduler.wake)
    await scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.stop()
        await sender.close()
        if lock is not None:
            lock.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (read from the environment when not given)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(settings.sqlalchemy_url)
        upgrade_database(settings.sqlalchemy_url)
        factory = create_session_factory(engine)
        app.state.engine = engine
        app.state.session_factory = factory
        app.state.api_token = resolve_api_token(factory, settings)
        app.state.scheduler = None
        async with AsyncExitStack() as stack:
            stack.callback(engine.dispose)
            if settings.scheduler_enabled:
                app.state.scheduler = await stack.enter_async_context(
                    running_scheduler(engine, factory, settings)
                )
            logger.info(
                "service ready",
                extra={
                    "database": engine.dialect.name,
                    "scheduler": "on" if app.state.scheduler else "off",
                },
            )
            yield

    app = FastAPI(
        title="Insignia Task Scheduler",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(task_logs.router)
    app.add_middleware(TrailingSlashMiddleware)
    return app
