"""Task operations used by the API. Each takes the session and works inside its transaction."""

import json
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.delivery.discord import is_discord_webhook_url, validate_discord_payload
from app.delivery.guard import UnsafeTargetError, check_url_target
from app.delivery.signing import new_secret
from app.domain import DiscordMode, Trigger
from app.errors import Conflict, InvalidField, NotFound
from app.models import Occurrence, Task, utc_now
from app.scheduling.outgoing import PREVIOUS_SECRET_VALID
from app.scheduling.planner import next_run_after, upcoming_runs
from app.scheduling.schedules import localize_run_at, parse_timezone
from app.scheduling.store import cancel_pending
from app.scheduling.wakeup import request_wake
from app.schemas import UNREPRESENTABLE, TaskCreate, TaskUpdate
from app.services.pages import Cursor, after_cursor, count_rows, page_total
from app.templates import TemplateContext, TemplateError, check_payload_template, render_payload

PAUSED_REASON = "paused through the API"
# Changing one of these (or the status) moves the task's next fire time.
TIMING_FIELDS = frozenset({"schedule", "run_at", "timezone"})


def create_task(session: Session, *, data: TaskCreate, settings: Settings) -> Task:
    """Validate and store a new task with its first `next_run_at`."""
    fields = data.model_dump()
    fields["run_at"] = _localized_run_at(fields["run_at"], fields["timezone"])
    _check_task_fields(fields, settings=settings)
    now = utc_now()
    task = Task(id=uuid.uuid4(), created_at=now, updated_at=now, status_changed_at=now, **fields)
    if task.status == "inactive":
        task.status_reason = PAUSED_REASON
    task.next_run_at = next_run_after(task, after=now)
    session.add(task)
    session.flush()
    request_wake(session)
    return task


def get_task(session: Session, task_id: uuid.UUID, *, for_update: bool = False) -> Task:
    """The task with this id, or NotFound."""
    query = select(Task).where(Task.id == task_id)
    if for_update:
        query = query.with_for_update()
    task = session.scalars(query).one_or_none()
    if task is None:
        raise NotFound("Task")
    return task


def list_tasks(
    session: Session,
    *,
    skip: int,
    limit: int,
    status: str | None,
    search: str | None,
    cursor: Cursor | None = None,
) -> tuple[list[Task], int, bool]:
    """A page of tasks, newest first (ties by id), after `cursor` if given, and the number
    matching the filters (and whether that number is an estimate)."""
    query: Select[tuple[Task]] = select(Task)
    if status is not None:
        query = query.where(Task.status == status)
    if search:
        query = query.where(func.lower(Task.name).contains(search.lower(), autoescape=True))
    query = query.order_by(Task.created_at.desc(), Task.id.desc())
    paged = after_cursor(query, cursor, at=Task.created_at, row_id=Task.id)
    page = list(session.scalars(paged.offset(skip).limit(limit)))
    total, estimated = page_total(session, query, page, skip=skip, limit=limit, cursor=cursor)
    return page, total, estimated


def failing_tasks(session: Session, *, limit: int) -> tuple[list[Task], int, bool]:
    """Tasks whose last delivery failed, the most recent failure first, and how many there
    are (with whether that number is an estimate)."""
    failing = select(Task).where(Task.last_status == "failed")
    listed = failing.order_by(Task.created_at.desc(), Task.id.desc())  # the index's order
    total, estimated = count_rows(session, listed)
    recent = failing.order_by(Task.last_run_at.desc(), Task.id.desc()).limit(limit)
    return list(session.scalars(recent)), total, estimated


def update_task(
    session: Session, *, task_id: uuid.UUID, data: TaskUpdate, settings: Settings
) -> Task:
    """Apply a partial update; the schedule is recomputed when timing or status changes."""
    task = get_task(session, task_id, for_update=True)
    changes = data.model_dump(exclude_unset=True)
    # Giving one kind of timing replaces the other, so a recurring task can become one-time.
    if changes.get("schedule") is not None and "run_at" not in changes:
        changes["run_at"] = None
    if changes.get("run_at") is not None and "schedule" not in changes:
        changes["schedule"] = None
    if "run_at" in changes:
        timezone = changes.get("timezone", task.timezone)
        changes["run_at"] = _localized_run_at(changes["run_at"], timezone)
    merged = {column: getattr(task, column) for column in TaskCreate.model_fields} | changes
    _check_task_fields(merged, settings=settings)
    # Only real changes count: a client that PUTs the whole task back must not move a run
    # that is due (or reset a deactivation reason) by repeating the same values.
    changes = {column: value for column, value in changes.items() if getattr(task, column) != value}
    if not changes:
        return task
    status = changes.pop("status", None)
    for column, value in changes.items():
        setattr(task, column, value)
    _clear_ladder(session, task)
    if status is not None:
        _set_status(session, task, status)
    if status is not None or TIMING_FIELDS & changes.keys():
        task.next_run_at = next_run_after(task, after=utc_now())
        request_wake(session)
    task.updated_at = utc_now()
    session.flush()
    return task


