"""API shapes. Each field checks its own form here; checks that need several fields or the
settings (schedule xor run_at, payload size, Discord limits, private targets) live in
`app.services.tasks`.

Input rules, for every body: unknown fields are 422 by name, while the read-only fields a GET
returns are accepted and ignored (a client may PUT back what it read); every string has a length
limit and may not hold NUL characters or unpaired surrogates; every integer has bounds; a
datetime that cannot be represented in UTC is 422.
"""

import math
import unicodedata
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
import yarl
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema, PydanticKnownError

from app.delivery.guard import UnsafeTargetError, check_url_target
from app.domain import Catchup, DiscordMode, LogStatus, Scope, TaskStatus, Trigger
from app.scheduling.calendar import MAX_EXCLUDE, MAX_SCHEDULES, FireKind, QuietMode
from app.scheduling.schedules import ScheduleError, parse_schedule, parse_timezone
from app.scheduling.targets import MAX_TARGETS, read_targets
from app.text import is_storable

__all__ = ["Catchup", "DiscordMode", "LogStatus", "TaskStatus", "Trigger"]

MAX_URL_LENGTH = 2048
MAX_NAME_LENGTH = 200
MAX_SCHEDULE_LENGTH = 200
MAX_MESSAGE_LENGTH = 10_000
RESPONSE_BODY_MAX_CHARS = 1024
PAYLOAD_MAX_DEPTH = 32
INT32_MAX = 2**31 - 1
MAX_TAGS = 10
MAX_TAG_LENGTH = 50
MAX_RUNS = 1_000_000
UNREPRESENTABLE = "cannot be represented in UTC (years 1 to 9999)"
# What a GET of a task returns that a client cannot set (Insignia's `logs` included).
READ_ONLY_TASK_FIELDS = frozenset(
    {
        "id",
        "created_at",
        "updated_at",
        "next_run_at",
        "last_run_at",
        "last_status",
        "status_reason",
        "status_changed_at",
        "resume_at",
        "discord_message_id",
        "signed",
        "runs",
        "targets",
        "logs",
    }
)
READ_ONLY_LOG_FIELDS = frozenset({"id", "created_at", "target"})


