"""The dashboard's session cookie and CSRF tokens.

The cookie holds no credential. It is `base64url(JSON).base64url(HMAC-SHA256)` of:

* `sid`: random, new at each sign-in; the session's CSRF token is an HMAC of it;
* `sub`: who signed in, as something only the server can check and nobody can turn back into
  the credential: `token:<HMAC of the API token>` (a changed API_TOKEN ends those sessions) or
  `key:<SHA-256 of the API key>`, which is how the database stores keys (a revoked or expired
  key ends its sessions at the next request); null before sign-in (the sign-in form's session);
* `exp`: when it stops being accepted (unix seconds).

The HMAC keys derive from one random secret generated once and kept in the `service_secrets`
table (row `ui_session_key`), so every replica accepts every replica's cookies and a restart
signs nobody out. Sign-out deletes the cookie; there is no server-side list of sessions.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.models import ServiceSecret
from app.services.api_keys import hash_key

COOKIE_NAME = "insignia_session"
COOKIE_PATH = "/ui"
SESSION_SECONDS = 12 * 3600
SECRET_NAME = "ui_session_key"  # noqa: S105 (the row's name, not a secret)
MAX_COOKIE_CHARS = 1024
TOKEN_PREFIX = "token:"  # noqa: S105
KEY_PREFIX = "key:"


@dataclass(frozen=True)
class SessionKeys:
    """The HMAC keys of the dashboard, each for one purpose."""

    signing: bytes
    csrf: bytes
    principal: bytes

    @classmethod
    def derive(cls, secret: bytes) -> "SessionKeys":
        """Separate keys from the one stored secret."""

        def key(purpose: bytes) -> bytes:
            """The key for one purpose."""
            return hmac.new(secret, b"insignia-ui/" + purpose, hashlib.sha256).digest()

        return cls(signing=key(b"session"), csrf=key(b"csrf"), principal=key(b"principal"))


@dataclass(frozen=True)
class SessionData:
    """What the cookie says: the session's id, who signed in (None: nobody yet), its end."""

    sid: str
    sub: str | None
    exp: int


def new_session(sub: str | None, *, now: float) -> SessionData:
    """A fresh session (a new id, so a new CSRF token) lasting SESSION_SECONDS from `now`."""
    return SessionData(sid=secrets.token_urlsafe(18), sub=sub, exp=int(now) + SESSION_SECONDS)


def encode_session(data: SessionData, keys: SessionKeys) -> str:
    """The cookie value for `data`."""
    body = json.dumps({"sid": data.sid, "sub": data.sub, "exp": data.exp}, separators=(",", ":"))
    encoded = _b64(body.encode())
    return f"{encoded}.{_b64(_mac(keys.signing, encoded))}"


def decode_session(value: str | None, keys: SessionKeys, *, now: float) -> SessionData | None:
    """The session a cookie value holds, or None if it is missing, forged, altered or over."""
    if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
        return None
    encoded, signature = value.split(".")
    if not hmac.compare_digest(_b64(_mac(keys.signing, encoded)), signature):
        return None
    try:
        fields = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        data = SessionData(sid=str(fields["sid"]), sub=fields["sub"], exp=int(fields["exp"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if data.exp <= now or (data.sub is not None and not isinstance(data.sub, str)):
        return None
    return data


def csrf_token(data: SessionData, keys: SessionKeys) -> str:
    """The token every form of this session carries."""
    return _b64(_mac(keys.csrf, data.sid))


def csrf_matches(given: str | None, data: SessionData, keys: SessionKeys) -> bool:
    """Whether a form's token is this session's (constant time)."""
    return bool(given) and hmac.compare_digest(str(given), csrf_token(data, keys))


def token_principal(token: str, keys: SessionKeys) -> str:
    """`sub` for a session opened with the API token: an HMAC of it, not guessable offline."""
    return TOKEN_PREFIX + hmac.new(keys.principal, token.encode(), hashlib.sha256).hexdigest()


def key_principal(key: str) -> str:
    """`sub` for a session opened with an API key: the hash the database keeps of it."""
    return KEY_PREFIX + hash_key(key)


def _mac(key: bytes, text: str) -> bytes:
    """HMAC-SHA256 of `text` under `key`."""
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    """Unpadded base64url, safe in a cookie and a form field."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def load_secret(factory: sessionmaker[Session]) -> bytes:
    """The dashboard's stored secret, generated and stored the first time (the first replica
    to store one wins; the others read it)."""
    stored = _read_secret(factory)
    if stored is not None:
        return stored.encode()
    value = secrets.token_urlsafe(32)
    try:
        with transaction(factory) as session:
            session.add(ServiceSecret(name=SECRET_NAME, value=value))
    except IntegrityError:
        return (_read_secret(factory) or value).encode()
    return value.encode()


def _read_secret(factory: sessionmaker[Session]) -> str | None:
    """The stored secret, if one was stored."""
    with transaction(factory) as session:
        return session.scalar(select(ServiceSecret.value).where(ServiceSecret.name == SECRET_NAME))
