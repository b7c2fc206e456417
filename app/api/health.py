"""Service info and health routes."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from app import __version__
from app.api.deps import Authorized
from app.api.responses import UNAUTHORIZED


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


router = APIRouter(tags=["health"])


@router.get("/")
def service_info():
    """Public: what this service is and where to look next."""
    return {
        "name": "Insignia Task Scheduler",
        "version": __version__,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/health",
    }


@router.get("/health", dependencies=[Authorized], responses=UNAUTHORIZED)
def health():
    """Authenticated liveness check kept for Insignia clients."""
    return {"status": "healthy"}


@router.get("/livez")
def livez():
    """Public: the process answers."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    responses={
        200: {"model": Readiness, "description": "Ready"},
        503: {"model": Readiness, "description": "Not ready; `checks` says why"},
    },
)
def readyz(request: Request):
    """Public: 200 when `SELECT 1` succeeds and the scheduler loop (when it runs here) has a
    fresh heartbeat and reaches the database; 503 with the failing check otherwise."""
    checks: dict[str, str] = {}
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure to reach the database means not ready
        original = getattr(exc, "orig", None) or exc
        checks["database"] = f"unavailable: {type(original).__name__}"
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None and scheduler.looping:
        checks["scheduler"] = scheduler.health_problem() or "ok"
    else:
        checks["scheduler"] = "off"
    ready = all(value in ("ok", "off") for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