def as_utc(value: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(UNREPRESENTABLE) from None


def _storable(value: str) -> str:
    if not is_storable(value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


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


def _check_payload(value: dict[str, Any]) -> dict[str, Any]:
    """A JSON object at most PAYLOAD_MAX_DEPTH deep, of storable strings and finite numbers."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > PAYLOAD_MAX_DEPTH:
                raise ValueError(f"nested deeper than {PAYLOAD_MAX_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            _storable(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("numbers must be finite (no NaN or Infinity)")
    return value


def _refuse_null(value: object) -> object:
    """Partial updates: an absent field means "unchanged", an explicit null is an error."""
    if value is None:
        raise ValueError("may not be null")
    return value


def _null_payload_is_empty(value: object) -> object:
    """Insignia clients send `payload: null` for "no payload": store it as `{}`."""
    return {} if value is None else value


def _check_tag(value: str) -> str:
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("must not contain control characters")
    return value


def _distinct_tags(tags: list[str]) -> list[str]:
    """The tags in the order given, each once."""
    return list(dict.fromkeys(tags))


def _distinct_urls(urls: list[str]) -> list[str]:
    """The webhook URLs as given; ValueError when one is given twice."""
    seen: dict[str, int] = {}
    for index, url in enumerate(urls):
        if url in seen:
            raise ValueError(f"webhook_urls[{index}] repeats webhook_urls[{seen[url]}]")
        seen[url] = index
    return urls


# Stands for a webhook_url that is missing while webhook_urls is missing too.
_NO_WEBHOOK = object()


def _require_a_webhook(data: Any) -> Any:
    """A body with neither `webhook_url` nor `webhook_urls` has `webhook_url` reported
    missing, as it was before fan-out existed."""
    if not isinstance(data, dict):
        return data
    if data.get("webhook_url") is None and data.get("webhook_urls") is None:
        return {**data, "webhook_url": _NO_WEBHOOK}
    return data


def _missing_webhook(value: object) -> object:
    if value is _NO_WEBHOOK:
        raise PydanticKnownError("missing")
    return value


def _agrees_with_webhook_url(urls: list[str] | None, info: ValidationInfo) -> list[str] | None:
    """Both forms in one body only when they say the same (a GET sent back): `webhook_url`
    is then the first of `webhook_urls`."""
    url = info.data.get("webhook_url")
    if urls is not None and url is not None and url != urls[0]:
        raise ValueError(
            "give either webhook_url or webhook_urls, not both (when both are given, "
            "webhook_url must be the first of webhook_urls)"
        )
    return urls


def _without(fields: frozenset[str]) -> Any:
    """A before-validator that drops read-only fields a client sent back."""

    def drop(data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if key not in fields}
        return data

    return model_validator(mode="before")(staticmethod(drop))


# "May be left out, may not be null": None is only the default meaning "unchanged", so the
# OpenAPI document shows these fields as optional but not nullable.
Absent = SkipJsonSchema[None]

UTCDatetime = Annotated[datetime, AfterValidator(as_utc)]
Text = Annotated[str, AfterValidator(_storable)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_storable),
]
ScheduleText = Annotated[
    str, StringConstraints(max_length=MAX_SCHEDULE_LENGTH), AfterValidator(_check_schedule)
]
TimezoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_timezone)]
WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_URL_LENGTH),
    AfterValidator(_storable),
    AfterValidator(_check_url_form),
]
# Declared without a JSON type on purpose: generated clients then take and give a plain dict
# (openapi-python-client makes a model class of any `type: object`); the server checks it.
PAYLOAD_SCHEMA = {
    "title": "Payload",
    "description": "the JSON object POSTed to the webhook (an object; null means {})",
    "examples": [{"content": "Stand-up in 5 minutes!"}],
}
Payload = Annotated[dict[str, Any], AfterValidator(_check_payload), WithJsonSchema(PAYLOAD_SCHEMA)]
MaxRetry = Annotated[int, Field(ge=0, le=20)]
MessageText = Annotated[
    str, StringConstraints(max_length=MAX_MESSAGE_LENGTH), AfterValidator(_storable)
]
ResponseBody = Annotated[
    str, StringConstraints(max_length=RESPONSE_BODY_MAX_CHARS), AfterValidator(_storable)
]
RetryCount = Annotated[int, Field(ge=0, le=1_000_000)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
DurationMs = Annotated[int, Field(ge=0, le=INT32_MAX)]

AUTO_RESUME_DESCRIPTION = (
    "after its retries are spent on a transient failure, try the task again by itself "
    "(AUTO_RESUME_FIRST_SECONDS later, doubling up to AUTO_RESUME_MAX_SECONDS)"
)

TEMPLATE_DESCRIPTION = (
    "render every string of the payload with Jinja2 at send time: names task.id, task.name, "
    "task.timezone, scheduled_for, occurrence_id, attempt, run_number, next_run_at; filters "
    'discord("R"), local("%H:%M"), iso'
)
MODE_DESCRIPTION = (
    "Discord webhooks only: post (a new message each run), edit (one message kept up to date), "
    "replace (delete the previous message, then post)"
)
DELETE_DESCRIPTION = (
    "Discord webhooks only: delete each posted message this long after (1 s - 14 days)"
)
DeleteAfter = Annotated[int, Field(ge=1, le=14 * 86_400)]

Tag = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TAG_LENGTH),
    AfterValidator(_storable),
    AfterValidator(_check_tag),
]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS), AfterValidator(_distinct_tags)]
Schedules = Annotated[list[ScheduleText], Field(min_length=1, max_length=MAX_SCHEDULES)]
WebhookUrls = Annotated[
    list[WebhookUrl],
    Field(min_length=1, max_length=MAX_TARGETS),
    AfterValidator(_distinct_urls),
]
MaxRuns = Annotated[int, Field(ge=1, le=MAX_RUNS)]
# Exclusions and quiet hours are checked with the other timing fields by the service
# (`app.scheduling.calendar.parse_calendar`); these schemas document their form.
EXCLUDE_SCHEMA = {
    "type": "array",
    "items": {"type": "string", "pattern": "^([0-9]{4}-|--)[0-9]{2}-[0-9]{2}$"},
    "maxItems": MAX_EXCLUDE,
    "examples": [["2026-12-25", "--01-01"]],
}
CLOCK_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHoursForm(BaseModel):
    """Quiet hours: a daily window on the wall clock of the task's timezone. It describes
    `quiet_hours` in the API document; the service checks the value."""

    model_config = ConfigDict(
        title="QuietHours",
        extra="forbid",
        json_schema_extra={"examples": [{"from": "22:00", "to": "07:00", "mode": "defer"}]},
    )

    from_: str = Field(
        alias="from",
        pattern=CLOCK_PATTERN,
        description="where the window starts, HH:MM on the wall clock of `timezone`",
    )
    to: str = Field(
        pattern=CLOCK_PATTERN,
        description="where it ends (not included); earlier than `from`: across midnight",
    )
    mode: QuietMode = Field(
        description="skip: drop the run; defer: fire it at `to`; silent: send it without "
        "notification (Discord's SUPPRESS_NOTIFICATIONS)"
    )


class DocumentedAs:
    """An annotation that shows a value validated elsewhere as `model` in the API document."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model

    def __get_pydantic_json_schema__(
        self, _core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The JSON schema of the model."""
        return handler(self.model.__pydantic_core_schema__)


ExcludedDates = Annotated[list[str], WithJsonSchema(EXCLUDE_SCHEMA)]
QuietHours = Annotated[dict[str, Any], DocumentedAs(QuietHoursForm)]

WEBHOOK_URL_DESCRIPTION = "where the payload is POSTed; give it or `webhook_urls`"
SCHEDULE_DESCRIPTION = "5-field cron (names allowed), a macro such as @daily, or @every 1h30m"
SCHEDULES_DESCRIPTION = (
    "several schedules on one task (1-10, each like `schedule`), fired as their union, each "
    "instant once; instead of `schedule`"
)
START_DESCRIPTION = (
    "recurring tasks: no run before this instant (ISO 8601; without an offset it is read in "
    "`timezone`); an @every schedule counts from it"
)
END_DESCRIPTION = (
    "recurring tasks: no run after this instant (ISO 8601; without an offset it is read in "
    "`timezone`); then the task becomes inactive"
)
MAX_RUNS_DESCRIPTION = (
    'recurring tasks: after this many runs (1-1,000,000) the task becomes inactive ("completed '
    'N runs")'
)
EXCLUDE_DESCRIPTION = (
    "recurring tasks: dates (2026-12-25) and yearly dates (--12-25) of `timezone` on which "
    "nothing fires (at most 100)"
)
QUIET_DESCRIPTION = (
    "recurring tasks: a daily window {from, to, mode} on the wall clock of `timezone` in which "
    "runs are skipped, deferred to its end, or sent silently"
)
WEBHOOK_URLS_DESCRIPTION = (
    "fan-out: 1-10 different webhooks, each its own delivery with its own retries, log rows "
    "and status (`targets`); instead of `webhook_url`"
)
TAGS_DESCRIPTION = "up to 10 labels (1-50 characters each, each once) to find tasks by: ?tag="

TASK_EXAMPLE = {
    "name": "Daily stand-up reminder",
    "schedule": "0 9 * * MON-FRI",
    "timezone": "Europe/Paris",
    "webhook_url": "https://discord.com/api/webhooks/123456789012345678/your-webhook-token",
    "payload": {"content": "Stand-up in 5 minutes!"},
    "max_retry": 3,
}
STRICT = {"extra": "forbid"}


# Optional fields a TaskCreate leaves out of its dump when they are not set.
OMITTED_WHEN_UNSET = frozenset(
    {
        "schedules",
        "start_at",
        "end_at",
        "max_runs",
        "exclude",
        "quiet_hours",
        "webhook_url",
        "webhook_urls",
        "tags",
    }
)


class TaskCreate(BaseModel):
    """A new task: a recurring `schedule` (or `schedules`) or a one-time `run_at`, and a
    `webhook_url` (or `webhook_urls`)."""

    model_config = ConfigDict(json_schema_extra={"examples": [TASK_EXAMPLE]}, **STRICT)

    name: Name
    schedule: ScheduleText | None = Field(default=None, description=SCHEDULE_DESCRIPTION)
    schedules: Schedules | None = Field(default=None, description=SCHEDULES_DESCRIPTION)
    run_at: datetime | None = Field(
        default=None,
        description="one-time tasks: ISO 8601; without an offset it is read in `timezone`",
    )
    timezone: TimezoneName = "UTC"
    catchup: Catchup = Catchup.LATEST
    start_at: datetime | None = Field(default=None, description=START_DESCRIPTION)
    end_at: datetime | None = Field(default=None, description=END_DESCRIPTION)
    max_runs: MaxRuns | None = Field(default=None, description=MAX_RUNS_DESCRIPTION)
    exclude: ExcludedDates | None = Field(default=None, description=EXCLUDE_DESCRIPTION)
    quiet_hours: QuietHours | None = Field(default=None, description=QUIET_DESCRIPTION)
    webhook_url: WebhookUrl | Absent = Field(default=None, description=WEBHOOK_URL_DESCRIPTION)
    webhook_urls: WebhookUrls | None = Field(default=None, description=WEBHOOK_URLS_DESCRIPTION)
    payload: Payload = Field(default_factory=dict)
    max_retry: MaxRetry = 3
    status: TaskStatus = TaskStatus.ACTIVE
    auto_resume: bool = Field(default=True, description=AUTO_RESUME_DESCRIPTION)
    template: bool = Field(default=False, description=TEMPLATE_DESCRIPTION)
    discord_mode: DiscordMode = Field(default=DiscordMode.POST, description=MODE_DESCRIPTION)
    delete_after_seconds: DeleteAfter | None = Field(default=None, description=DELETE_DESCRIPTION)
    tags: Tags | None = Field(default=None, description=TAGS_DESCRIPTION)

    _read_only = _without(READ_ONLY_TASK_FIELDS)
    _a_webhook = model_validator(mode="before")(staticmethod(_require_a_webhook))
    _missing_webhook = field_validator("webhook_url", mode="before")(_missing_webhook)
    _one_webhook_form = field_validator("webhook_urls")(_agrees_with_webhook_url)
    _null_payload = field_validator("payload", mode="before")(_null_payload_is_empty)

    @model_serializer(mode="wrap")
    def _without_unused(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The fields of the task, but the optional ones it leaves unset (None): a body that
        uses none of them dumps as it always did."""
        dumped = handler(self)
        return {
            name: value
            for name, value in dumped.items()
            if value is not None or (name not in OMITTED_WHEN_UNSET)
        }

    @property
    def fan_out(self) -> bool:
        """Whether the task sends to `webhook_urls` as targets of their own (given without
        `webhook_url`, or more than one) rather than to one webhook."""
        urls = self.webhook_urls
        return urls is not None and (self.webhook_url is None or len(urls) > 1)

    @property
    def urls(self) -> list[str]:
        """Every webhook the task sends to, the first being its `webhook_url`."""
        if self.webhook_urls is not None:
            return list(self.webhook_urls)
        return [self.webhook_url] if self.webhook_url is not None else []


# Fields that exist on every task: an explicit null for one of them is an error, not "unset".
REQUIRED_TASK_FIELDS = (
    "name",
    "timezone",
    "catchup",
    "webhook_url",
    "max_retry",
    "status",
    "auto_resume",
    "template",
    "discord_mode",
)


class TaskUpdate(BaseModel):
    """A partial update: only the fields given change. Giving one form of timing
    (`schedule`, `schedules`, `run_at`) clears the others; `webhook_urls` replaces the
    webhooks (null: back to the one `webhook_url`); null clears the optional fields."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"payload": {"content": "Hi!"}}]}, **STRICT
    )

    name: Name | Absent = None
    schedule: ScheduleText | None = None
    schedules: Schedules | None = Field(default=None, description=SCHEDULES_DESCRIPTION)
    run_at: datetime | None = None
    timezone: TimezoneName | Absent = None
    catchup: Catchup | Absent = None
    start_at: datetime | None = Field(default=None, description=START_DESCRIPTION)
    end_at: datetime | None = Field(default=None, description=END_DESCRIPTION)
    max_runs: MaxRuns | None = Field(default=None, description=MAX_RUNS_DESCRIPTION)
    exclude: ExcludedDates | None = Field(default=None, description=EXCLUDE_DESCRIPTION)
    quiet_hours: QuietHours | None = Field(default=None, description=QUIET_DESCRIPTION)
    webhook_url: WebhookUrl | Absent = None
    webhook_urls: WebhookUrls | None = Field(default=None, description=WEBHOOK_URLS_DESCRIPTION)
    payload: Payload | Absent = None
    max_retry: MaxRetry | Absent = None
    status: TaskStatus | Absent = None
    auto_resume: bool | Absent = Field(default=None, description=AUTO_RESUME_DESCRIPTION)
    template: bool | Absent = Field(default=None, description=TEMPLATE_DESCRIPTION)
    discord_mode: DiscordMode | Absent = Field(default=None, description=MODE_DESCRIPTION)
    delete_after_seconds: DeleteAfter | None = Field(default=None, description=DELETE_DESCRIPTION)
    tags: Tags | None = Field(default=None, description=TAGS_DESCRIPTION)

    _read_only = _without(READ_ONLY_TASK_FIELDS)
    _refuse_null = field_validator(*REQUIRED_TASK_FIELDS, mode="before")(_refuse_null)
    _one_webhook_form = field_validator("webhook_urls")(_agrees_with_webhook_url)
    _null_payload = field_validator("payload", mode="before")(_null_payload_is_empty)

    @property
    def given_urls(self) -> list[str]:
        """The webhooks this update sets, in order (empty: they stay as they are)."""
        if self.webhook_urls is not None:
            return list(self.webhook_urls)
        return [self.webhook_url] if self.webhook_url is not None else []


TASK_READ_EXAMPLE = TASK_EXAMPLE | {
    "id": "5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10",
    "schedules": None,
    "run_at": None,
    "catchup": "latest",
    "start_at": None,
    "end_at": None,
    "max_runs": None,
    "runs": 12,
    "exclude": ["2026-12-25", "--01-01"],
    "quiet_hours": None,
    "webhook_urls": [TASK_EXAMPLE["webhook_url"]],
    "targets": [
        {
            "index": 0,
            "url": TASK_EXAMPLE["webhook_url"],
            "status": "active",
            "status_reason": None,
            "status_changed_at": "2026-11-20T10:00:00Z",
            "resume_at": None,
        }
    ],
    "tags": ["team"],
    "status": "active",
    "status_reason": None,
    "status_changed_at": "2026-11-20T10:00:00Z",
    "auto_resume": True,
    "resume_at": None,
    "template": False,
    "discord_mode": "post",
    "delete_after_seconds": None,
    "discord_message_id": "1300000000000000001",
    "signed": False,
    "next_run_at": "2026-12-01T08:00:00Z",
    "last_run_at": "2026-11-30T08:00:00.012000Z",
    "last_status": "success",
    "created_at": "2026-11-20T10:00:00Z",
    "updated_at": "2026-11-20T10:00:00Z",
}


class TaskTarget(BaseModel):
    """One webhook of a task and its own state (a one-webhook task's is the task's)."""

    index: int = Field(description="its place in `webhook_urls` (the `target` of log rows)")
    url: str
    status: TaskStatus = Field(description="inactive: deliveries to this webhook are off")
    status_reason: str | None
    status_changed_at: datetime | None
    resume_at: datetime | None = Field(description="when it is tried again by itself")


def task_targets(task: Any) -> list[TaskTarget]:
    """The targets of a task (a Task): its fan-out states, or its own state as target 0."""
    states = read_targets(task.targets)
    if not states:
        return [
            TaskTarget(
                index=0,
                url=task.webhook_url,
                status=task.status,
                status_reason=task.status_reason,
                status_changed_at=task.status_changed_at,
                resume_at=task.resume_at,
            )
        ]
    urls = task.webhook_urls or []
    return [
        TaskTarget(
            index=index,
            url=urls[index] if index < len(urls) else task.webhook_url,
            status=state.status,
            status_reason=state.status_reason,
            status_changed_at=state.status_changed_at,
            resume_at=state.ladder.resume_at,
        )
        for index, state in enumerate(states)
    ]


# What a TaskRead computes from a task rather than reads from one of its columns.
DERIVED_TASK_FIELDS = frozenset({"webhook_urls", "targets", "tags", "runs"})


class TaskRead(BaseModel):
    """A task as the API shows it."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [TASK_READ_EXAMPLE]}
    )

    id: uuid.UUID
    name: str
    schedule: str | None
    schedules: list[str] | None = Field(description=SCHEDULES_DESCRIPTION)
    run_at: datetime | None
    timezone: str
    catchup: Catchup
    start_at: datetime | None = Field(description="recurring tasks: no run before it (UTC)")
    end_at: datetime | None = Field(description="recurring tasks: no run after it (UTC)")
    max_runs: int | None = Field(description=MAX_RUNS_DESCRIPTION)
    runs: int = Field(description="occurrences fired so far (what `max_runs` counts)")
    exclude: list[str] | None = Field(description=EXCLUDE_DESCRIPTION)
    quiet_hours: QuietHours | None = Field(description=QUIET_DESCRIPTION)
    webhook_url: str = Field(description="the webhook (the first one of a fan-out task)")
    webhook_urls: list[str] = Field(
        description="every webhook the task sends to (`[webhook_url]` for a one-webhook task)"
    )
    targets: list[TaskTarget] = Field(
        description="each webhook's own state, in the order of `webhook_urls`"
    )
    tags: list[str] = Field(description="the task's labels (an empty list when none)")
    payload: Annotated[dict[str, Any], WithJsonSchema(PAYLOAD_SCHEMA)]
    max_retry: int
    status: TaskStatus
    status_reason: str | None
    status_changed_at: datetime | None = Field(
        description="when the status last changed, by the API or by the service itself"
    )
    auto_resume: bool
    resume_at: datetime | None = Field(
        description="when a task switched off by transient failures is tried again"
    )
    template: bool
    discord_mode: DiscordMode
    delete_after_seconds: int | None
    discord_message_id: str | None = Field(
        description="the Discord message the task posted or edited last"
    )
    signed: bool = Field(
        description="deliveries carry Standard Webhooks signatures with the task's own secret"
    )
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: LogStatus | None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_task(cls, data: Any) -> Any:
        """A stored task (any object with a task's attributes) read with its derived fields:
        `webhook_urls`, `targets` and `tags` are lists for every task."""
        if isinstance(data, dict):
            return data
        values = {
            name: getattr(data, name)
            for name in cls.model_fields
            if name not in DERIVED_TASK_FIELDS
        }
        values["webhook_urls"] = list(data.webhook_urls or [data.webhook_url])
        values["targets"] = task_targets(data)
        values["tags"] = list(data.tags or [])
        values["runs"] = data.runs or 0
        return values


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


PAGE_EXAMPLE = {"total": 1, "skip": 0, "limit": 100, "total_is_estimate": False}


class TaskList(Page):
    model_config = ConfigDict(
        json_schema_extra={"examples": [PAGE_EXAMPLE | {"tasks": [TASK_READ_EXAMPLE]}]}
    )

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
        },
        **STRICT,
    )

    task_id: uuid.UUID
    status: LogStatus
    execution_time: UTCDatetime | None = None
    scheduled_for: UTCDatetime | None = None
    retry_count: RetryCount = 0
    message: MessageText | None = None
    http_status: HttpStatus | None = None
    duration_ms: DurationMs | None = None
    response_body: ResponseBody | None = None
    trigger: Trigger = Trigger.MANUAL

    _read_only = _without(READ_ONLY_LOG_FIELDS)


