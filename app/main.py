"""The FastAPI application: `create_app()` builds it; its lifespan prepares the database."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__
from app.api import health, task_logs, tasks
from app.api.errors import install_error_handlers
from app.config import Settings, get_settings
from app.db import create_db_engine, create_session_factory
from app.migrations import upgrade_database
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


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for `settings` (read from the environment when not given)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_db_engine(settings.sqlalchemy_url)
        upgrade_database(settings.sqlalchemy_url)
        app.state.engine = engine
        app.state.session_factory = create_session_factory(engine)
        app.state.api_token = resolve_api_token(app.state.session_factory, settings)
        logger.info("service ready", extra={"database": engine.dialect.name})
        try:
            yield
        finally:
            engine.dispose()

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
