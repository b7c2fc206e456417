"""The task form and the log filters: what the inputs show, what they mean as the API's fields
(validated by the API's own schemas, errors keyed by the API's field names), and the form's
previews (the next runs, the rendered payload of a template)."""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar
from zoneinfo import available_timezones

from pydantic import BaseModel, ValidationError

from app.api.errors import plain_errors
from app.domain import LogStatus
from app.models import Task
from app.scheduling.planner import upcoming_runs
from app.scheduling.schedules import ScheduleError, localize_run_at, parse_timezone
from app.services.task_logs import LogFilters
from app.services.tasks import RECURRING_ONLY_FIELDS, sample_context
from app.templates import TemplateError, render_payload
from app.ui.words import task_schedules

M = TypeVar("M", bound=BaseModel)

# The form's inputs: the API's field names, plus `kind` (recurring or one-time).
INPUTS = (
    "name",
    "kind",
    "schedule",
    "run_at",
    "timezone",
    "catchup",
    "webhook_url",
    "payload",
    "max_retry",
    "template",
    "auto_resume",
    "status",
    "discord_mode",
    "delete_after_seconds",
    "start_at",
    "end_at",
    "max_runs",
    "exclude",
    "quiet_from",
    "quiet_to",
    "quiet_mode",
    "tags",
)
CHECKBOXES = ("template", "auto_resume")
RECURRING, ONCE = "schedule", "once"
# Two inputs take one entry per line: one line is the API's one-entry field, several its list.
LIST_FIELDS = {"schedule": "schedules", "webhook_url": "webhook_urls"}
# What the error summary calls each field (the errors themselves keep the API's names).
LABELS = {
    "name": "Name",
    "schedule": "Schedule",
    "run_at": "Date and time",
    "timezone": "Timezone",
    "catchup": "Missed runs",
    "webhook_url": "Webhook URL",
    "payload": "Payload",
    "template": "Template",
    "max_retry": "Retries",
    "status": "Start",
    "discord_mode": "Discord: each run",
    "delete_after_seconds": "Discord: delete after",
    "start_at": "No run before",
    "end_at": "No run after",
    "max_runs": "Run limit",
    "exclude": "Dates with no run",
    "quiet_hours": "Quiet hours",
    "tags": "Tags",
}
PREVIEW_RUNS = 5
DEFAULT_VALUES = {
    "name": "",
    "kind": RECURRING,
    "schedule": "0 9 * * MON-FRI",
    "run_at": "",
    "timezone": "UTC",
    "catchup": "latest",
    "webhook_url": "",
    "payload": '{\n  "content": "Good morning!"\n}',
    "max_retry": "3",
    "template": "",
    "auto_resume": "on",
    "status": "active",
    "discord_mode": "post",
    "delete_after_seconds": "",
    "start_at": "",
    "end_at": "",
    "max_runs": "",
    "exclude": "",
    "quiet_from": "",
    "quiet_to": "",
    "quiet_mode": "skip",
    "tags": "",
}


@dataclass(frozen=True)
class Timing:
    """What schedule math reads of a task that is not saved yet."""

    schedule: str | None
    run_at: datetime | None
    timezone: str
    created_at: datetime
    schedules: list[str] | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    exclude: list[str] | None = None
    quiet_hours: dict[str, str] | None = None
    max_runs: int | None = None
    runs: int = 0


@dataclass
class Preview:
    """The form's preview: the next runs and, for a template, the payload they would send."""

    runs: list[datetime] = field(default_factory=list)
    payload: dict[str, Any] | None = None
    error: str | None = None


def blank_values() -> dict[str, str]:
    """The inputs of a new task's form."""
    return dict(DEFAULT_VALUES)


