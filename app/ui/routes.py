"""The dashboard's routes under /ui: thin, like the API's. Pages are GETs; every form POSTs
(with the session's CSRF token) and redirects (303) to the page that shows the result.

Reads and writes go through the services the API uses, with the API's scopes: tasks:read for
the task pages, logs:read for the logs, tasks:write for every change.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from app.api.ids import parse_id
from app.api.webhooks import verify_update_webhooks, verify_webhooks
from app.domain import Scope
from app.errors import Conflict, InvalidField, NotFound
from app.models import Task, utc_now
from app.schemas import TaskCreate, TaskUpdate
from app.services import tasks as service
from app.ui import forms, views
from app.ui.auth import (
    PostedDep,
    Visitor,
    VisitorDep,
    check_csrf,
    current_visitor,
    end_session,
    keep_session,
    read_form,
    sign_in,
)
from app.ui.errors import Refused
from app.ui.render import STATIC_DIR, UiRoute, redirect, render, safe_next
from app.ui.session import new_session

router = APIRouter(prefix="/ui", include_in_schema=False, route_class=UiRoute)

ASSETS = {"ui.css": "text/css", "icon.svg": "image/svg+xml"}
ASSET_MAX_AGE_SECONDS = 86_400
# What the page says after a form's redirect (`?done=`): fixed sentences, nothing echoed.
DONE = {
    "created": "Task created.",
    "saved": "Changes saved.",
    "queued": "Run queued: its attempt appears under Recent attempts in a moment (reload).",
    "paused": "Task paused: nothing is sent until you resume it.",
    "resumed": "Task resumed.",
    "deleted": "Task deleted.",
    "signed-out": "You are signed out.",
}
BAD_CREDENTIAL = "This is not a valid API token or API key (or the key was revoked or expired)."


@router.get("/static/{name}")
async def asset(name: str) -> Response:
    """The dashboard's stylesheet and icon (public, cached for a day)."""
    if name not in ASSETS:
        raise NotFound("File")
    headers = {"Cache-Control": f"public, max-age={ASSET_MAX_AGE_SECONDS}"}
    return FileResponse(STATIC_DIR / name, media_type=ASSETS[name], headers=headers)


@router.get("/login")
async def login_page(request: Request, next: str = "/ui", done: str = "") -> Response:
    """The sign-in form (an already signed-in visitor goes straight on)."""
    visitor = await current_visitor(request)
    if visitor.signed_in:
        return redirect(safe_next(next))
    context = {"visitor": visitor, "next": safe_next(next), "error": None}
    response = render(request, "login.html", context | {"flash": DONE.get(done)})
    await keep_session(request, response, visitor.session)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    """Sign in with the API token or an API key; a new session (and CSRF token) begins."""
    visitor = await current_visitor(request)
    form = await read_form(request)
    await check_csrf(request, visitor, form)
    sub = await sign_in(request, form.get("token", ""))
    if sub is None:
        context = {"visitor": visitor, "next": safe_next(form.get("next")), "error": BAD_CREDENTIAL}
        response = render(request, "login.html", context, status=401)
        await keep_session(request, response, visitor.session)
        return response
    response = redirect(safe_next(form.get("next")))
    await keep_session(request, response, new_session(sub, now=time.time()))
    return response


@router.post("/logout")
async def logout(posted: PostedDep) -> Response:
    """Sign out: the session cookie is deleted."""
    response = redirect("/ui/login?done=signed-out")
    end_session(response)
    return response


@router.get("")
async def overview(request: Request, visitor: VisitorDep) -> Response:
    """Tasks active, inactive and failing; attempts and failures in the last 24 h."""
    view = await views.in_transaction(request, views.overview, visitor=visitor, now=utc_now())
    return render(request, "overview.html", view | {"visitor": visitor, "section": "overview"})


