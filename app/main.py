"""The FastAPI application: `create_app()` builds it; its lifespan prepares the database."""

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    contextmanager,
)
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from app import __version__, ui
from app.api import api_keys, health, operations, task_logs, tasks
from app.api.errors import install_error_handlers
from app.api.middleware import BodyLimitMiddleware, RequestContextMiddleware
from app.config import Settings, get_settings
from app.db import create_db_engine, create_session_factory
from app.delivery.client import create_http_client
from app.delivery.sender import Sender
from app.logs import configure_logging
from app.metrics import Metrics
from app.migrations import upgrade_database
from app.scheduling.scheduler import Scheduler
from app.scheduling.single import acquire_scheduler_lock, sqlite_database_path
from app.scheduling.wakeup import SqliteDoorbell, on_committed_wake
from app.tokens import resolve_api_token

logger = logging.getLogger(__name__)

DESCRIPTION = """
Schedule webhook notifications (Discord first of all): cron, interval or one-time tasks, delivered
with retries and a log row per attempt. Every route but `/`, `/livez`, `/readyz`, `/metrics` and the
docs needs `Authorization: Bearer <API_TOKEN>`.
"""

# What a browser on an allowed origin may send across origins.
CORS_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
CORS_MAX_AGE_SECONDS = 600


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
async def scheduler_for(
    engine: Engine, factory: sessionmaker[Session], settings: Settings, metrics: Metrics
) -> AsyncIterator[Scheduler]:
    """The process's scheduler. Its loop runs when SCHEDULER_ENABLED (and, on SQLite, when this
    process holds the database's scheduler lock); otherwise it only serves `run_pass` calls."""
    lock, may_schedule, pass_lock = _scheduler_lock(settings)
    sender = Sender(
        client=create_http_client(
            max_connections=settings.max_concurrent_deliveries,
            allow_private=settings.private_targets,
        ),
        timeout_seconds=settings.delivery_timeout_seconds,
        allow_private=settings.private_targets,
        discord_hosts=settings.discord_hosts,
    )
    scheduler = Scheduler(
        engine=engine,
        session_factory=factory,
        settings=settings,
        sender=sender,
        metrics=metrics,
        may_schedule=may_schedule,
        pass_lock=pass_lock,
    )
    looping = settings.scheduler_enabled and may_schedule
    await scheduler.start(run_loop=looping)
    doorbell = _wire_wakeups(factory, scheduler, settings, looping=looping)
    try:
        yield scheduler
    finally:
        if doorbell is not None:
            doorbell.close()
        await scheduler.stop()
        await sender.close()
        if lock is not None:
            lock.close()


def _wire_wakeups(
    factory: sessionmaker[Session], scheduler: Scheduler, settings: Settings, *, looping: bool
) -> SqliteDoorbell | None:
    """Wake schedulers after commits that move due work earlier: this process's, and on SQLite
    the one in whichever process runs it (its doorbell, returned when this process listens)."""
    database_file = sqlite_database_path(settings.sqlalchemy_url)
    doorbell = SqliteDoorbell(database_file) if database_file is not None else None
    if doorbell is None or (looping and doorbell.listen(scheduler.wake)):
        on_committed_wake(factory, scheduler.wake)
        return doorbell if looping else None

    def wake_everywhere() -> None:
        scheduler.wake()
        doorbell.ring()

    on_committed_wake(factory, wake_everywhere)
    return None


def _scheduler_lock(settings: Settings) -> tuple[Any, bool, Callable[[], Any] | None]:
    """On SQLite, one process at a time may run scheduler passes, by a lock file: the lock this
    process holds for its loop (None if none), whether it may run passes at all, and how to
    take the lock for one pass when it runs no loop. Elsewhere: (None, True, None)."""
    database_file = sqlite_database_path(settings.sqlalchemy_url)
    if database_file is None:
        return None, True, None
    if not settings.scheduler_enabled:
        # No loop here: an external pass (POST /scheduler/run) takes the lock for its length.
        return None, True, partial(acquire_scheduler_lock, database_file)
    lock = acquire_scheduler_lock(database_file)
    if lock is None:
        logger.warning(
            "another process runs the scheduler for this SQLite database; "
            "this process serves the API only",
            extra={"database_file": str(database_file)},
        )
    return lock, lock is not None, None


