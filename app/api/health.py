"""Service info and health routes."""

from enum import StrEnum
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

from app import __version__
from app.api.deps import requires
from app.api.responses import UNAUTHORIZED


class ReadyStatus(StrEnum):
    READY = "ready"
    NOT_READY = "not ready"


class Readiness(BaseModel):
    """`checks` has `database` and `scheduler`: "ok", "off" (no loop here), or what is wrong."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "checks": {"database": "ok", "scheduler": "ok"}}]
        }
    )

    status: ReadyStatus
    checks: dict[str, str]


class ServiceInfo(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Insignia Task Scheduler",
                    "version": __version__,
                    "docs": "/docs",
                    "openapi": "/openapi.json",
                    "health": "/health",
                }
            ]
        }
    )

    name: str
    version: str
    docs: str
    openapi: str
    health: str


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "healthy"}]})

    status: Literal["healthy"]


class Liveness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "alive"}]})

    status: Literal["alive"]


router = APIRouter(tags=["health"])


@router.get("/", response_model=ServiceInfo)
def service_info():
    """Public: what this service is and where to look next."""
    return {
        "name": "Insignia Task Scheduler",
        "version": __version__,
        "docs": "/docs",
        "openapi": "/openapi.json",
        "health": "/health",
    }


@router.get("/health", dependencies=[requires()], responses=UNAUTHORIZED, response_model=Health)
def get_health():
    """Authenticated liveness check kept for Insignia clients."""
    return {"status": "healthy"}


@router.get("/livez", response_model=Liveness)
def livez():
    """Public: the process answers."""
    return {"status": "alive"}


@router.get(
    "/readyz",
    response_model=Readiness,
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