def task_values(task: Task) -> dict[str, str]:
    """The inputs of the form that edits `task` (its schedules and webhooks one per line)."""
    schedules = task_schedules(task)
    quiet = task.quiet_hours or {}
    return {
        "name": task.name,
        "kind": RECURRING if schedules else ONCE,
        "schedule": "\n".join(schedules),
        "run_at": _local_input(task.run_at, task.timezone),
        "timezone": task.timezone,
        "catchup": task.catchup,
        "webhook_url": "\n".join(task.webhook_urls or [task.webhook_url]),
        "payload": json.dumps(task.payload, indent=2, ensure_ascii=False),
        "max_retry": str(task.max_retry),
        "template": "on" if task.template else "",
        "auto_resume": "on" if task.auto_resume else "",
        "status": task.status,
        "discord_mode": task.discord_mode,
        "delete_after_seconds": str(task.delete_after_seconds or ""),
        "start_at": _local_input(task.start_at, task.timezone),
        "end_at": _local_input(task.end_at, task.timezone),
        "max_runs": str(task.max_runs or ""),
        "exclude": ", ".join(task.exclude or []),
        "quiet_from": quiet.get("from", ""),
        "quiet_to": quiet.get("to", ""),
        "quiet_mode": quiet.get("mode", "skip"),
        "tags": ", ".join(task.tags or []),
    }


def _local_input(at: datetime | None, timezone: str) -> str:
    """A `datetime-local` input's value: the wall time in the task's timezone."""
    if at is None:
        return ""
    local = at.astimezone(parse_timezone(timezone))
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


def submitted_values(form: dict[str, str]) -> dict[str, str]:
    """The form's inputs as posted (an unchecked checkbox is not posted at all)."""
    values = {name: form.get(name, "") for name in INPUTS}
    for name in CHECKBOXES:
        values[name] = "on" if form.get(name) else ""
    return values


def api_fields(values: dict[str, str], *, creating: bool) -> tuple[dict[str, Any], dict]:
    """The API body the form stands for, and the errors found before the schema's checks
    (a payload that is not a JSON object)."""
    fields: dict[str, Any] = {
        name: values[name].strip()
        for name in ("name", "timezone", "catchup", "discord_mode", "max_retry")
    }
    once = values["kind"] == ONCE
    fields |= _one_or_list("webhook_url", values["webhook_url"], empty="")
    fields |= {"schedule": None} if once else _one_or_list("schedule", values["schedule"])
    fields["run_at"] = (values["run_at"].strip() or None) if once else None
    # A one-time task has none of a repeating task's rules: null clears them on an edit.
    fields |= dict.fromkeys(RECURRING_ONLY_FIELDS) if once else _rules(values)
    fields["tags"] = [tag.strip() for tag in values["tags"].split(",") if tag.strip()] or None
    fields["delete_after_seconds"] = values["delete_after_seconds"].strip() or None
    fields["template"] = bool(values["template"])
    fields["auto_resume"] = bool(values["auto_resume"])
    if creating:
        fields["status"] = values["status"]
    errors: dict[str, str] = {}
    try:
        fields["payload"] = json.loads(values["payload"] or "{}")
    except ValueError as exc:
        errors["payload"] = f"not valid JSON: {exc}"
    if not errors and not isinstance(fields["payload"], dict):
        errors["payload"] = 'must be a JSON object, like {"content": "Hello"}'
    return fields, errors


def _rules(values: dict[str, str]) -> dict[str, Any]:
    """A repeating task's limits, excluded dates and quiet hours; empty inputs are null (none,
    and on an edit: cleared)."""
    quiet = {"from": values["quiet_from"].strip(), "to": values["quiet_to"].strip()}
    return {
        "start_at": values["start_at"].strip() or None,
        "end_at": values["end_at"].strip() or None,
        "max_runs": values["max_runs"].strip() or None,
        "exclude": re.findall(r"[^\s,]+", values["exclude"]) or None,
        "quiet_hours": quiet | {"mode": values["quiet_mode"]} if any(quiet.values()) else None,
    }


def _one_or_list(name: str, text: str, *, empty: str | None = None) -> dict[str, Any]:
    """An input of one entry per line as the API's field: `name` for one line (`empty` for
    none), its list form (LIST_FIELDS) for several."""
    entries = [line.strip() for line in text.splitlines() if line.strip()]
    if len(entries) > 1:
        return {LIST_FIELDS[name]: entries}
    return {name: entries[0] if entries else empty}


