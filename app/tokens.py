"""The API token: from `API_TOKEN`, or generated once and kept in the database.

Keeping a generated token in the database (not in a file) means every replica sharing the database
accepts the same token and a restart reuses it. Comparison is constant-time.
"""

import logging
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import transaction
from app.models import ServiceSecret

logger = logging.getLogger(__name__)

API_TOKEN_SECRET = "api_token"  # noqa: S105 (the row's name, not a secret)
SHOW_TOKEN_COMMAND = "python main.py token"  # noqa: S105


def resolve_api_token(factory: sessionmaker[Session], settings: Settings) -> str:
    """The configured token, else the stored one, else a new random one (stored and announced)."""
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    stored = read_stored_token(factory)
    if stored is not None:
        return stored
    token = secrets.token_urlsafe(32)
    try:
        with transaction(factory) as session:
            session.add(ServiceSecret(name=API_TOKEN_SECRET, value=token))
    except IntegrityError:
        # Another replica stored one first; everyone uses that one.
        return read_stored_token(factory) or token
    logger.warning(
        "API_TOKEN is not set: generated a random API token and stored it in the database. "
        "Show it with: %s (or set API_TOKEN to choose your own)",
        SHOW_TOKEN_COMMAND,
    )
    return token


def read_stored_token(factory: sessionmaker[Session]) -> str | None:
    """The generated token kept in the database, if there is one."""
    with transaction(factory) as session:
        query = select(ServiceSecret.value).where(ServiceSecret.name == API_TOKEN_SECRET)
        return session.scalar(query)


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return secrets.compare_digest(given.encode(), expected.encode())
