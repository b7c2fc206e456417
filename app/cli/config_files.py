"""Task files for `apply` and `export`: YAML (or JSON, which YAML reads too), either a list of
tasks or `{"tasks": [...]}`. Each task has the fields of `POST /tasks`; the read-only fields a
GET shows (`id`, `created_at`, ...) may stay in and are ignored.

Every task of a file is checked here, with the API's own rules for each field, before anything
is sent, so a bad file changes nothing and names each bad task and field. (Rules that need the
server's settings, such as private webhook targets, are checked by the server when applying.)
"""

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError

HEADER = (
    "# Insignia Task Scheduler tasks, as `export` wrote them. `apply -f` this file to make a\n"
    "# server's tasks match it (tasks are matched by name; --prune deletes the others).\n"
)
UNKNOWN_FIELD = "not a task field"


class FileProblem(ValueError):
    """A task file that cannot be applied; `problems` says why, one a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def read_tasks(path: str) -> list[dict[str, Any]]:
    """The tasks of the file at `path` (`-`: standard input), checked, with their defaults.
    FileProblem naming each bad task and field."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise FileProblem([f"{path}: cannot read it: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise FileProblem([f"{path}: not YAML or JSON: {' '.join(str(exc).split())}"]) from None
    items = _task_items(data, path)
    tasks: list[dict[str, Any]] = []
    problems: list[str] = []
    for number, item in enumerate(items, start=1):
        try:
            tasks.append(desired_task(item))
        except ValidationError as exc:
            problems += [f"{path}: {_which(item, number)}: {line}" for line in _field_lines(exc)]
        except ValueError as exc:
            problems.append(f"{path}: {_which(item, number)}: {exc}")
    if problems:
        raise FileProblem(problems)
    return tasks


def _task_items(data: Any, path: str) -> list[Any]:
    """The list of tasks in a file: the file itself, or its `tasks` (an empty file: none)."""
    if data is None:
        return []
    if isinstance(data, dict) and set(data) <= {"tasks"}:
        data = data.get("tasks") or []
    if not isinstance(data, list):
        raise FileProblem([f'{path}: expected a list of tasks, or "tasks:" with a list'])
    return data


def _which(item: Any, number: int) -> str:
    """How a problem names its task: by name when it has one, and by position."""
    name = item.get("name") if isinstance(item, dict) else None
    return f'task "{name}" (#{number})' if isinstance(name, str) else f"task #{number}"


def _field_lines(exc: ValidationError) -> list[str]:
    """`field: message` for each error of one task."""
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = UNKNOWN_FIELD
        lines.append(f"{loc}: {message}" if loc else message)
    return lines


def desired_task(item: Any) -> dict[str, Any]:
    """One task of a file as `plan` takes it: every field, defaults filled in, except `status`
    when the file does not give it. ValidationError as the API would answer it."""
    from app.schemas import TaskCreate  # the API's own rules (imported when a file is read)

    task = TaskCreate.model_validate(_plain(item))
    values = task.model_dump(mode="json")
    if "status" not in task.model_fields_set:
        del values["status"]
    return values


def _plain(value: Any, where: str = "") -> Any:
    """YAML's dates and times as the ISO 8601 text the API reads, everywhere in a value.
    ValueError naming the place of a key that is not text (YAML 1.1 reads on, off, yes and no
    as booleans)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item, f"{where}.{index}") for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    for key in value:
        if not isinstance(key, str):
            raise ValueError(
                f"{where.lstrip('.') or 'task'}: the key {key!r} is not text: quote it "
                "(YAML reads on, off, yes and no as true and false)"
            )
    return {key: _plain(item, f"{where}.{key}") for key, item in value.items()}


def exported_task(task: dict[str, Any]) -> dict[str, Any]:
    """A server's task as a file's: its writable fields, those at their default left out.

    `run_at` is written in the task's timezone. `status: inactive` is written for a task that
    stays inactive (paused, delivered, given up on), not for one the service will try again by
    itself (`resume_at`), whose status the service manages."""
    from app.schemas import TaskCreate

    exported = {}
    for name, info in TaskCreate.model_fields.items():
        value = task.get(name)
        if info.is_required() or value != info.get_default(call_default_factory=True):
            exported[name] = value
    if task.get("resume_at") is not None:
        exported.pop("status", None)
    _one_form_of_webhooks(exported)
    if not exported.get("tags"):
        exported.pop("tags", None)
    if exported.get("run_at") is not None:
        exported["run_at"] = _local_time(exported["run_at"], task.get("timezone") or "UTC")
    return exported


def _one_form_of_webhooks(exported: dict[str, Any]) -> None:
    """Keep `webhook_url` for a task with one webhook, `webhook_urls` for a fan-out task (the
    API shows both)."""
    urls = exported.get("webhook_urls")
    if isinstance(urls, list) and len(urls) > 1:
        exported.pop("webhook_url", None)
    else:
        exported.pop("webhook_urls", None)


def _local_time(value: str, timezone: str) -> str:
    """An ISO 8601 instant in the given timezone, with its offset (as is if it cannot be)."""
    try:
        return datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)).isoformat()
    except (ValueError, OverflowError, ZoneInfoNotFoundError):
        return value


def export_document(tasks: list[dict[str, Any]]) -> str:
    """The YAML text of `export`: the tasks sorted by name."""
    ordered = sorted(tasks, key=lambda task: (task["name"], task["id"]))
    document = {"tasks": [exported_task(task) for task in ordered]}
    return HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
