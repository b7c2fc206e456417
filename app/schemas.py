"""API shapes. Each field checks its own form here; checks that need several fields or the
settings (schedule xor run_at, Discord limits, private targets) live in `app.services.tasks`."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import httpx
import yarl
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from app.delivery.guard import UnsafeTargetError, check_url_target
from app.scheduling.schedules import ScheduleError, parse_schedule, parse_timezone

TaskStatus = Literal["active", "inactive"]
LogStatus = Literal["success", "failed"]
Trigger = Literal["schedule", "manual", "catchup"]
Catchup = Literal["latest", "none", "all"]

MAX_URL_LENGTH = 2048
RESPONSE_BODY_MAX_CHARS = 1024


def _as_utc(value: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_schedule(value: str) -> str:
    try:
        return parse_schedule(value).text
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def _check_timezone(value: str) -> str:
    try:
        parse_timezone(value)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None
    return value


def _check_url_form(value: str) -> str:
    # Only the form here (scheme, host); whether private targets are allowed is a setting.
    try:
        check_url_target(value, allow_private=True)
    except UnsafeTargetError as exc:
        raise ValueError(str(exc)) from None
    # The URL must also be one the HTTP client can send to (host labels, IDNA, characters).
    try:
        host = httpx.URL(value).host
        host.encode("idna")
        yarl.URL(value, encoded=False).raw_host  # noqa: B018 (parsing is the check)
    except Exception:
        raise ValueError("not a usable URL (check the host name and characters)") from None
    return value


def _refuse_null(value: object) -> object:
    """Partial updates: an absent field means "unchanged", an explicit null is an error."""
    if value is None:
        raise ValueError("may not be null")
    return value


def _null_payload_is_empty(value: object) -> object:
    """Insignia clients send `payload: null` for "no payload": store it as `{}`."""
    return {} if value is None else value


PAYLOAD_DESCRIPTION = "the JSON object POSTed to the webhook; null means {}"

# "May be left out, may not be null": None is only the default meaning "unchanged", so the
# OpenAPI document shows these fields as optional but not nullable.
Absent = SkipJsonSchema[None]

UTCDatetime = Annotated[datetime, AfterValidator(_as_utc)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ScheduleText = Annotated[str, AfterValidator(_check_schedule)]
TimezoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]
WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_URL_LENGTH),
    AfterValidator(_check_url_form),
]
MaxRetry = Annotated[int, Field(ge=0, le=20)]

TASK_EXAMPLE = {
    "name": "Daily stand-up reminder",
    "schedule": "0 9 * * MON-FRI",
    "timezone": "Europe/Paris",
    "webhook_url": "https://discord.com/api/webhooks/123456789012345678/your-webhook-token",
    "payload": {"content": "Stand-up in 5 minutes!"},
    "max_retry": 3,
}


class TaskCreate(BaseModel):
    """A new task: either a recurring `schedule` or a one-time `run_at`."""

    model_config = ConfigDict(json_schema_extra={"examples": [TASK_EXAMPLE]})

    name: Name
    schedule: ScheduleText | None = Field(
        default=None,
        description="5-field cron (names allowed), a macro such as @daily, or @every 1h30m",
    )
    run_at: datetime | None = Field(
        default=None,
        description="one-time tasks: ISO 8601; without an offset it is read in `timezone`",
    )
    timezone: TimezoneName = "UTC"
    catchup: Catchup = "latest"
    webhook_url: WebhookUrl
    payload: dict[str, Any] = Field(default_factory=dict, description=PAYLOAD_DESCRIPTION)
    max_retry: MaxRetry = 3
    status: TaskStatus = "active"

    _null_payload = field_validator("payload", mode="before")(_null_payload_is_empty)


# Fields that exist on every task: an explicit null for one of them is an error, not "unset".
REQUIRED_TASK_FIELDS = (
    "name",
    "timezone",
    "catchup",
    "webhook_url",
    "max_retry",
    "status",
)


class TaskUpdate(BaseModel):
    """A partial update: only the fields given change. `schedule`/`run_at` may be set to null."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"payload": {"content": "Hi!"}}]})

    name: Name | Absent = None
    schedule: ScheduleText | None = None
    run_at: datetime | None = None
    timezone: TimezoneName | Absent = None
    catchup: Catchup | Absent = None
    webhook_url: WebhookUrl | Absent = None
    payload: dict[str, Any] | Absent = Field(default=None, description=PAYLOAD_DESCRIPTION)
    max_retry: MaxRetry | Absent = None
    status: TaskStatus | Absent = None

    _refuse_null = field_validator(*REQUIRED_TASK_FIELDS, mode="before")(_refuse_null)
    _null_payload = field_validator("payload", mode="before")(_null_payload_is_empty)


