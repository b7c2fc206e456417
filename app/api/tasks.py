"""Routes for /tasks."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from starlette.concurrency import run_in_threadpool

from app.api.deps import SessionDep, SettingsDep, requires
from app.api.ids import parse_id
from app.api.responses import ALREADY_DELIVERED, NOT_FOUND, PROTECTED, TOO_LARGE
from app.api.webhooks import verify_update_webhooks, verify_webhooks
from app.domain import Scope
from app.redaction import redact
from app.scheduling.schedules import parse_timezone
from app.schemas import (
    MAX_TAG_LENGTH,
    ExecuteAccepted,
    Message,
    NextRun,
    NextRuns,
    Preview,
    SigningSecret,
    TaskCreate,
    TaskList,
    TaskRead,
    TaskStatus,
    TaskUpdate,
    Text,
)
from app.services import tasks as service
from app.services.api_keys import Caller
from app.services.pages import decode_cursor, next_cursor

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=PROTECTED)
# The scope each route needs: reads see webhook URLs with their secret part hidden unless the
# key may also write (tasks:write), as the writes return them whole.
Reader = Annotated[Caller, requires(Scope.TASKS_READ)]
WRITE = [requires(Scope.TASKS_WRITE)]

MAX_SKIP = 1_000_000_000
CursorParam = Annotated[
    str | None,
    Query(max_length=200, description="`next_cursor` of the previous page (keyset paging)"),
]
Skip = Annotated[int, Query(ge=0, le=MAX_SKIP, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows to return (1-1000)")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=TOO_LARGE,
    dependencies=WRITE,
)
async def create_task(
    data: TaskCreate, session: SessionDep, settings: SettingsDep, request: Request
):
    """Create a task; 201 with the task and its first `next_run_at`. Discord webhooks are
    checked first (VERIFY_DISCORD_WEBHOOKS): one that does not exist is 422."""
    await verify_webhooks(request, data.urls, fan_out=data.fan_out)
    return await run_in_threadpool(service.create_task, session, data=data, settings=settings)


@router.get("", response_model=TaskList)
def list_tasks(
    session: SessionDep,
    caller: Reader,
    skip: Skip = 0,
    limit: Limit = 100,
    status: TaskStatus | None = None,
    search: Annotated[Text | None, Query(max_length=200, description="part of the name")] = None,
    tag: Annotated[
        Text | None,
        Query(max_length=MAX_TAG_LENGTH, description="only tasks with this tag (empty: all)"),
    ] = None,
    cursor: CursorParam = None,
):
    """Tasks, newest first (ties broken by id), with the total matching the filters. For deep
    paging pass the previous page's `next_cursor` as `cursor` instead of a growing `skip`."""
    tasks, total, estimated = service.list_tasks(
        session,
        skip=skip,
        limit=limit,
        status=status,
        search=search,
        tag=None if tag is None else tag.strip(),
        cursor=decode_cursor(cursor),
    )
    return TaskList(
        tasks=[shown(task, caller) for task in tasks],
        total=total,
        total_is_estimate=estimated,
        skip=skip,
        limit=limit,
        next_cursor=next_cursor(tasks, limit, at="created_at"),
    )


@router.get("/{task_id}", responses=NOT_FOUND, response_model=TaskRead)
def get_task(task_id: str, session: SessionDep, caller: Reader):
    """One task."""
    return shown(service.get_task(session, parse_id(task_id, "Task")), caller)


@router.put(
    "/{task_id}",
    responses=NOT_FOUND | ALREADY_DELIVERED | TOO_LARGE,
    response_model=TaskRead,
    dependencies=WRITE,
)
@router.patch(
    "/{task_id}",
    responses=NOT_FOUND | ALREADY_DELIVERED | TOO_LARGE,
    response_model=TaskRead,
    operation_id="patch_task",
    dependencies=WRITE,
)
async def update_task(
    task_id: str, data: TaskUpdate, session: SessionDep, settings: SettingsDep, request: Request
):
    """Partial update: only the fields given change; an explicit null on a required one is 422.
    New Discord webhook URLs are checked as on create."""
    the_id = parse_id(task_id, "Task")
    if data.given_urls:
        current = await run_in_threadpool(service.get_task, session, the_id)
        await verify_update_webhooks(request, data, current)
    return await run_in_threadpool(
        service.update_task, session, task_id=the_id, data=data, settings=settings
    )