@router.get("/tasks")
async def task_list(
    request: Request,
    visitor: VisitorDep,
    search: str = "",
    status: str = "",
    tag: str = "",
    cursor: str = "",
    done: str = "",
) -> Response:
    """Tasks, newest first: search by name, filter by status or tag, next page by cursor."""
    visitor.need(Scope.TASKS_READ)
    view = await views.in_transaction(
        request, views.task_list, search=search, status=status, tag=tag, cursor=cursor
    )
    filters = {"search": search, "status": status, "tag": tag}
    context = {"visitor": visitor, "section": "tasks"} | filters
    return render(request, "tasks.html", view | context | {"flash": DONE.get(done)})


@router.get("/tasks/new")
async def new_task_page(request: Request, visitor: VisitorDep) -> Response:
    """The form for a new task."""
    visitor.need(Scope.TASKS_WRITE)
    return _form_page(request, visitor, forms.blank_values(), task=None)


@router.post("/tasks/new")
async def create_task(request: Request, posted: PostedDep) -> Response:
    """Create the task, or show the form again with its errors (422) or its preview."""
    posted.visitor.need(Scope.TASKS_WRITE)
    values = forms.submitted_values(posted.form)
    if posted.form.get("action") == "preview":
        return _preview_page(request, posted.visitor, values, task=None)
    data, errors = forms.parse(TaskCreate, values, creating=True)
    task = None
    if data is not None:
        settings = request.app.state.settings
        checked = verify_webhooks(request, data.urls, fan_out=data.fan_out)
        task, errors = await _save(
            request, checked, service.create_task, data=data, settings=settings
        )
    if task is None:
        return _form_page(request, posted.visitor, values, task=None, errors=errors)
    return redirect(f"/ui/tasks/{task.id}?done=created")


@router.get("/tasks/{task_id}")
async def task_page(
    request: Request, task_id: str, visitor: VisitorDep, done: str = ""
) -> Response:
    """One task: its settings, next runs, recent attempts and what can be done with it."""
    visitor.need(Scope.TASKS_READ)
    view = await views.in_transaction(
        request,
        views.task_detail,
        task_id=parse_id(task_id, "Task"),
        visitor=visitor,
        now=utc_now(),
    )
    context = {"visitor": visitor, "section": "tasks", "flash": DONE.get(done)}
    return render(request, "task.html", view | context)


@router.get("/tasks/{task_id}/edit")
async def edit_page(request: Request, task_id: str, visitor: VisitorDep) -> Response:
    """The form that edits a task."""
    visitor.need(Scope.TASKS_WRITE)
    task = await views.in_transaction(request, service.get_task, parse_id(task_id, "Task"))
    return _form_page(request, visitor, forms.task_values(task), task=task)


@router.post("/tasks/{task_id}/edit")
async def edit_task(request: Request, task_id: str, posted: PostedDep) -> Response:
    """Save the changes (only what changed moves), or show the form with errors or preview."""
    posted.visitor.need(Scope.TASKS_WRITE)
    task = await views.in_transaction(request, service.get_task, parse_id(task_id, "Task"))
    values = forms.submitted_values(posted.form) | {"status": task.status}
    if posted.form.get("action") == "preview":
        return _preview_page(request, posted.visitor, values, task=task)
    data, errors = forms.parse(TaskUpdate, values, creating=False)
    if data is not None:
        checked = verify_update_webhooks(request, data, task)
        settings = request.app.state.settings
        _, errors = await _save(
            request, checked, service.update_task, task_id=task.id, data=data, settings=settings
        )
    if errors:
        return _form_page(request, posted.visitor, values, task=task, errors=errors)
    return redirect(f"/ui/tasks/{task.id}?done=saved")


@router.post("/tasks/{task_id}/run")
async def run_task(request: Request, task_id: str, posted: PostedDep) -> Response:
    """Deliver now (trigger `manual`); the schedule does not move."""
    return await _act(request, posted.visitor, task_id, service.execute_task, "queued")