def prepare_database(settings: Settings, factory: sessionmaker[Session]) -> str:
    """Migrate the schema and settle the API token, waiting (with backoff, up to
    STARTUP_DATABASE_WAIT_SECONDS) for a database that is still starting; the API token."""
    retrying = Retrying(
        retry=retry_if_exception_type(OperationalError),
        wait=wait_exponential(multiplier=0.5, max=10),
        stop=stop_after_delay(settings.startup_database_wait_seconds),
        before_sleep=lambda state: logger.warning(
            "database not reachable yet; retrying",
            extra={"attempt": state.attempt_number},
        ),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            upgrade_database(settings.sqlalchemy_url)
            return resolve_api_token(factory, settings)
    raise AssertionError("unreachable")  # pragma: no cover


def _lifespan(
    settings: Settings, metrics: Metrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The app's lifespan: migrate, settle the token, run the scheduler, clean up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(settings.sqlalchemy_url)
        factory = create_session_factory(engine)
        try:
            app.state.api_token = await asyncio.to_thread(prepare_database, settings, factory)
        except BaseException:
            engine.dispose()
            raise
        app.state.engine = engine
        app.state.session_factory = factory
        metrics.watch_database(factory)
        async with AsyncExitStack() as stack:
            stack.callback(engine.dispose)
            app.state.scheduler = await stack.enter_async_context(
                scheduler_for(engine, factory, settings, metrics)
            )
            stack.enter_context(startup_objects_frozen())
            logger.info(
                "service ready",
                extra={
                    "database": engine.dialect.name,
                    "scheduler": "on" if app.state.scheduler.looping else "off",
                },
            )
            yield

    return lifespan


@contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """While the service runs, what starting it made (modules, routes, schemas, the engine:
    about 140,000 objects the cycle collector tracks) is out of that collector's reach. They
    live as long as the process, and each full collection walked them all: a pause of about
    90 ms on a 2-core machine, on whichever request or delivery was running; 1 ms now.
    Startup's own unreachable cycles (a few thousand objects) are frozen with the rest, once:
    collecting them first would cost every start a full collection (tests start hundreds in
    one process). Handed back to the collector when the service stops."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _operation_id(route: APIRoute) -> str:
    """Short operationIds (`create_task`, `list_task_logs`): the route function's name, unless
    the route names one itself (PATCH shares its function with PUT)."""
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (read from the environment when not given)."""
    settings = settings or get_settings()
    metrics = Metrics()

    # /docs and /redoc with their assets served by this process: they work offline.
    app = FastAPIOffline(
        title="Insignia Task Scheduler",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan(settings, metrics),
        redirect_slashes=False,
        generate_unique_id_function=_operation_id,
        static_url="/docs-assets",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(tasks.router)
    app.include_router(task_logs.router)
    app.include_router(operations.router)
    app.include_router(api_keys.router)
    app.include_router(ui.router)
    _add_middleware(app, settings, metrics)
    return app


def create_worker_app() -> FastAPI:
    """The application in one of several worker processes (WORKERS > 1): a fresh process,
    which sets up its own logging first."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def _add_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """The body size limit, CORS (when origins are allowed), request ids and access logs,
    trailing slashes."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes)
    # The last added runs first: paths are normalised before the request is timed and routed,
    # and CORS answers preflights (any path) before authentication could refuse them.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=["X-Request-ID"],
            allow_credentials=False,  # the dashboard's session cookie stays same-origin
            max_age=CORS_MAX_AGE_SECONDS,
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(TrailingSlashMiddleware)
