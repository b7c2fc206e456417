"""What each dashboard page shows, read in one transaction through the services the API uses,
as plain values for the templates. Each function takes the session first, like the services."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.db import transaction
from app.domain import LogStatus, TaskStatus
from app.errors import InvalidField, NotFound
from app.models import TaskLog
from app.schemas import MAX_TAG_LENGTH, task_targets
from app.services import tasks as task_service
from app.services.pages import decode_cursor, next_cursor
from app.services.task_logs import LogFilters, list_logs
from app.text import is_storable
from app.ui.auth import Visitor
from app.ui.words import task_schedules

T = TypeVar("T")

TASKS_PER_PAGE = 25
LOGS_PER_PAGE = 50
ATTEMPTS_SHOWN = 15
UPCOMING_SHOWN = 5
ATTENTION_SHOWN = 5
TASK_CHOICES = 200  # tasks offered by the log page's task filter
OVERVIEW_WINDOW = timedelta(hours=24)
MAX_SEARCH_CHARS = 200


@dataclass(frozen=True)
class Count:
    """A number of rows; `estimate` when it is the database's estimate (over 10,000)."""

    value: int
    estimate: bool = False

    def __str__(self) -> str:
        """The number as a page shows it: "1,234", "about 52,000"."""
        return f"about {self.value:,}" if self.estimate else f"{self.value:,}"


@dataclass(frozen=True)
class LogRow:
    """A log row with the name of its task (None: the caller may not read tasks, or gone)."""

    log: TaskLog
    task_name: str | None


async def in_transaction(request: Request, work: Callable[..., T], /, *args: Any, **kw: Any) -> T:
    """`work(session, *args, **kw)` in one transaction, in a worker thread."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return await run_in_threadpool(_run, factory, lambda session: work(session, *args, **kw))


def _run(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """`work(session)` in a transaction of its own."""
    with transaction(factory) as session:
        return work(session)


def overview(session: Session, *, visitor: Visitor, now: datetime) -> dict[str, Any]:
    """Tasks active / inactive / failing, attempts and failures in the last 24 h, and what
    needs attention: as much of it as the caller's scopes allow."""
    view: dict[str, Any] = {"counts": None, "window": None, "attention": [], "failures": []}
    if visitor.can_read_tasks:
        attention, failing, estimate = task_service.failing_tasks(session, limit=ATTENTION_SHOWN)
        view["counts"] = {
            "active": _task_count(session, TaskStatus.ACTIVE),
            "inactive": _task_count(session, TaskStatus.INACTIVE),
            "failing": Count(failing, estimate),
        }
        view["attention"] = attention
    if visitor.can_read_logs:
        since = (now - OVERVIEW_WINDOW).replace(second=0, microsecond=0)
        failed = LogFilters(since=since, status=LogStatus.FAILED)
        view["window"] = {
            "since": since,
            "attempts": _log_count(session, LogFilters(since=since)),
            "failed": _log_count(session, failed),
        }
        logs, _, _ = list_logs(session, filters=failed, skip=0, limit=ATTENTION_SHOWN)
        view["failures"] = _named(session, logs, visitor)
    return view


def _task_count(session: Session, status: TaskStatus) -> Count:
    """How many tasks have `status` (GET /tasks' total)."""
    _, total, estimate = task_service.list_tasks(
        session, skip=0, limit=1, status=status, search=None
    )
    return Count(total, estimate)


def _log_count(session: Session, filters: LogFilters) -> Count:
    """How many log rows match `filters` (GET /task-logs' total)."""
    _, total, estimate = list_logs(session, filters=filters, skip=0, limit=1)
    return Count(total, estimate)


def task_list(
    session: Session, *, search: str, status: str, tag: str, cursor: str
) -> dict[str, Any]:
    """A page of tasks (GET /tasks' search, status, tag and cursor), newest first. A search or
    tag holding what no task can (NUL, a lone surrogate) matches none."""
    if not (is_storable(search) and is_storable(tag)):
        return {"tasks": [], "total": Count(0), "next_cursor": None, "paged": False}
    chosen = status if status in TaskStatus._value2member_map_ else None
    try:
        after = decode_cursor(cursor or None)
    except InvalidField:
        after = None  # a cursor from an old link: start again at the first page
    tasks, total, estimate = task_service.list_tasks(
        session,
        skip=0,
        limit=TASKS_PER_PAGE,
        status=chosen,
        search=search[:MAX_SEARCH_CHARS] or None,
        tag=tag.strip()[:MAX_TAG_LENGTH] or None,
        cursor=after,
    )
    return {
        "tasks": tasks,
        "total": Count(total, estimate),
        "next_cursor": next_cursor(tasks, TASKS_PER_PAGE, at="created_at"),
        "paged": after is not None,
    }


def task_detail(
    session: Session, *, task_id: uuid.UUID, visitor: Visitor, now: datetime
) -> dict[str, Any]:
    """One task, its next runs, its recent attempts and (for a template, to a caller who may
    preview) the payload its next run would send."""
    task, fires = task_service.next_runs(session, task_id=task_id, count=UPCOMING_SHOWN)
    upcoming = [(fire.at, fire.kind.value) for fire in fires]
    view: dict[str, Any] = {"task": task, "upcoming": upcoming, "attempts": None}
    view |= {"schedules": task_schedules(task), "targets": task_targets(task)}
    view["preview"], view["preview_error"] = None, None
    if visitor.can_read_logs:
        logs, total, estimate = list_logs(
            session, filters=LogFilters(task_id=task.id), skip=0, limit=ATTEMPTS_SHOWN
        )
        view["attempts"], view["attempts_total"] = logs, Count(total, estimate)
    if task.template and visitor.can_write:
        try:
            view["preview"] = task_service.preview_task(session, task_id=task.id)[1]
        except InvalidField as exc:
            view["preview_error"] = exc.message
    return view


def log_page(
    session: Session, *, filters: LogFilters, cursor: str, visitor: Visitor
) -> dict[str, Any]:
    """A page of logs with GET /task-logs' filters, newest first, and the task filter's
    choices (when the caller may read tasks)."""
    try:
        after = decode_cursor(cursor or None)
    except InvalidField:
        after = None
    logs, total, estimate = list_logs(
        session, filters=filters, skip=0, limit=LOGS_PER_PAGE, cursor=after
    )
    choices = None
    if visitor.can_read_tasks:
        tasks, _, _ = task_service.list_tasks(
            session, skip=0, limit=TASK_CHOICES, status=None, search=None
        )
        choices = sorted(((task.name, str(task.id)) for task in tasks), key=lambda c: c[0].lower())
    return {
        "logs": _named(session, logs, visitor),
        "total": Count(total, estimate),
        "next_cursor": next_cursor(logs, LOGS_PER_PAGE, at="execution_time"),
        "paged": after is not None,
        "choices": choices,
    }


def _named(session: Session, logs: list[TaskLog], visitor: Visitor) -> list[LogRow]:
    """Log rows with their task's name, for a caller who may read tasks."""
    names: dict[uuid.UUID, str | None] = {}
    if visitor.can_read_tasks:
        for task_id in {log.task_id for log in logs}:
            try:
                names[task_id] = task_service.get_task(session, task_id).name
            except NotFound:
                names[task_id] = None
    return [LogRow(log, names.get(log.task_id)) for log in logs]
