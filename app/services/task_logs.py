"""Task-log operations used by the API."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import TaskLog, utc_now
from app.schemas import TaskLogCreate, TaskLogUpdate
from app.services.pages import Cursor, after_cursor, page_total
from app.services.tasks import get_task

Q = TypeVar("Q", bound=Select[Any])


@dataclass(frozen=True, kw_only=True)
class LogFilters:
    """What `GET /task-logs` can filter on; `since`/`until` bound `execution_time` inclusively."""

    task_id: uuid.UUID | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def create_log(session: Session, *, data: TaskLogCreate) -> TaskLog:
    """Store a log row for an existing task (NotFound otherwise)."""
    get_task(session, data.task_id)
    fields = data.model_dump()
    now = utc_now()
    fields["execution_time"] = fields["execution_time"] or now
    log = TaskLog(id=uuid.uuid4(), created_at=now, **fields)
    session.add(log)
    session.flush()
    return log


def get_log(session: Session, log_id: uuid.UUID) -> TaskLog:
    """The log row with this id, or NotFound."""
    log = session.get(TaskLog, log_id)
    if log is None:
        raise NotFound("Task log")
    return log


def list_logs(
    session: Session, *, filters: LogFilters, skip: int, limit: int, cursor: Cursor | None = None
) -> tuple[list[TaskLog], int, bool]:
    """A page of logs, newest `execution_time` first (ties by id), after `cursor` if given,
    and the number of logs matching the filters (and whether that number is an estimate)."""
    query = _filtered(select(TaskLog), filters).order_by(
        TaskLog.execution_time.desc(), TaskLog.id.desc()
    )
    paged = after_cursor(query, cursor, at=TaskLog.execution_time, row_id=TaskLog.id)
    page = list(session.scalars(paged.offset(skip).limit(limit)))
    total, estimated = page_total(session, query, page, skip=skip, limit=limit, cursor=cursor)
    return page, total, estimated


def update_log(session: Session, *, log_id: uuid.UUID, data: TaskLogUpdate) -> TaskLog:
    """Apply a partial update to a log row."""
    log = get_log(session, log_id)
    for column, value in data.model_dump(exclude_unset=True).items():
        setattr(log, column, value)
    session.flush()
    return log


def delete_log(session: Session, *, log_id: uuid.UUID) -> None:
    """Delete one log row."""
    session.delete(get_log(session, log_id))
    session.flush()


def _filtered(query: Q, filters: LogFilters) -> Q:
    if filters.task_id is not None:
        query = query.where(TaskLog.task_id == filters.task_id)
    if filters.status is not None:
        query = query.where(TaskLog.status == filters.status)
    if filters.since is not None:
        query = query.where(TaskLog.execution_time >= filters.since)
    if filters.until is not None:
        query = query.where(TaskLog.execution_time <= filters.until)
    return query
