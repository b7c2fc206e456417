"""The plan of `apply`: what to create, update and delete so that the server's tasks match a
file's. Pure: it compares the tasks it is given and calls nothing.

A file's task is matched with the server's task of the same name. A field left out of the file
means its default (so removing `max_retry: 5` from the file sets it back to 3), except `status`:
the service itself makes tasks inactive (failures, a delivered one-time task), so a file that
does not say `status` leaves it as it is.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from app.scheduling.schedules import ScheduleError, localize_run_at, parse_timezone


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class FieldChange:
    """One field of a task that the file changes."""

    name: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Change:
    """One step of the plan: `body` is what to send (the whole task to create, the changed
    fields of an update)."""

    action: Action
    name: str
    task_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    fields: tuple[FieldChange, ...] = ()


class PlanError(ValueError):
    """The file and the server cannot be matched by name; `problems` says where, one a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def plan(
    file_tasks: list[dict[str, Any]], server_tasks: list[dict[str, Any]], *, prune: bool = False
) -> list[Change]:
    """The changes, in the file's order, then (with `prune`) the deletions of the server's
    tasks that the file does not name, by name. PlanError for names the file repeats, or that name
    several tasks on the server."""
    _refuse_ambiguous_names(file_tasks, server_tasks)
    on_server = {task["name"]: task for task in server_tasks}
    changes = [_change(wanted, on_server.get(wanted["name"])) for wanted in file_tasks]
    if prune:
        named = {task["name"] for task in file_tasks}
        changes += [
            Change(Action.DELETE, task["name"], task["id"])
            for task in sorted(server_tasks, key=lambda task: (task["name"], task["id"]))
            if task["name"] not in named
        ]
    return changes


def _refuse_ambiguous_names(
    file_tasks: list[dict[str, Any]], server_tasks: list[dict[str, Any]]
) -> None:
    """PlanError listing every name the file repeats and every name it gives several server
    tasks have (with their ids)."""
    in_file = Counter(task["name"] for task in file_tasks)
    problems = [
        f'the file has {count} tasks named "{name}": names must be unique'
        for name, count in in_file.items()
        if count > 1
    ]
    for name in in_file:
        ids = [task["id"] for task in server_tasks if task["name"] == name]
        if len(ids) > 1:
            problems.append(
                f'the server has {len(ids)} tasks named "{name}" ({", ".join(ids)}): rename or '
                "delete all but one"
            )
    if problems:
        raise PlanError(problems)


def _change(wanted: dict[str, Any], current: dict[str, Any] | None) -> Change:
    """Create, update (with the fields that differ) or leave one task."""
    name = wanted["name"]
    if current is None:
        return Change(Action.CREATE, name, body=dict(wanted))
    timezone = wanted.get("timezone", "UTC")
    differing = tuple(
        FieldChange(key, current.get(key), value)
        for key, value in wanted.items()
        if not same_value(key, value, current.get(key), timezone=timezone)
    )
    if not differing:
        return Change(Action.UNCHANGED, name, current["id"])
    body = {change.name: change.new for change in differing}
    return Change(Action.UPDATE, name, current["id"], body=body, fields=differing)


def same_value(key: str, wanted: Any, current: Any, *, timezone: str) -> bool:
    """Whether a file's value and the server's are the same: `run_at` as an instant (a time
    without an offset is read in the task's timezone, as the API does), the rest as JSON."""
    if key == "run_at":
        return _instant(wanted, timezone) == _instant(current, "UTC")
    return _canonical(wanted) == _canonical(current)


def _canonical(value: Any) -> str:
    """A value as canonical JSON (objects compare whatever their key order; 1 is not true)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _instant(value: Any, timezone: str) -> datetime | str | None:
    """An ISO 8601 time as a UTC instant; the text itself if it cannot be read."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
        return localize_run_at(moment, parse_timezone(timezone))
    except (ValueError, OverflowError, ScheduleError):
        return str(value)


def summary(changes: list[Change]) -> Counter[Action]:
    """How many changes of each kind."""
    return Counter(change.action for change in changes)
