"""Task operations used by the API. Each takes the session and works inside its transaction."""

import copy
import json
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, exists, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.config import Settings
from app.delivery.discord import is_discord_webhook_url, validate_discord_payload
from app.delivery.guard import UnsafeTargetError, check_url_target
from app.delivery.signing import new_secret
from app.domain import DiscordMode, Trigger
from app.errors import Conflict, InvalidField, NotFound
from app.models import Occurrence, Task, utc_now
from app.scheduling.calendar import Calendar, CalendarError, Fire, parse_calendar
from app.scheduling.ladder import HEALTHY
from app.scheduling.outgoing import PREVIOUS_SECRET_VALID
from app.scheduling.planner import end_reason, is_recurring, next_run_after, upcoming_runs
from app.scheduling.schedules import localize_run_at, parse_timezone
from app.scheduling.store import cancel_pending
from app.scheduling.targets import TargetState, fresh_targets, read_targets
from app.scheduling.wakeup import request_wake
from app.schemas import MAX_NAME_LENGTH, UNREPRESENTABLE, TaskCreate, TaskUpdate
from app.services.pages import Cursor, after_cursor, count_rows, page_total
from app.templates import TemplateContext, TemplateError, check_payload_template, render_payload

PAUSED_REASON = "paused through the API"
# The forms of timing: a task has exactly one (giving one on update clears the others).
TIMING_FORMS = ("schedule", "schedules", "run_at")
# What only a recurring task has; a one-time task refuses them.
RECURRING_ONLY_FIELDS = ("start_at", "end_at", "max_runs", "exclude", "quiet_hours")
# Changing one of these (or the status) moves the task's next fire time.
TIMING_FIELDS = frozenset({*TIMING_FORMS, "timezone", *RECURRING_ONLY_FIELDS})
COPY_SUFFIX = " (copy)"
# What a clone takes over from its task; everything else starts afresh.
CLONED_FIELDS = (
    "schedule",
    "schedules",
    "run_at",
    "timezone",
    "catchup",
    "start_at",
    "end_at",
    "max_runs",
    "exclude",
    "quiet_hours",
    "webhook_url",
    "webhook_urls",
    "payload",
    "max_retry",
    "auto_resume",
    "template",
    "discord_mode",
    "delete_after_seconds",
    "tags",
)


def create_task(session: Session, *, data: TaskCreate, settings: Settings) -> Task:
    """Validate and store a new task with its first `next_run_at`; InvalidField for a
    recurring task that would never fire."""
    fields = {name: getattr(data, name) for name in TaskCreate.model_fields}
    fields["run_at"] = _localized_run_at(fields["run_at"], fields["timezone"])
    fields |= _webhook_columns(data.urls, fan_out=data.fan_out)
    fields["tags"] = fields["tags"] or None
    now = utc_now()
    calendar = _check_task_fields(fields, settings=settings, anchor=now)
    fields |= _bounds(calendar)
    _check_runs_left(fields, calendar, runs=0, now=now)
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
    tag: str | None = None,
) -> tuple[list[Task], int, bool]:
    """A page of tasks, newest first (ties by id), after `cursor` if given, and the number
    matching the filters (and whether that number is an estimate)."""
    query: Select[tuple[Task]] = select(Task)
    if status is not None:
        query = query.where(Task.status == status)
    if search:
        query = query.where(func.lower(Task.name).contains(search.lower(), autoescape=True))
    if tag:
        query = query.where(_has_tag(tag, dialect=session.get_bind().dialect.name))
    query = query.order_by(Task.created_at.desc(), Task.id.desc())
    paged = after_cursor(query, cursor, at=Task.created_at, row_id=Task.id)
    page = list(session.scalars(paged.offset(skip).limit(limit)))
    total, estimated = page_total(session, query, page, skip=skip, limit=limit, cursor=cursor)
    return page, total, estimated


