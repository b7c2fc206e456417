"""The closed vocabularies of the domain, as enums. They are `str` enums: each member equals
the string stored in the database and shown by the API."""

from enum import StrEnum


class TaskStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class Trigger(StrEnum):
    """What made an attempt happen."""

    SCHEDULE = "schedule"  # an on-time occurrence
    CATCHUP = "catchup"  # an occurrence missed while no scheduler ran
    MANUAL = "manual"  # POST /tasks/{id}/execute
    PROBE = "probe"  # the health ladder checks whether a switched-off task can resume
    DELETE = "delete"  # a Discord message posted `delete_after_seconds` ago is deleted


class LogStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"


class Catchup(StrEnum):
    """What a task does with occurrences missed while no scheduler ran."""

    LATEST = "latest"  # one run for everything missed
    NONE = "none"  # skip what was missed
    ALL = "all"  # every missed occurrence (at most 100)


class DiscordMode(StrEnum):
    """What each run of a task with a Discord webhook does with its message."""

    POST = "post"  # a new message each time
    EDIT = "edit"  # one message kept up to date: the first run posts, later runs edit it
    REPLACE = "replace"  # the previous message is deleted, then a new one posted


class Scope(StrEnum):
    """What an API key may do; ADMIN may do everything (API_TOKEN is an admin key)."""

    TASKS_READ = "tasks:read"
    TASKS_WRITE = "tasks:write"  # includes execute, pause, resume, preview, signing secrets
    LOGS_READ = "logs:read"
    LOGS_WRITE = "logs:write"
    ADMIN = "admin"  # everything, including /api-keys and /scheduler/run
