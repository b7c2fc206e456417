"""Dependencies shared by the routes: the database session, the settings, the token check."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.config import Settings
from app.tokens import tokens_match

bearer_scheme = HTTPBearer(auto_error=False, description="the API_TOKEN")


def get_session(request: Request) -> Iterator[Session]:
    """One session and transaction per request, committed before the response is sent."""
    factory = request.app.state.session_factory
    with factory() as session, session.begin():
        yield session


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def require_token(
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