def parse(model: type[M], values: dict[str, str], *, creating: bool) -> tuple[M | None, dict]:
    """The form as `model` (TaskCreate, TaskUpdate), or the errors by the name of the input
    (the API's field name; a list form's errors go to its input)."""
    fields, errors = api_fields(values, creating=creating)
    try:
        data = model.model_validate({k: v for k, v in fields.items() if k not in errors})
    except ValidationError as exc:
        return None, by_input(field_errors(exc)) | errors
    return (None, errors) if errors else (data, {})


def by_input(errors: dict[str, str]) -> dict[str, str]:
    """Errors keyed by the input that holds the field (`schedules` → `schedule`)."""
    inputs = {listed: name for name, listed in LIST_FIELDS.items()}
    found: dict[str, str] = {}
    for name, message in errors.items():
        found.setdefault(inputs.get(name, name), message)
    return found


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The API's 422 errors as {field: message}, the first message of each field."""
    found: dict[str, str] = {}
    for error in plain_errors(exc.errors()):
        loc = [part for part in error["loc"] if part != "body"]
        found.setdefault(str(loc[0]) if loc else "form", error["msg"])
    return found


def preview(data: Any, *, now: datetime, task: Task | None = None) -> Preview:
    """The next runs of a validated form (TaskCreate), within its limits, exclusions and quiet
    hours (and, for a saved `task`, the runs it has made), and, for a template, its payload."""
    try:
        tz = parse_timezone(data.timezone)
        run_at = localize_run_at(data.run_at, tz) if data.run_at is not None else None
    except (ScheduleError, OverflowError) as exc:
        return Preview(error=str(exc))
    timing = Timing(
        data.schedule,
        run_at,
        data.timezone,
        task.created_at if task is not None else now,
        schedules=data.schedules,
        runs=(task.runs or 0) if task is not None else 0,
        **{name: getattr(data, name) for name in RECURRING_ONLY_FIELDS},
    )
    try:
        runs = [fire.at for fire in upcoming_runs(timing, after=now, count=PREVIEW_RUNS)]
    except ScheduleError as exc:  # the dates, the window: checked with the schedule on saving
        return Preview(error=str(exc))
    if data.schedule is None and run_at is not None and not runs:
        runs = [now]  # a one-time task whose time has passed runs at once
    result = Preview(runs=runs)
    if data.template:
        fields = {"name": data.name, "timezone": data.timezone}
        try:
            context = sample_context(fields, scheduled_for=runs[0] if runs else now)
            result.payload = render_payload(data.payload, context)
        except TemplateError as exc:
            result.error = str(exc)
    return result


@cache
def timezone_names() -> tuple[str, ...]:
    """The IANA zones a task may use, for the timezone picker."""
    names = set()
    for name in available_timezones():
        try:
            parse_timezone(name)
        except ScheduleError:
            continue
        names.add(name)
    return tuple(sorted(names))


def log_filters(params: dict[str, str]) -> tuple[LogFilters, dict[str, str]]:
    """GET /task-logs' filters from the log page's query, and errors by field. Times without
    an offset are read in UTC, as the page shows them."""
    errors: dict[str, str] = {}
    task_id = None
    if params.get("task_id"):
        try:
            task_id = uuid.UUID(params["task_id"])
        except ValueError:
            errors["task_id"] = "not a task id"
    status = params.get("status") or None
    if status is not None and status not in LogStatus._value2member_map_:
        errors["status"] = "choose success or failed"
        status = None
    since, until = (_instant(params.get(name), name, errors) for name in ("since", "until"))
    return LogFilters(task_id=task_id, status=status, since=since, until=until), errors


def _instant(text: str | None, name: str, errors: dict[str, str]) -> datetime | None:
    """An ISO 8601 date and time (UTC without an offset), or None with an error noted."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        errors[name] = "not a date and time, e.g. 2026-11-30T09:00"
        return None
