"""Routes for /task-logs."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from app.api.deps import SessionDep, requires
from app.api.ids import parse_id
from app.api.responses import NOT_FOUND, PROTECTED, TOO_LARGE
from app.api.tasks import CursorParam, Limit, Skip
from app.domain import Scope
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
from app.services.pages import decode_cursor, next_cursor
from app.services.tasks import get_task

router = APIRouter(prefix="/task-logs", tags=["task-logs"], responses=PROTECTED)
READ = [requires(Scope.LOGS_READ)]
WRITE = [requires(Scope.LOGS_WRITE)]

Since = Annotated[UTCDatetime | None, Query(description="execution_time at or after (ISO 8601)")]
Until = Annotated[UTCDatetime | None, Query(description="execution_time at or before (ISO 8601)")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskLogRead,
    responses=NOT_FOUND | TOO_LARGE,
    dependencies=WRITE,
)
def create_task_log(data: TaskLogCreate, session: SessionDep):
    """Write a log row by hand; 404 if the task does not exist."""
    return service.create_log(session, data=data)


@router.get("", response_model=TaskLogList, dependencies=READ)
def list_task_logs(
    session: SessionDep,
    skip: Skip = 0,
    limit: Limit = 100,
    task_id: Annotated[uuid.UUID | None, Query(description="only this task's logs")] = None,
    status: LogStatus | None = None,
    since: Since = None,
    until: Until = None,
    cursor: CursorParam = None,
):
    """Logs, newest execution_time first (ties broken by id), with the total matching. For deep
    paging pass the previous page's `next_cursor` as `cursor` instead of a growing `skip`."""
    filters = service.LogFilters(task_id=task_id, status=status, since=since, until=until)
    return _page(session, filters, skip=skip, limit=limit, cursor=cursor)


@router.get("/task/{task_id}", responses=NOT_FOUND, response_model=TaskLogList, dependencies=READ)
def list_logs_of_task(
    task_id: str,
    session: SessionDep,
    skip: Skip = 0,
    limit: Limit = 100,
    status: LogStatus | None = None,
    since: Since = None,
    until: Until = None,
    cursor: CursorParam = None,
):
    """One task's logs, same shape and filters as GET /task-logs; 404 if the task is unknown."""
    task = get_task(session, parse_id(task_id, "Task"))
    filters = service.LogFilters(task_id=task.id, status=status, since=since, until=until)
    return _page(session, filters, skip=skip, limit=limit, cursor=cursor)


def _page(
    session: Session, filters: service.LogFilters, *, skip: int, limit: int, cursor: str | None
) -> TaskLogList:
    """One page of logs with its total and the cursor of the next page."""
    logs, total, estimated = service.list_logs(
        session, filters=filters, skip=skip, limit=limit, cursor=decode_cursor(cursor)
    )
    return TaskLogList(
        task_logs=logs,
        total=total,
        total_is_estimate=estimated,
        skip=skip,
        limit=limit,
        next_cursor=next_cursor(logs, limit, at="execution_time"),
    )


@router.get("/{log_id}", responses=NOT_FOUND, response_model=TaskLogRead, dependencies=READ)
def get_task_log(log_id: str, session: SessionDep):
    """One log row."""
    return service.get_log(session, parse_id(log_id, "Task log"))


@router.put(
    "/{log_id}", responses=NOT_FOUND | TOO_LARGE, response_model=TaskLogRead, dependencies=WRITE
)
@router.patch(
    "/{log_id}",
    responses=NOT_FOUND | TOO_LARGE,
    response_model=TaskLogRead,
    operation_id="patch_task_log",
    dependencies=WRITE,
)
def update_task_log(log_id: str, data: TaskLogUpdate, session: SessionDep):
    """Partial update of a log row."""
    return service.update_log(session, log_id=parse_id(log_id, "Task log"), data=data)


@router.delete("/{log_id}", responses=NOT_FOUND, response_model=Message, dependencies=WRITE)
def delete_task_log(log_id: str, session: SessionDep):
    """Delete one log row."""
    service.delete_log(session, log_id=parse_id(log_id, "Task log"))
    return Message(message="Task log deleted successfully")