@router.post(
    "/{task_id}/clone",
    status_code=status.HTTP_201_CREATED,
    response_model=TaskRead,
    responses=NOT_FOUND,
    dependencies=WRITE,
)
def clone_task(task_id: str, session: SessionDep):
    """A copy of the task, inactive and named "<name> (copy)": its schedule, webhooks,
    payload and settings, but not its history (runs, last run, Discord message) nor its
    signing secret. 201 with the copy."""
    return service.clone_task(session, task_id=parse_id(task_id, "Task"))


@router.delete("/{task_id}", responses=NOT_FOUND, response_model=Message, dependencies=WRITE)
def delete_task(task_id: str, session: SessionDep):
    """Delete a task and its logs."""
    service.delete_task(session, task_id=parse_id(task_id, "Task"))
    return Message(message="Task deleted successfully")


@router.post(
    "/{task_id}/execute",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ExecuteAccepted,
    responses=NOT_FOUND,
    dependencies=WRITE,
)
def execute_task(task_id: str, session: SessionDep):
    """Deliver the task now (trigger `manual`), also when it is inactive; the schedule does
    not move. 202: the delivery is queued and its outcome appears in the task's logs."""
    occurrence = service.execute_task(session, task_id=parse_id(task_id, "Task"))
    return ExecuteAccepted(
        message="Task queued for execution",
        task_id=occurrence.task_id,
        occurrence_id=occurrence.id,
        scheduled_for=occurrence.scheduled_for,
    )


@router.post("/{task_id}/pause", responses=NOT_FOUND, response_model=TaskRead, dependencies=WRITE)
def pause_task(task_id: str, session: SessionDep):
    """Make the task inactive; retries waiting on its schedule are dropped."""
    return service.pause_task(session, task_id=parse_id(task_id, "Task"))


@router.post(
    "/{task_id}/resume",
    responses=NOT_FOUND | ALREADY_DELIVERED,
    response_model=TaskRead,
    dependencies=WRITE,
)
def resume_task(task_id: str, session: SessionDep):
    """Make the task active; its next run is computed from now (runs missed while paused are
    not caught up). A one-time task whose run_at has passed runs at once."""
    return service.resume_task(session, task_id=parse_id(task_id, "Task"))


@router.post(
    "/{task_id}/signing-secret",
    responses=NOT_FOUND,
    response_model=SigningSecret,
    dependencies=WRITE,
)
def rotate_signing_secret(task_id: str, session: SessionDep, settings: SettingsDep):
    """A new signing secret for the task's deliveries (Standard Webhooks), shown this once; the
    one it replaces keeps signing alongside it for 24 hours."""
    secret, valid_until = service.rotate_signing_secret(
        session, task_id=parse_id(task_id, "Task"), settings=settings
    )
    return SigningSecret(signing_secret=secret, previous_valid_until=valid_until)


@router.post("/{task_id}/preview", responses=NOT_FOUND, response_model=Preview, dependencies=WRITE)
def preview_task(task_id: str, session: SessionDep):
    """The payload as the next occurrence would send it (a template rendered for it)."""
    at, payload = service.preview_task(session, task_id=parse_id(task_id, "Task"))
    return Preview(scheduled_for=at, payload=payload)


@router.get("/{task_id}/next-runs", responses=NOT_FOUND, response_model=NextRuns)
def list_next_runs(
    task_id: str,
    session: SessionDep,
    _caller: Reader,
    count: Annotated[int, Query(ge=1, le=100, description="how many (1-100)")] = 5,
):
    """The next fire times from now, in UTC and in the task's timezone, with what its quiet
    hours make of each (silent, or deferred from its due time); within start_at, end_at and
    the runs max_runs leaves."""
    task, fires = service.next_runs(session, task_id=parse_id(task_id, "Task"), count=count)
    tz = parse_timezone(task.timezone)
    return NextRuns(
        task_id=task.id,
        timezone=task.timezone,
        next_runs=[
            NextRun(
                utc=fire.at,
                local=fire.at.astimezone(tz),
                kind=fire.kind,
                deferred_from=fire.deferred_from,
            )
            for fire in fires
        ],
    )


def shown(task: object, caller: Caller) -> TaskRead:
    """The task as this caller may see it: the webhook URLs' secret parts hidden from a key
    without tasks:write."""
    read = TaskRead.model_validate(task)
    if caller.may(Scope.TASKS_WRITE):
        return read
    targets = [target.model_copy(update={"url": redact(target.url)}) for target in read.targets]
    hidden = {
        "webhook_url": redact(read.webhook_url),
        "webhook_urls": [redact(url) for url in read.webhook_urls],
        "targets": targets,
    }
    return read.model_copy(update=hidden)
