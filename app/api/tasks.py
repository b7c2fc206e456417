"""Routes for /tasks."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.deps import Authorized, SessionDep, SettingsDep
from app.api.ids import parse_id
from app.schemas import Message, TaskCreate, TaskList, TaskRead, TaskStatus, TaskUpdate
from app.services import tasks as service

router = APIRouter(prefix="/tasks", tags=["tasks"], dependencies=[Authorized])

Skip = Annotated[int, Query(ge=0, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows to return (1-1000)")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TaskRead)
def create_task(data: TaskCreate, session: SessionDep, settings: SettingsDep):
    """Create a task; 201 with the task and its first `next_run_at`."""
    return service.create_task(session, data=data, settings=settings)


@router.get("", response_model=TaskList)
def list_tasks(
    session: SessionDep,
    skip: Skip = 0,
    limit: Limit = 100,
    status: TaskStatus | None = None,
    search: Annotated[str | None, Query(max_length=200, description="part of the name")] = None,
):
    """Tasks, newest first (ties broken by id), with the total matching the filters."""
    tasks, total = service.list_tasks(session, skip=skip, limit=limit, status=status, search=search)
    return TaskList(tasks=tasks, total=total, skip=skip, limit=limit)


@router.get("/{task_id}", response_model=TaskRead)
def get_task(task_id: str, session: SessionDep):
    """One task."""
    return service.get_task(session, parse_id(task_id, "Task"))


@router.put("/{task_id}", response_model=TaskRead)
@router.patch("/{task_id}", response_model=TaskRead, include_in_schema=True)
def update_task(task_id: str, data: TaskUpdate, session: SessionDep, settings: SettingsDep):
    """Partial update: only the fields given change; an explicit null on a required one is 422."""
    return service.update_task(
        session, task_id=parse_id(task_id, "Task"), data=data, settings=settings
    )


@router.delete("/{task_id}", response_model=Message)
def delete_task(task_id: str, session: SessionDep):
    """Delete a task and its logs."""
    service.delete_task(session, task_id=parse_id(task_id, "Task"))
    return Message(message="Task deleted successfully")
