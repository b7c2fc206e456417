"""Dependencies shared by the routes: the database session, the settings, the token check."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.domain import Scope
from app.services.api_keys import ADMIN_CALLER, KEY_PREFIX, Caller, caller_for_key
from app.tokens import tokens_match

bearer_scheme = HTTPBearer(
    auto_error=False, description="API_TOKEN (admin), or an API key (`isk_…`) with its scopes"
)


# FastAPI runs each plain `def` dependency in a worker thread; on a busy 2-core machine each
# hop costs a good part of a millisecond, as much as a small request's own work. So dependencies
# that do no I/O are `async def`, and the session is opened on the event loop (no I/O until its
# first query, which runs in the route's thread); only its commit (I/O) goes to a thread.


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session and transaction per request, committed before the response is sent."""
    session: Session = request.app.state.session_factory()
    try:
        yield session
    except BaseException:
        # Shielded: a request cancelled mid-way (client gone) still returns its connection.
        with anyio.CancelScope(shield=True):
            await _in_own_thread(_roll_back, session)
        raise
    await _in_own_thread(_commit, session)


async def _in_own_thread(function: Callable[[Session], None], session: Session) -> None:
    """Run outside the shared worker-thread limit, as FastAPI does for the exit of a sync
    dependency: otherwise routes holding every worker thread while they wait for a pooled
    connection, and sessions waiting for a thread to hand theirs back, would stall each other."""
    await anyio.to_thread.run_sync(function, session, limiter=anyio.CapacityLimiter(1))


def _commit(session: Session) -> None:
    with session:
        session.commit()


def _roll_back(session: Session) -> None:
    with session:
        session.rollback()


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def authorize(
    request: Request,
    security_scopes: SecurityScopes,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Caller:
    """The caller, if its key grants the route's scope: 401 (with `WWW-Authenticate: Bearer`)
    for a missing, wrong, expired or revoked key; 403 naming the scope it lacks."""
    caller = await _caller(request, credentials)
    for name in security_scopes.scopes:
        if not caller.may(Scope(name)):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"this key lacks the scope {name}",
            )
    return caller


async def _caller(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
    given = credentials.credentials if credentials is not None else ""
    expected: str = request.app.state.api_token
    if given and tokens_match(given, expected):
        return ADMIN_CALLER
    caller = None
    if given.startswith(KEY_PREFIX) and len(given) <= MAX_KEY_LENGTH:
        factory = request.app.state.session_factory
        caller = await run_in_threadpool(caller_for_key, factory, given)
    if caller is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Invalid or missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return caller


def requires(scope: Scope | None = None) -> Any:
    """The dependency by which a route declares the scope it needs (None: any valid key);
    the OpenAPI document shows it in the route's security requirement."""
    return Security(authorize, scopes=[scope.value] if scope else [])


# scope="function": the transaction commits when the route returns, before the response leaves,
# so a client that reads right after a write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
MAX_KEY_LENGTH = 200
