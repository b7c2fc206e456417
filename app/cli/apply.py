"""`apply` (make the server's tasks match a file) and `export` (the server's tasks as a file
that `apply` takes back unchanged)."""

import json
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from app.cli.client import Api, ApiError
from app.cli.config_files import FileProblem, export_document, exported_task, read_tasks
from app.cli.output import JsonOption, print_json
from app.cli.plan import Action, Change, PlanError, plan, summary
from app.cli.service import connect

T = TypeVar("T")
SIGNS = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.UNCHANGED: "="}
REDACTED = "***"
MAX_VALUE_CHARS = 200
FILE_HELP = "The tasks: YAML or JSON (- reads standard input)."


def apply(
    file: Annotated[str, typer.Option("--file", "-f", help=FILE_HELP, show_default=False)],
    prune: Annotated[bool, typer.Option(help="Delete the tasks the file does not name.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the plan; change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Make the server's tasks match a file; prints the plan."""
    wanted = checked(lambda: read_tasks(file))
    api = connect()
    on_server = list(api.rows("/tasks", "tasks"))
    changes = checked(lambda: plan(wanted, on_server, prune=prune))
    untouched = 0 if prune else len({t["name"] for t in on_server} - {t["name"] for t in wanted})
    if not as_json:
        show_plan(changes, untouched=untouched, dry_run=dry_run)
    pending = [change for change in changes if change.action != Action.UNCHANGED]
    made = [] if dry_run else carry_out(api, pending)
    if as_json:
        made_ids = iter(made)
        ids = [next(made_ids) if made and c in pending else c.task_id for c in changes]
        print_json({"dry_run": dry_run, "changes": list(map(as_dict, changes, ids))})
    elif made:
        counts = summary(pending)
        typer.echo(
            f"Applied: {counts[Action.CREATE]} created, {counts[Action.UPDATE]} updated, "
            f"{counts[Action.DELETE]} deleted."
        )


def checked(step: Callable[[], T]) -> T:
    """The step's result; for a bad file or an ambiguous name, each problem on stderr and
    exit status 1."""
    try:
        return step()
    except (FileProblem, PlanError) as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None


def show_plan(changes: list[Change], *, untouched: int, dry_run: bool) -> None:
    """The plan for people: one line per task, the changed fields of an update under it."""
    for change in changes:
        where = f"  ({change.task_id})" if change.task_id else ""
        typer.echo(f"{SIGNS[change.action]} {change.action:<9}  {change.name}{where}")
        for field in change.fields:
            typer.echo(f"      {field.name}: {shown(field.old)} -> {shown(field.new)}")
    counts = summary(changes)
    if counts.keys() <= {Action.UNCHANGED}:
        typer.echo(f"Nothing to do: {counts[Action.UNCHANGED]} unchanged.")
    else:
        typer.echo(
            f"Plan: {counts[Action.CREATE]} to create, {counts[Action.UPDATE]} to update, "
            f"{counts[Action.DELETE]} to delete, {counts[Action.UNCHANGED]} unchanged."
        )
    if untouched:
        typer.echo(f"{untouched} other task name(s) on the server: kept (--prune deletes them).")
    if dry_run:
        typer.echo("Dry run: nothing was changed.")


def shown(value: Any) -> str:
    """A field's value in the plan: JSON, cut to MAX_VALUE_CHARS."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def carry_out(api: Api, pending: list[Change]) -> list[str]:
    """Make the changes in order; the id of each task touched. On a refusal, ApiError naming
    the task and how many changes were made before it."""
    ids: list[str] = []
    for done, change in enumerate(pending):
        try:
            ids.append(_send(api, change))
        except ApiError as exc:
            raise ApiError(
                f'task "{change.name}": {exc}; stopped after {done} of {len(pending)} changes',
                status=exc.status,
            ) from None
    return ids


def _send(api: Api, change: Change) -> str:
    """One change through the API; the task's id."""
    if change.action == Action.CREATE:
        return api.post("/tasks", change.body)["id"]
    assert change.task_id is not None
    if change.action == Action.UPDATE:
        api.patch(f"/tasks/{change.task_id}", change.body)
    else:
        api.delete(f"/tasks/{change.task_id}")
    return change.task_id


def as_dict(change: Change, task_id: str | None) -> dict[str, Any]:
    """A change for --json: action, name, id (of a created task once made), changed fields."""
    return {
        "action": change.action.value,
        "name": change.name,
        "id": task_id or change.task_id,
        "fields": {field.name: {"old": field.old, "new": field.new} for field in change.fields},
    }


def export(as_json: JsonOption = False) -> None:
    """Print every task as YAML that `apply -f` takes back unchanged."""
    tasks = list(connect().rows("/tasks", "tasks"))
    _refuse_unexportable(tasks)
    if as_json:
        ordered = sorted(tasks, key=lambda task: (task["name"], task["id"]))
        print_json({"tasks": [exported_task(task) for task in ordered]})
    else:
        typer.echo(export_document(tasks), nl=False)


def _refuse_unexportable(tasks: list[dict[str, Any]]) -> None:
    """Exit 1 for what `apply` could not take back: shared names, webhook URLs hidden from a
    key without tasks:write."""
    counts = Counter(task["name"] for task in tasks)
    problems = [
        f'{counts[name]} tasks are named "{name}" ({", ".join(ids_named(tasks, name))}): '
        "apply matches tasks by name; rename all but one"
        for name in sorted(name for name, count in counts.items() if count > 1)
    ]
    if any(REDACTED in task["webhook_url"] for task in tasks):
        problems.append("webhook URLs are hidden from this key: export with a tasks:write key")
    checked(lambda: _raise(problems))


def ids_named(tasks: list[dict[str, Any]], name: str) -> list[str]:
    """The ids of the tasks with this name."""
    return [task["id"] for task in tasks if task["name"] == name]


def _raise(problems: list[str]) -> None:
    """PlanError for these problems, if any."""
    if problems:
        raise PlanError(problems)