class TaskRead(BaseModel):
    """A task as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    schedule: str | None
    run_at: datetime | None
    timezone: str
    catchup: Catchup
    webhook_url: str
    payload: dict[str, Any]
    max_retry: int
    status: TaskStatus
    status_reason: str | None
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None
    created_at: datetime
    updated_at: datetime


class Page(BaseModel):
    """What every list answer carries besides its rows."""

    total: int
    skip: int
    limit: int
    total_is_estimate: bool = Field(
        default=False,
        description="true when more than 10,000 rows match: `total` is then an estimate",
    )
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; null on the last page"
    )


class TaskList(Page):
    tasks: list[TaskRead]


class TaskLogCreate(BaseModel):
    """A log row written by hand."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10",
                    "status": "success",
                    "message": "Delivered (HTTP 204)",
                    "http_status": 204,
                }
            ]
        }
    )

    task_id: uuid.UUID
    status: LogStatus
    execution_time: UTCDatetime | None = None
    scheduled_for: UTCDatetime | None = None
    retry_count: Annotated[int, Field(ge=0)] = 0
    message: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    http_status: Annotated[int, Field(ge=100, le=599)] | None = None
    duration_ms: Annotated[int, Field(ge=0)] | None = None
    response_body: Annotated[str, StringConstraints(max_length=RESPONSE_BODY_MAX_CHARS)] | None = (
        None
    )
    trigger: Trigger = "manual"


REQUIRED_LOG_FIELDS = ("status", "execution_time", "retry_count", "trigger")


class TaskLogUpdate(BaseModel):
    """A partial update of a log row; its task cannot change."""

    status: LogStatus | Absent = None
    execution_time: UTCDatetime | Absent = None
    scheduled_for: UTCDatetime | None = None
    retry_count: Annotated[int, Field(ge=0)] | Absent = None
    message: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    http_status: Annotated[int, Field(ge=100, le=599)] | None = None
    duration_ms: Annotated[int, Field(ge=0)] | None = None
    response_body: Annotated[str, StringConstraints(max_length=RESPONSE_BODY_MAX_CHARS)] | None = (
        None
    )
    trigger: Trigger | Absent = None

    _refuse_null = field_validator(*REQUIRED_LOG_FIELDS, mode="before")(_refuse_null)


class TaskLogRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    task_id: uuid.UUID
    execution_time: datetime
    scheduled_for: datetime | None
    status: LogStatus
    retry_count: int
    message: str | None
    http_status: int | None
    duration_ms: int | None
    response_body: str | None
    trigger: Trigger
    created_at: datetime


class TaskLogList(Page):
    task_logs: list[TaskLogRead]


class Message(BaseModel):
    message: str


class ExecuteAccepted(BaseModel):
    """A manual run was queued; its log rows will carry trigger `manual`."""

    message: str
    task_id: uuid.UUID
    occurrence_id: uuid.UUID
    scheduled_for: datetime


class NextRun(BaseModel):
    utc: datetime
    local: datetime


class NextRuns(BaseModel):
    task_id: uuid.UUID
    timezone: str
    next_runs: list[NextRun]