def pause_task(session: Session, *, task_id: uuid.UUID) -> Task:
    """Make the task inactive: nothing more is sent on its schedule until it is resumed."""
    task = get_task(session, task_id, for_update=True)
    if task.status == "inactive" and task.resume_at is None:
        return task  # already stopped for good; keep the reason it has
    _set_status(session, task, "inactive")
    task.updated_at = utc_now()
    session.flush()
    return task


def resume_task(session: Session, *, task_id: uuid.UUID) -> Task:
    """Make the task active again, its next run computed from now."""
    task = get_task(session, task_id, for_update=True)
    if task.status == "active":
        return task  # nothing to resume; a due run keeps its time
    _set_status(session, task, "active")
    task.next_run_at = next_run_after(task, after=utc_now())
    task.updated_at = utc_now()
    session.flush()
    request_wake(session)
    return task


def execute_task(session: Session, *, task_id: uuid.UUID) -> Occurrence:
    """Queue a delivery now (trigger `manual`); the task's schedule does not move."""
    task = get_task(session, task_id)
    now = utc_now()
    occurrence = Occurrence(
        id=uuid.uuid4(),
        task_id=task.id,
        scheduled_for=now,
        trigger="manual",
        attempt=0,
        available_at=now,
        rate_limit_wait_seconds=0.0,
        created_at=now,
    )
    session.add(occurrence)
    session.flush()
    request_wake(session)
    return occurrence


def next_runs(session: Session, *, task_id: uuid.UUID, count: int) -> tuple[Task, list[datetime]]:
    """The task and its next `count` fire times from now (whatever its status)."""
    task = get_task(session, task_id)
    return task, upcoming_runs(task, after=utc_now(), count=count)


def _set_status(session: Session, task: Task, status: str) -> None:
    """The one place a task changes status through the API; the health ladder starts over."""
    if status == "active":
        _refuse_to_send_again(task)
    if task.status != status:
        task.status_changed_at = utc_now()
    task.status = status
    _clear_ladder(session, task)
    if status == "inactive":
        task.status_reason = PAUSED_REASON
        task.next_run_at = None
        cancel_pending(session, task_ids=[task.id], now=utc_now())
    else:
        task.status_reason = None


def _clear_ladder(session: Session, task: Task) -> None:
    """A user's change starts the health ladder over: no probe is due any more."""
    if task.resume_at is not None:
        cancel_pending(session, task_ids=[task.id], now=utc_now(), triggers=[Trigger.PROBE])
    task.resume_at, task.failures, task.failing_since = None, 0, None


def _refuse_to_send_again(task: Task) -> None:
    """A one-time task whose run was delivered is not sent again by making it active: its
    run_at is in the past, so it would fire at once. A new run_at is the way to send it again."""
    run_at, last_run_at = task.run_at, task.last_run_at
    if task.schedule is not None or run_at is None or last_run_at is None:
        return
    if task.last_status == "success" and run_at <= min(last_run_at, utc_now()):
        raise Conflict(
            "this one-time task was already delivered; give it a new run_at to send it again"
        )


def delete_task(session: Session, *, task_id: uuid.UUID) -> None:
    """Delete the task; its logs go with it (ON DELETE CASCADE)."""
    session.delete(get_task(session, task_id))
    session.flush()


def _localized_run_at(run_at: datetime | None, timezone: str) -> datetime | None:
    """`run_at` in UTC (read in `timezone` when it has no offset); InvalidField when it cannot
    be represented both in UTC and in the task's timezone."""
    if run_at is None:
        return None
    tz = parse_timezone(timezone)
    try:
        utc = localize_run_at(run_at, tz)
        utc.astimezone(tz)  # shown in the task's timezone by next-runs
    except OverflowError:
        raise InvalidField("run_at", f"{UNREPRESENTABLE} and in {timezone}") from None
    return utc


