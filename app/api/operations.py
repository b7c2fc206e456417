"""Operations routes: Prometheus metrics and the externally triggered scheduler pass."""

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.api.deps import requires
from app.api.responses import CONFLICT, PROTECTED
from app.domain import Scope
from app.scheduling.scheduler import SchedulerBusy

router = APIRouter(tags=["operations"])


class SchedulerPass(BaseModel):
    """What an external scheduler pass did."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "done", "claimed": 12, "unfinished": 0}]}
    )

    status: Literal["done"]
    claimed: int = Field(description="occurrences claimed and sent")
    unfinished: int = Field(description="deliveries still waiting for an answer at the end")


PROMETHEUS_TEXT = {
    200: {
        "description": "Prometheus text exposition format",
        "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
    }
}


@router.get("/metrics", response_class=Response, responses=PROMETHEUS_TEXT)
async def metrics(request: Request) -> Response:
    """Public: Prometheus text format (no task names, URLs or ids in labels)."""
    registry = request.app.state.metrics.exposition
    body = await run_in_threadpool(generate_latest, registry)  # the gauges read the database
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/scheduler/run",
    dependencies=[requires(Scope.ADMIN)],
    responses=PROTECTED | CONFLICT,
    response_model=SchedulerPass,
)
async def run_scheduler_pass(
    request: Request,
    max_seconds: Annotated[
        float, Query(gt=0, le=600, description="stop claiming after this long")
    ] = 50.0,
):
    """Claim and deliver everything due now, then answer. For deployments that run with
    SCHEDULER_ENABLED=false and call this every minute (Cloud Scheduler); a running loop makes
    it unnecessary but harmless. 409 on SQLite when another process owns the scheduler."""
    scheduler = request.app.state.scheduler
    busy = JSONResponse(
        {"detail": "another process runs the scheduler for this SQLite database"},
        status_code=409,
    )
    if not scheduler.may_schedule:
        return busy
    try:
        result = await scheduler.run_pass(max_seconds=max_seconds)
    except SchedulerBusy:
        return busy
    return {"status": "done", **result}
