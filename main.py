"""Run the service: `python main.py` (API + scheduler), or `python main.py token`."""

import sys

import uvicorn

from app.config import get_settings
from app.db import create_db_engine, create_session_factory
from app.logs import configure_logging
from app.migrations import upgrade_database
from app.tokens import read_stored_token


def show_token() -> int:
    """Print the API token the service uses (the configured one, or the generated one)."""
    settings = get_settings()
    if settings.api_token is not None:
        print(settings.api_token.get_secret_value())
        return 0
    upgrade_database(settings.sqlalchemy_url)
    engine = create_db_engine(settings.sqlalchemy_url)
    try:
        token = read_stored_token(create_session_factory(engine))
    finally:
        engine.dispose()
    if token is None:
        print(
            "No token yet: start the service once (python main.py) to generate one.",
            file=sys.stderr,
        )
        return 1
    print(token)
    return 0


def serve() -> int:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,  # the service writes its own access line, with route and request id
        proxy_headers=True,
        # Cloud Run kills 10 s after SIGTERM: 2 s for open requests, then the scheduler's
        # SHUTDOWN_GRACE_SECONDS (5) for deliveries and a short flush of their records.
        timeout_graceful_shutdown=2,
    )
    return 0


def main(argv: list[str]) -> int:
    if argv[1:] == ["token"]:
        return show_token()
    if len(argv) > 1:
        print("usage: python main.py [token]", file=sys.stderr)
        return 2
    return serve()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