def _check_payload_size(payload: dict[str, Any], *, settings: Settings) -> None:
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    if size > settings.max_payload_bytes:
        raise InvalidField(
            "payload",
            f"{size} bytes as JSON; at most {settings.max_payload_bytes} (MAX_PAYLOAD_BYTES)",
        )


def _check_task_fields(fields: dict[str, Any], *, settings: Settings) -> None:
    """Checks that involve several fields or the settings; raises InvalidField."""
    _check_payload_size(fields["payload"], settings=settings)
    if fields["schedule"] is None and fields["run_at"] is None:
        raise InvalidField(
            "schedule", "give a schedule (cron, macro or @every) or a run_at for a one-time task"
        )
    if fields["schedule"] is not None and fields["run_at"] is not None:
        raise InvalidField("run_at", "give either a schedule or a run_at, not both")
    url = fields["webhook_url"]
    try:
        check_url_target(url, allow_private=settings.private_targets)
    except UnsafeTargetError as exc:
        raise InvalidField("webhook_url", str(exc)) from None
    if fields["template"]:
        problem = check_payload_template(fields["payload"])
        if problem is not None:
            raise InvalidField("payload", problem)
    if is_discord_webhook_url(url, settings.discord_hosts):
        _check_discord_payload(fields)
    else:
        _refuse_discord_only_fields(fields)


def _check_discord_payload(fields: dict[str, Any]) -> None:
    """Discord's limits, on the payload as it would be sent (a template rendered for a sample
    occurrence: its final length is checked again at send time)."""
    payload = fields["payload"]
    if fields["template"]:
        try:
            payload = render_payload(payload, sample_context(fields))
        except TemplateError as exc:
            raise InvalidField("payload", str(exc)) from None
    problems = validate_discord_payload(payload)
    if problems:
        raise InvalidField("payload", "; ".join(problems))


def _refuse_discord_only_fields(fields: dict[str, Any]) -> None:
    if fields["discord_mode"] != DiscordMode.POST:
        raise InvalidField("discord_mode", "only for Discord webhook URLs")
    if fields["delete_after_seconds"] is not None:
        raise InvalidField("delete_after_seconds", "only for Discord webhook URLs")


def sample_context(fields: dict[str, Any], *, scheduled_for: datetime | None = None) -> Any:
    """Template names for a preview (the next occurrence, or now): its first attempt."""
    at = scheduled_for or utc_now()
    return TemplateContext(
        task_id=fields.get("id") or uuid.UUID(int=0),
        task_name=fields["name"],
        timezone=fields["timezone"],
        scheduled_for=at,
        occurrence_id=uuid.UUID(int=0),
        attempt=1,
        run_number=(fields.get("runs") or 0) + 1,
        next_run_at=None,
    )


def rotate_signing_secret(
    session: Session, *, task_id: uuid.UUID, settings: Settings
) -> tuple[str, datetime | None]:
    """A new signing secret for the task, and until when the one it replaces still signs."""
    task = get_task(session, task_id, for_update=True)
    if is_discord_webhook_url(task.webhook_url, settings.discord_hosts):
        raise InvalidField("webhook_url", "deliveries to Discord are not signed")
    now = utc_now()
    task.previous_signing_secret = task.signing_secret
    task.signing_rotated_at = now if task.signing_secret else None
    task.signing_secret = new_secret()
    task.updated_at = now
    session.flush()
    valid_until = now + PREVIOUS_SECRET_VALID if task.previous_signing_secret else None
    return task.signing_secret, valid_until


def preview_task(session: Session, *, task_id: uuid.UUID) -> tuple[datetime | None, dict]:
    """The next occurrence's time (None: there is none) and the payload it would send."""
    task = get_task(session, task_id)
    upcoming = upcoming_runs(task, after=utc_now(), count=2)
    at = task.next_run_at or (upcoming[0] if upcoming else None)
    if not task.template:
        return at, task.payload
    fields = {column: getattr(task, column) for column in ("id", "name", "timezone", "runs")}
    context = sample_context(fields, scheduled_for=at)
    following = [t for t in upcoming if at is not None and t > at]
    context = replace(context, next_run_at=following[0] if following else None)
    try:
        return at, render_payload(task.payload, context)
    except TemplateError as exc:
        raise InvalidField("payload", str(exc)) from None