def _has_tag(tag: str, *, dialect: str) -> Any:
    """The condition "the task has this tag": JSONB containment on PostgreSQL (the GIN index
    ix_tasks_tags), a scan of the JSON array elsewhere."""
    if dialect == "postgresql":
        return type_coerce(Task.tags, JSONB).contains([tag])
    elements = func.json_each(Task.tags).table_valued("value")
    return exists().select_from(elements).where(elements.c.value == tag)


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
    """Apply a partial update; the schedule is recomputed when timing or status changes.
    InvalidField when a change of timing, or making the task active, leaves no run."""
    task = get_task(session, task_id, for_update=True)
    changes = _requested_changes(task, data)
    merged = {column: getattr(task, column) for column in TaskCreate.model_fields} | changes
    calendar = _check_task_fields(merged, settings=settings, anchor=task.created_at)
    changes |= {name: at for name, at in _bounds(calendar).items() if name in changes}
    # Only real changes count: a client that PUTs the whole task back must not move a run
    # that is due (or reset a deactivation reason) by repeating the same values.
    changes = {column: value for column, value in changes.items() if getattr(task, column) != value}
    if not changes:
        return task
    if TIMING_FIELDS & changes.keys() or changes.get("status") == "active":
        _check_runs_left(merged, calendar, runs=task.runs or 0, now=utc_now())
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


def _requested_changes(task: Task, data: TaskUpdate) -> dict[str, Any]:
    """The columns an update sets, as they would be stored (before dropping the unchanged)."""
    changes = data.model_dump(exclude_unset=True)
    # Giving one form of timing replaces the others, so a recurring task can become one-time.
    for form in TIMING_FORMS:
        if changes.get(form) is not None:
            for other in TIMING_FORMS:
                changes.setdefault(other, None)
    if "run_at" in changes:
        timezone = changes.get("timezone", task.timezone)
        changes["run_at"] = _localized_run_at(changes["run_at"], timezone)
    if "tags" in changes:
        changes["tags"] = changes["tags"] or None
    return changes | _webhook_changes(task, changes)


def _webhook_changes(task: Task, changes: dict[str, Any]) -> dict[str, Any]:
    """The webhook columns an update sets (taking `webhook_url` and `webhook_urls` out of
    `changes`). `webhook_urls` equal to what the task shows, or its own first `webhook_url`
    given alone to a fan-out task, change nothing; null turns it into a one-webhook task."""
    url = changes.pop("webhook_url", None)
    if "webhook_urls" not in changes:
        if url is None or (task.webhook_urls and url == task.webhook_url):
            return {}
        return _webhook_columns([url], fan_out=False)
    urls = changes.pop("webhook_urls")
    if urls is None:
        return _webhook_columns([url or task.webhook_url], fan_out=False)
    if urls == (task.webhook_urls or [task.webhook_url]):
        return {}
    return _webhook_columns(urls, fan_out=url is None or len(urls) > 1)


def _webhook_columns(urls: list[str], *, fan_out: bool) -> dict[str, Any]:
    """How a task stores its webhooks: `webhook_url` is always the first; a fan-out task also
    keeps the list and a fresh state for each target."""
    if not fan_out:
        return {"webhook_url": urls[0], "webhook_urls": None, "targets": None}
    return {"webhook_url": urls[0], "webhook_urls": list(urls), "targets": fresh_targets(urls)}


