"""Routes for /api-keys (admin only): create (the key shown once), list, get, revoke."""

from fastapi import APIRouter, status

from app.api.deps import SessionDep, requires
from app.api.ids import parse_id
from app.api.responses import NOT_FOUND, PROTECTED
from app.domain import Scope
from app.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyRead
from app.services import api_keys as service

router = APIRouter(
    prefix="/api-keys",
    tags=["api-keys"],
    dependencies=[requires(Scope.ADMIN)],
    responses=PROTECTED,
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(data: ApiKeyCreate, session: SessionDep):
    """A new key with its scopes; 201 with the key itself, shown only this once."""
    row, key = service.create_key(
        session, name=data.name, scopes=data.scopes, expires_at=data.expires_at
    )
    return ApiKeyCreated(**ApiKeyRead.model_validate(row).model_dump(), key=key)


@router.get("", response_model=ApiKeyList)
def list_api_keys(session: SessionDep):
    """Every key, newest first (never the keys themselves)."""
    return ApiKeyList(api_keys=service.list_keys(session))


@router.get("/{key_id}", responses=NOT_FOUND, response_model=ApiKeyRead)
def get_api_key(key_id: str, session: SessionDep):
    """One key."""
    return service.get_key(session, parse_id(key_id, "API key"))


@router.delete("/{key_id}", responses=NOT_FOUND, response_model=ApiKeyRead)
def revoke_api_key(key_id: str, session: SessionDep):
    """Revoke a key: from now on it is refused with 401."""
    return service.revoke_key(session, parse_id(key_id, "API key"))
