"""Routes for /task-logs."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Authorized, SessionDep
from app.api.ids import parse_id
from app.api.tasks import Limit, Skip
from app.schemas import (
    LogStatus,
    Message,
    TaskLogCreate,
    TaskLogList,
    TaskLogRead,
    TaskLogUpdate,
    UTCDatetime,
)
from app.services import task_logs as service
from app.services.tasks import get_task

router = APIRouter(prefix="/task-logs", tags=["task-logs"], dependencies=[Authorized])

Since = Annotated[UTCDatetime | None, Query(description="execution_time at or after (ISO 8601)")]
Until = Annotated[UTCDatetime | None, Query(description="execution_time at or before (ISO 8601)")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskLogRead)
def create_log(data: TaskLogCreate, session: SessionDep):
    """Write a log row by hand; 404 if the task does not exist."""
    return service.create_log(session, data=data)


@router.get("", response_model=TaskLogList)
def list_logs(
    session: SessionDep,
    skip: Skip = 0,
    limit: Limit = 100,
    task_id: Annotated[uuid.UUID | None, Query(description="only this task's logs")] = None,
    status: LogStatus | None = None,
    since: Since = None,
    until: Until = None,
):
    """Logs, newest execution_time first (ties broken by id), with the total matching."""
    filters = service.LogFilters(task_id=task_id, status=status, since=since, until=until)
    logs, total = service.list_logs(session, filters=filters, skip=skip, limit=limit)
    return TaskLogList(task_logs=logs, total=total, skip=skip, limit=limit)


@router.get("/task/{task_id}", response_model=TaskLogList)
def list_task_logs(
    task_id: str,
    session: SessionDep,
    skip: Skip = 0,
    limit: Limit = 100,
    status: LogStatus | None = None,
    since: Since = None,
    until: Until = None,
):
    """One task's logs, same shape and filters as GET /task-logs; 404 if the task is unknown."""
    task = get_task(session, parse_id(task_id, "Task"))
    filters = service.LogFilters(task_id=task.id, status=status, since=since, until=until)
    logs, total = service.list_logs(session, filters=filters, skip=skip, limit=limit)
    return TaskLogList(task_logs=logs, total=total, skip=skip, limit=limit)


@router.get("/{log_id}", response_model=TaskLogRead)
def get_log(log_id: str, session: SessionDep):
    """One log row."""
    return service.get_log(session, parse_id(log_id, "Task log"))


@router.put("/{log_id}", response_model=TaskLogRead)
@router.patch("/{log_id}", response_model=TaskLogRead)
def update_log(log_id: str, data: TaskLogUpdate, session: SessionDep):
    """Partial update of a log row."""
    return service.update_log(session, log_id=parse_id(log_id, "Task log"), data=data)


@router.delete("/{log_id}", response_model=Message)
def delete_log(log_id: str, session: SessionDep):
    """Delete one log row."""
    service.delete_log(session, log_id=parse_id(log_id, "Task log"))
    return Message(message="Task log deleted successfully")