@router.post("/tasks/{task_id}/pause")
async def pause_task(request: Request, task_id: str, posted: PostedDep) -> Response:
    """Make the task inactive."""
    return await _act(request, posted.visitor, task_id, service.pause_task, "paused")


@router.post("/tasks/{task_id}/resume")
async def resume_task(request: Request, task_id: str, posted: PostedDep) -> Response:
    """Make the task active; its next run is computed from now."""
    return await _act(request, posted.visitor, task_id, service.resume_task, "resumed")


@router.get("/tasks/{task_id}/delete")
async def delete_page(request: Request, task_id: str, visitor: VisitorDep) -> Response:
    """Ask before deleting."""
    visitor.need(Scope.TASKS_WRITE)
    task = await views.in_transaction(request, service.get_task, parse_id(task_id, "Task"))
    return render(request, "delete.html", {"visitor": visitor, "task": task, "section": "tasks"})


@router.post("/tasks/{task_id}/delete")
async def delete_task(request: Request, task_id: str, posted: PostedDep) -> Response:
    """Delete the task and its logs."""
    posted.visitor.need(Scope.TASKS_WRITE)
    the_id = parse_id(task_id, "Task")
    await views.in_transaction(request, service.delete_task, task_id=the_id)
    return redirect("/ui/tasks?done=deleted")


@router.get("/logs")
async def logs_page(
    request: Request,
    visitor: VisitorDep,
    task_id: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
    cursor: str = "",
) -> Response:
    """Attempts, newest first, with the filters of GET /task-logs; next page by cursor."""
    visitor.need(Scope.LOGS_READ)
    params = {"task_id": task_id, "status": status, "since": since, "until": until}
    filters, errors = forms.log_filters(params)
    view = await views.in_transaction(
        request, views.log_page, filters=filters, cursor=cursor, visitor=visitor
    )
    context = {"visitor": visitor, "section": "logs", "params": params, "errors": errors}
    context["filters"] = filters
    return render(request, "logs.html", view | context, status=422 if errors else 200)


async def _act(
    request: Request, visitor: Visitor, task_id: str, action: Callable[..., Any], done: str
) -> Response:
    """One of run / pause / resume on a task, then back to its page."""
    visitor.need(Scope.TASKS_WRITE)
    the_id = parse_id(task_id, "Task")
    try:
        await views.in_transaction(request, action, task_id=the_id)
    except Conflict as exc:
        raise Refused(409, str(exc).capitalize() + ".") from None
    return redirect(f"/ui/tasks/{the_id}?done={done}")


async def _save(
    request: Request, checked: Awaitable[None], work: Callable[..., Task], **kw: Any
) -> tuple[Task | None, dict[str, str]]:
    """Await the check of the new Discord webhooks (`verify_webhooks`, as the API does), then
    run `work`; the saved task, or the errors by input (the API's 422)."""
    try:
        await checked
        return await views.in_transaction(request, work, **kw), {}
    except InvalidField as exc:
        return None, forms.by_input({exc.field: exc.message})


def _form_page(
    request: Request,
    visitor: Visitor,
    values: dict[str, str],
    *,
    task: Task | None,
    errors: dict[str, str] | None = None,
    preview: forms.Preview | None = None,
) -> Response:
    """The create or edit form with its values, errors (422 when there are) and preview."""
    context = {
        "visitor": visitor,
        "section": "tasks",
        "task": task,
        "values": values,
        "errors": errors or {},
        "preview": preview,
        "timezones": forms.timezone_names(),
        "labels": forms.LABELS,
    }
    return render(request, "task_form.html", context, status=422 if errors else 200)


def _preview_page(
    request: Request, visitor: Visitor, values: dict[str, str], *, task: Task | None
) -> Response:
    """The form again with its next runs and rendered payload (nothing is saved)."""
    data, errors = forms.parse(TaskCreate, values, creating=True)
    preview = forms.preview(data, now=utc_now(), task=task) if data is not None else None
    return _form_page(request, visitor, values, task=task, errors=errors, preview=preview)
