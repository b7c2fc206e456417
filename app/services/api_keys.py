"""API keys: created with scopes and an optional expiry, shown once, stored as a SHA-256 hash,
revoked by id. `API_TOKEN` (or the generated token) stays the admin key."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.domain import Scope
from app.errors import NotFound
from app.models import ApiKey, utc_now

KEY_PREFIX = "isk_"
# last_used_at is written at most this often per key (every request would be a write).
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """Who is calling: the scopes granted, and the API key's id (None for API_TOKEN)."""

    scopes: frozenset[Scope]
    key_id: uuid.UUID | None = None

    def may(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


ADMIN_CALLER = Caller(scopes=frozenset({Scope.ADMIN}))


def hash_key(key: str) -> str:
    """What the database keeps of a key (a key has 256 random bits: no salt or stretching is
    needed to keep it from being guessed back)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    session: Session, *, name: str, scopes: list[Scope], expires_at: datetime | None
) -> tuple[ApiKey, str]:
    """A new key; the key itself is returned this once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=uuid.uuid4(),
        name=name,
        scopes=sorted({scope.value for scope in scopes}),
        key_hash=hash_key(key),
        expires_at=expires_at,
        created_at=utc_now(),
    )
    session.add(row)
    session.flush()
    return row, key


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)))


def get_key(session: Session, key_id: uuid.UUID) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("API key")
    return row


def revoke_key(session: Session, key_id: uuid.UUID) -> ApiKey:
    """Revoke a key: it is refused (401) from now on."""
    row = get_key(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = utc_now()
    session.flush()
    return row


def caller_for_key(factory: sessionmaker[Session], key: str) -> Caller | None:
    """The caller a key stands for, or None when it is unknown, revoked or expired. Notes its
    use (at most once a minute)."""
    now = utc_now()
    with transaction(factory) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        scopes = frozenset(Scope(s) for s in row.scopes if s in Scope._value2member_map_)
        return Caller(scopes=scopes, key_id=row.id)