REQUIRED_LOG_FIELDS = ("status", "execution_time", "retry_count", "trigger")


class TaskLogUpdate(BaseModel):
    """A partial update of a log row; its task cannot change (a `task_id` sent is ignored)."""

    model_config = ConfigDict(**STRICT)

    status: LogStatus | Absent = None
    execution_time: UTCDatetime | Absent = None
    scheduled_for: UTCDatetime | None = None
    retry_count: RetryCount | Absent = None
    message: MessageText | None = None
    http_status: HttpStatus | None = None
    duration_ms: DurationMs | None = None
    response_body: ResponseBody | None = None
    trigger: Trigger | Absent = None

    _read_only = _without(READ_ONLY_LOG_FIELDS | {"task_id"})
    _refuse_null = field_validator(*REQUIRED_LOG_FIELDS, mode="before")(_refuse_null)


LOG_READ_EXAMPLE = {
    "id": "0c6f1a1e-1f7e-4f55-8d55-1d4b5c6d7e8f",
    "task_id": "5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10",
    "execution_time": "2026-11-30T08:00:00.012000Z",
    "scheduled_for": "2026-11-30T08:00:00Z",
    "status": "success",
    "retry_count": 0,
    "message": "Delivered (HTTP 200, Discord message 1300000000000000001)",
    "http_status": 200,
    "duration_ms": 143,
    "response_body": '{"id": "1300000000000000001", "type": 0}',
    "trigger": "schedule",
    "created_at": "2026-11-30T08:00:00.160000Z",
    "target": 0,
}


class TaskLogRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [LOG_READ_EXAMPLE]}
    )

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
    target: int | None = Field(
        description="which of the task's webhooks (its index in `webhook_urls`) the attempt "
        "went to; null for rows written by hand"
    )


class TaskLogList(Page):
    model_config = ConfigDict(
        json_schema_extra={"examples": [PAGE_EXAMPLE | {"task_logs": [LOG_READ_EXAMPLE]}]}
    )

    task_logs: list[TaskLogRead]


class Message(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"message": "Task deleted successfully"}]}
    )

    message: str


class ExecuteAccepted(BaseModel):
    """A manual run was queued; its log rows will carry trigger `manual`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "message": "Task queued for execution",
                    "task_id": "5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10",
                    "occurrence_id": "9a3e4c6b-2b1f-4e0a-8c55-6a7b8c9d0e1f",
                    "scheduled_for": "2026-11-30T08:03:11.402000Z",
                }
            ]
        }
    )

    message: str
    task_id: uuid.UUID
    occurrence_id: uuid.UUID
    scheduled_for: datetime


class NextRun(BaseModel):
    """One upcoming run, and what quiet hours make of it."""

    utc: datetime
    local: datetime
    kind: FireKind = Field(
        description="normal; silent (sent without notification); deferred (moved to the end "
        "of the quiet hours)"
    )
    deferred_from: datetime | None = Field(
        description="a deferred run: the time it was due (UTC); null otherwise"
    )


class NextRuns(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task_id": "5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10",
                    "timezone": "Europe/Paris",
                    "next_runs": [
                        {
                            "utc": "2026-12-01T08:00:00Z",
                            "local": "2026-12-01T09:00:00+01:00",
                            "kind": "normal",
                            "deferred_from": None,
                        }
                    ],
                }
            ]
        }
    )

    task_id: uuid.UUID
    timezone: str
    next_runs: list[NextRun]


class Preview(BaseModel):
    """What the next occurrence would send."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "scheduled_for": "2026-12-01T08:00:00Z",
                    "payload": {"content": "Stand-up <t:1764576000:R>"},
                }
            ]
        }
    )

    scheduled_for: datetime | None = Field(description="null: the task has no next occurrence")
    payload: Annotated[dict[str, Any], WithJsonSchema(PAYLOAD_SCHEMA)]


class ApiKeyCreate(BaseModel):
    """A new API key: its name, its scopes, and when it stops working (never, if not given)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "read-only dashboard", "scopes": ["tasks:read"]}]},
        **STRICT,
    )

    name: Name
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(Scope))]
    expires_at: UTCDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class ApiKeyRead(BaseModel):
    """An API key as the API shows it: never the key itself."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    scopes: list[Scope]
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None = Field(description="updated at most once a minute")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    """The new key, with `key` shown this once: keep it, it cannot be read again."""

    key: str = Field(description="the bearer token, `isk_…`; shown only in this answer")


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyRead]


class SigningSecret(BaseModel):
    """A task's new signing secret, shown this once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    "previous_valid_until": "2026-12-01T08:00:00Z",
                }
            ]
        }
    )

    signing_secret: str = Field(description="whsec_…: verify deliveries with it")
    previous_valid_until: datetime | None = Field(
        description="until then deliveries also carry a signature with the replaced secret"
    )
