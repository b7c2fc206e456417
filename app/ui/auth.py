"""Who is using the dashboard: the session cookie read and checked, the caller it stands for
(the API's `Caller`, with the same scopes), and the CSRF check of every posted form."""

import time
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.db import transaction
from app.domain import Scope
from app.models import ApiKey, utc_now
from app.redaction import redact
from app.services.api_keys import ADMIN_CALLER, KEY_PREFIX, Caller, caller_for_key
from app.tokens import tokens_match
from app.ui import session as cookies
from app.ui.errors import Refused, SignInRequired
from app.ui.session import SessionData, SessionKeys

MAX_FORM_FIELDS = 50
MAX_CREDENTIAL_CHARS = 200
FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Visitor:
    """The person at the browser: their session, and the caller it stands for (None: not
    signed in). Templates ask it what to show."""

    session: SessionData
    caller: Caller | None
    csrf: str

    @property
    def signed_in(self) -> bool:
        """Whether the session stands for a valid token or key."""
        return self.caller is not None

    def may(self, scope: Scope) -> bool:
        """Whether the caller's key grants `scope` (as the API decides)."""
        return self.caller is not None and self.caller.may(scope)

    def need(self, scope: Scope) -> None:
        """Refused (403) unless the caller has `scope`, in the API's words."""
        if not self.may(scope):
            raise Refused(403, f"This key lacks the scope {scope.value}.")

    @property
    def can_write(self) -> bool:
        """tasks:write: create, edit, run, pause, resume, delete."""
        return self.may(Scope.TASKS_WRITE)

    @property
    def can_read_tasks(self) -> bool:
        """tasks:read: the task pages."""
        return self.may(Scope.TASKS_READ)

    @property
    def can_read_logs(self) -> bool:
        """logs:read: the log pages and the attempts of a task."""
        return self.may(Scope.LOGS_READ)

    @property
    def label(self) -> str:
        """Who is signed in, in a few words."""
        if self.caller is None:
            return "not signed in"
        if self.caller.key_id is None:
            return "API token (admin)"
        scopes = ", ".join(sorted(scope.value for scope in self.caller.scopes)) or "no scopes"
        return f"API key ({scopes})"

    def shown_url(self, url: str) -> str:
        """A webhook URL as the API shows it to this caller: its secret hidden without
        tasks:write."""
        return url if self.can_write else redact(url)


@dataclass(frozen=True)
class Posted:
    """A form posted by a visitor, its CSRF token checked."""

    visitor: Visitor
    form: dict[str, str]


async def session_keys(request: Request) -> SessionKeys:
    """The dashboard's HMAC keys (the stored secret is read once per process)."""
    keys = getattr(request.app.state, "ui_session_keys", None)
    if keys is None:
        secret = await run_in_threadpool(cookies.load_secret, request.app.state.session_factory)
        keys = request.app.state.ui_session_keys = SessionKeys.derive(secret)
    return keys


async def current_visitor(request: Request) -> Visitor:
    """The visitor as the cookie shows them: signed in, or with a new sign-in session."""
    keys = await session_keys(request)
    data = cookies.decode_session(request.cookies.get(cookies.COOKIE_NAME), keys, now=time.time())
    caller = None
    if data is not None and data.sub is not None:
        caller = await _caller_for(request, data.sub, keys)
    if data is None or (data.sub is not None and caller is None):
        data = cookies.new_session(None, now=time.time())
    return Visitor(session=data, caller=caller, csrf=cookies.csrf_token(data, keys))


async def _caller_for(request: Request, sub: str, keys: SessionKeys) -> Caller | None:
    """The caller a session's `sub` stands for now, or None (token changed, key revoked)."""
    if sub.startswith(cookies.TOKEN_PREFIX):
        expected = cookies.token_principal(request.app.state.api_token, keys)
        return ADMIN_CALLER if tokens_match(sub, expected) else None
    if sub.startswith(cookies.KEY_PREFIX):
        factory = request.app.state.session_factory
        return await run_in_threadpool(caller_for_hash, factory, sub[len(cookies.KEY_PREFIX) :])
    return None


def caller_for_hash(factory: sessionmaker[Session], key_hash: str) -> Caller | None:
    """The caller for the API key with this hash, if it is still valid (as `caller_for_key`
    decides for the key itself)."""
    with transaction(factory) as session:
        row = session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= utc_now():
            return None
        scopes = frozenset(Scope(s) for s in row.scopes if s in Scope._value2member_map_)
        return Caller(scopes=scopes, key_id=row.id)


async def sign_in(request: Request, credential: str) -> str | None:
    """The session `sub` for a token or API key that the API would accept, else None."""
    credential = credential.strip()
    keys = await session_keys(request)
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        return None
    if tokens_match(credential, request.app.state.api_token):
        return cookies.token_principal(credential, keys)
    if credential.startswith(KEY_PREFIX):
        factory = request.app.state.session_factory
        if await run_in_threadpool(caller_for_key, factory, credential) is not None:
            return cookies.key_principal(credential)
    return None


async def signed_in(request: Request) -> Visitor:
    """Dependency of every page but sign-in: the visitor, or a redirect to sign in."""
    visitor = await current_visitor(request)
    if not visitor.signed_in:
        # Back to the page after signing in; a form post is not repeated (it needs a new token).
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(back if request.method == "GET" else "/ui")
    return visitor


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body as a dict (a repeated field keeps its last value); any other
    body is no form at all (so it carries no CSRF token and is refused with 403)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        return {}
    body = (await request.body()).decode("latin-1")
    try:
        pairs = parse_qsl(
            body, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict"
        )
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "This form could not be read.") from None
    return dict(pairs)


async def posted(request: Request) -> Posted:
    """Dependency of every form post but sign-in: a signed-in visitor and a form carrying
    their session's CSRF token (403 otherwise)."""
    visitor = await signed_in(request)
    form = await read_form(request)
    await check_csrf(request, visitor, form)
    return Posted(visitor=visitor, form=form)


async def check_csrf(request: Request, visitor: Visitor, form: dict[str, str]) -> None:
    """Refused (403) unless the form carries the session's CSRF token."""
    keys = await session_keys(request)
    if not cookies.csrf_matches(form.get("csrf_token"), visitor.session, keys):
        raise Refused(
            403,
            "This form has expired or did not come from this dashboard (its CSRF token is "
            "missing or wrong). Go back, reload the page and try again.",
        )


async def keep_session(request: Request, response: Response, data: SessionData) -> None:
    """Set the session cookie: HttpOnly, SameSite=Strict, only under /ui, Secure on https."""
    keys = await session_keys(request)
    response.set_cookie(
        cookies.COOKIE_NAME,
        cookies.encode_session(data, keys),
        max_age=max(0, data.exp - int(time.time())),
        path=cookies.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def end_session(response: Response) -> None:
    """Delete the session cookie."""
    response.delete_cookie(
        cookies.COOKIE_NAME, path=cookies.COOKIE_PATH, httponly=True, samesite="strict"
    )


VisitorDep = Annotated[Visitor, Depends(signed_in)]
PostedDep = Annotated[Posted, Depends(posted)]