def clone_task(session: Session, *, task_id: uuid.UUID) -> Task:
    """An inactive copy of the task named "<name> (copy)": its settings, none of its history
    (runs, last run, Discord message, signing secret, targets' states); NotFound if unknown."""
    original = get_task(session, task_id)
    now = utc_now()
    fields = {name: copy.deepcopy(getattr(original, name)) for name in CLONED_FIELDS}
    urls = original.webhook_urls
    task = Task(
        id=uuid.uuid4(),
        name=original.name[: MAX_NAME_LENGTH - len(COPY_SUFFIX)].rstrip() + COPY_SUFFIX,
        targets=fresh_targets(urls) if urls else None,
        status="inactive",
        status_reason=PAUSED_REASON,
        status_changed_at=now,
        next_run_at=None,
        runs=0,
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(task)
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
    """Make the task active again, its next run computed from now, and every webhook of a
    fan-out task with it (also when the task itself is active)."""
    task = get_task(session, task_id, for_update=True)
    if task.status == "active":
        # Nothing to resume but switched-off webhooks; a due run keeps its time.
        if _revive_targets(task):
            _clear_ladder(session, task)
            task.updated_at = utc_now()
            session.flush()
        return task
    _set_status(session, task, "active")
    task.next_run_at = next_run_after(task, after=utc_now())
    task.updated_at = utc_now()
    session.flush()
    request_wake(session)
    return task


def execute_task(session: Session, *, task_id: uuid.UUID) -> Occurrence:
    """Queue a delivery now (trigger `manual`) to each of the task's webhooks; the task's
    schedule does not move. The first webhook's occurrence is returned."""
    task = get_task(session, task_id)
    now = utc_now()
    occurrences = [
        Occurrence(
            id=uuid.uuid4(),
            task_id=task.id,
            target=target,
            scheduled_for=now,
            trigger="manual",
            attempt=0,
            available_at=now,
            rate_limit_wait_seconds=0.0,
            created_at=now,
        )
        for target in range(len(task.webhook_urls or [task.webhook_url]))
    ]
    session.add_all(occurrences)
    session.flush()
    request_wake(session)
    return occurrences[0]


def next_runs(session: Session, *, task_id: uuid.UUID, count: int) -> tuple[Task, list[Fire]]:
    """The task and its next `count` fires from now (whatever its status), each saying
    whether quiet hours make it silent or deferred."""
    task = get_task(session, task_id)
    return task, upcoming_runs(task, after=utc_now(), count=count)


def _set_status(session: Session, task: Task, status: str) -> None:
    """The one place a task changes status through the API; the health ladder starts over.
    Made active, every webhook of a fan-out task is on again."""
    if status == "active":
        _refuse_to_send_again(task)
        _refuse_to_resume_ended(task)
        _revive_targets(task)
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
    """A user's change starts the health ladder over, the task's and each webhook's: no probe
    is due any more."""
    states = read_targets(task.targets)
    if task.resume_at is not None or any(state.ladder.resume_at for state in states):
        cancel_pending(session, task_ids=[task.id], now=utc_now(), triggers=[Trigger.PROBE])
    task.resume_at, task.failures, task.failing_since = None, 0, None
    if any(state.ladder != HEALTHY for state in states):
        task.targets = [replace(state, ladder=HEALTHY).to_json() for state in states]


def _revive_targets(task: Task) -> bool:
    """Every webhook of a fan-out task on, with a healthy ladder (each keeps the Discord
    message it posted last); whether anything changed."""
    states = read_targets(task.targets)
    if all(state.active and state.ladder == HEALTHY for state in states):
        return False
    now = utc_now()
    task.targets = [
        TargetState(
            status_changed_at=state.status_changed_at if state.active else now,
            discord_message_id=state.discord_message_id,
        ).to_json()
        for state in states
    ]
    return True


def _refuse_to_resume_ended(task: Task) -> None:
    """A recurring task with no run left (past its end_at, its max_runs spent) is not made
    active: it would never fire. Conflict saying why."""
    if is_recurring(task) and not upcoming_runs(task, after=utc_now(), count=1):
        raise Conflict(
            f"this task has no run left ({end_reason(task)}); change its end_at, max_runs or "
            "schedule to run it again"
        )


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


def _check_task_fields(
    fields: dict[str, Any], *, settings: Settings, anchor: datetime
) -> Calendar | None:
    """Checks that involve several fields or the settings; raises InvalidField. The calendar
    of a recurring task (None for a one-time task)."""
    _check_payload_size(fields["payload"], settings=settings)
    _check_timing_form(fields)
    calendar = _checked_calendar(fields, anchor=anchor)
    urls = fields["webhook_urls"] or [fields["webhook_url"]]
    _check_targets(fields, settings=settings)
    if fields["template"]:
        problem = check_payload_template(fields["payload"])
        if problem is not None:
            raise InvalidField("payload", problem)
    if any(is_discord_webhook_url(url, settings.discord_hosts) for url in urls):
        _check_discord_payload(fields)
    else:
        _refuse_discord_only_fields(fields)
    return calendar


def _check_timing_form(fields: dict[str, Any]) -> None:
    """Exactly one of schedule, schedules and run_at; no recurring-only field on a one-time
    task."""
    schedule, schedules, run_at = (fields[form] for form in TIMING_FORMS)
    if schedule is not None and schedules is not None:
        raise InvalidField("schedules", "give either a schedule or schedules, not both")
    recurring = schedule is not None or schedules is not None
    if not recurring and run_at is None:
        raise InvalidField(
            "schedule", "give a schedule (cron, macro or @every) or a run_at for a one-time task"
        )
    if recurring and run_at is not None:
        raise InvalidField("run_at", "give either a schedule or a run_at, not both")
    for name in () if recurring else RECURRING_ONLY_FIELDS:
        if fields[name] not in (None, []):
            raise InvalidField(name, "only for recurring tasks (with a schedule)")


def _checked_calendar(fields: dict[str, Any], *, anchor: datetime) -> Calendar | None:
    """The calendar of a recurring task's timing fields (None for a one-time task);
    InvalidField naming the field that is wrong."""
    if fields["run_at"] is not None:
        return None
    try:
        return parse_calendar(
            fields["schedules"] or [fields["schedule"]],
            fields["timezone"],
            anchor=anchor,
            start_at=fields["start_at"],
            end_at=fields["end_at"],
            exclude=fields["exclude"],
            quiet_hours=fields["quiet_hours"],
        )
    except CalendarError as exc:
        name = exc.field.partition("[")[0].partition(".")[0]
        if name == "schedules" and fields["schedules"] is None:
            name = "schedule"
        raise InvalidField(name, exc.reason if exc.field == name else str(exc)) from None


def _bounds(calendar: Calendar | None) -> dict[str, datetime | None]:
    """start_at and end_at as they are stored (UTC), from a task's validated calendar."""
    if calendar is None:
        return {}
    return {"start_at": calendar.start_at, "end_at": calendar.end_at}


def _check_runs_left(
    fields: dict[str, Any], calendar: Calendar | None, *, runs: int, now: datetime
) -> None:
    """InvalidField when a recurring task would never fire again: its max_runs spent, its
    end_at passed, or its rules leaving no run."""
    if calendar is None:
        return
    max_runs = fields["max_runs"]
    if max_runs is not None and runs >= max_runs:
        raise InvalidField("max_runs", f"the task has fired {runs} runs already")
    if calendar.next_fire(now) is not None:
        return
    if calendar.end_at is not None:
        raise InvalidField("end_at", f"no run left before end_at ({calendar.end_at.isoformat()})")
    field = "schedule" if fields["schedules"] is None else "schedules"
    raise InvalidField(field, "no run left: the exclusions and quiet hours leave none")


def _check_targets(fields: dict[str, Any], *, settings: Settings) -> None:
    """Every webhook may be sent to under ALLOW_PRIVATE_WEBHOOK_TARGETS; InvalidField naming
    `webhook_url`, or the place in `webhook_urls`."""
    urls = fields["webhook_urls"]
    for index, url in enumerate(urls or [fields["webhook_url"]]):
        try:
            check_url_target(url, allow_private=settings.private_targets)
        except UnsafeTargetError as exc:
            if urls is None:
                raise InvalidField("webhook_url", str(exc)) from None
            raise InvalidField("webhook_urls", f"webhook_urls[{index}]: {exc}") from None


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
    upcoming = [fire.at for fire in upcoming_runs(task, after=utc_now(), count=2)]
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
