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


class LogStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"


class Catchup(StrEnum):
    """What a task does with occurrences missed while no scheduler ran."""

    LATEST = "latest"  # one run for everything missed
    NONE = "none"  # skip what was missed
    ALL = "all"  # every missed occurrence (at most 100)
