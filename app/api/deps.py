"""Dependencies shared by the routes: the database session, the settings, the token check."""

from collections.abc import AsyncIterator, Callable
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings
from app.tokens import tokens_match

bearer_scheme = HTTPBearer(auto_error=False, description="the API_TOKEN")


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


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    """401 with `WWW-Authenticate: Bearer` unless the request carries the API token."""
    expected: str = request.app.state.api_token
    if credentials is None or not tokens_match(credentials.credentials, expected):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Invalid or missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


# scope="function": the transaction commits when the route returns, before the response leaves,
# so a client that reads right after a write sees it.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
Authorized = Depends(require_token)
