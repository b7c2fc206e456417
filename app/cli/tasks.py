"""`tasks …`: list, show, create, change, delete, run, pause and resume tasks over the API."""

import json
from itertools import islice
from typing import Annotated, Any

import typer

from app.cli.client import PAGE_LIMIT, segment
from app.cli.output import JsonOption, column, print_json, print_record, print_table, text
from app.cli.service import connect
from app.domain import Catchup, DiscordMode, TaskStatus

app = typer.Typer(help="Tasks: list, get, create, update, delete, run, pause, resume.")

TaskId = Annotated[
    str,
    typer.Argument(metavar="TASK_ID", help="The task's id (see `tasks list`).", show_default=False),
]
Name = Annotated[str | None, typer.Option(help="1-200 characters.", show_default=False)]
Schedule = Annotated[
    str | None,
    typer.Option(help="Cron ('0 9 * * MON-FRI'), a macro (@daily) or an interval (@every 30m)."),
]
RunAt = Annotated[
    str | None,
    typer.Option(help="One-time task: ISO 8601; without an offset it is read in --timezone."),
]
Timezone = Annotated[str | None, typer.Option(help="IANA name; default UTC.")]
CatchupOption = Annotated[Catchup | None, typer.Option(help="Missed runs: default latest.")]
WebhookUrl = Annotated[str | None, typer.Option(help="Where the payload is POSTed.")]
Payload = Annotated[str | None, typer.Option(help="The JSON object sent; default {}.")]
MaxRetry = Annotated[int | None, typer.Option(min=0, max=20, help="Retries; default 3.")]
Status = Annotated[TaskStatus | None, typer.Option(help="Default active.")]
AutoResume = Annotated[
    bool | None,
    typer.Option("--auto-resume/--no-auto-resume", help="Try again after transient failures."),
]
Template = Annotated[
    bool | None, typer.Option("--template/--no-template", help="Render the payload (Jinja2).")
]
Mode = Annotated[DiscordMode | None, typer.Option(help="Discord: post, edit or replace.")]
DeleteAfter = Annotated[
    int | None,
    typer.Option("--delete-after-seconds", min=1, help="Discord: delete each message this late."),
]
LIST_COLUMNS = [
    column("ID", "id"),
    column("NAME", "name"),
    ("SCHEDULE", lambda task: task["schedule"] or f"once at {text(task['run_at'])}"),
    column("TIMEZONE", "timezone"),
    column("STATUS", "status"),
    column("NEXT RUN", "next_run_at"),
    column("LAST", "last_status"),
]
NOT_FIELDS = {"task_id", "as_json"}


def task_body(values: dict[str, Any]) -> dict[str, Any]:
    """The fields given on the command line (None: not given), the payload parsed as JSON."""
    body = {key: value for key, value in values.items() if key not in NOT_FIELDS}
    body = {key: value for key, value in body.items() if value is not None}
    if "payload" in body:
        try:
            body["payload"] = json.loads(body["payload"])
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    return body


def show_task(task: dict[str, Any], as_json: bool) -> None:
    """One task, as JSON or as `key: value` lines."""
    if as_json:
        print_json(task)
    else:
        print_record(task)


@app.command("list")
def list_tasks(
    status: Annotated[TaskStatus | None, typer.Option(help="Only these.")] = None,
    search: Annotated[str | None, typer.Option(help="Part of the name.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List tasks, newest first (all of them unless --limit)."""
    page = min(limit or PAGE_LIMIT, PAGE_LIMIT)
    rows = connect().rows("/tasks", "tasks", status=status, search=search, limit=page)
    tasks = list(islice(rows, limit))
    if as_json:
        print_json(tasks)
    else:
        print_table(tasks, LIST_COLUMNS)


@app.command("get")
def get_task(task_id: TaskId, as_json: JsonOption = False) -> None:
    """Show one task."""
    show_task(connect().get(f"/tasks/{segment(task_id)}"), as_json)


@app.command("create")
def create_task(
    name: Annotated[str, typer.Option(help="1-200 characters.", show_default=False)],
    webhook_url: Annotated[str, typer.Option(help="Where the payload is POSTed.")],
    schedule: Schedule = None,
    run_at: RunAt = None,
    timezone: Timezone = None,
    catchup: CatchupOption = None,
    payload: Payload = None,
    max_retry: MaxRetry = None,
    status: Status = None,
    auto_resume: AutoResume = None,
    template: Template = None,
    discord_mode: Mode = None,
    delete_after_seconds: DeleteAfter = None,
    as_json: JsonOption = False,
) -> None:
    """Create a task: a --schedule, or a --run-at for a one-time task."""
    show_task(connect().post("/tasks", task_body(locals())), as_json)


@app.command("update")
def update_task(
    task_id: TaskId,
    name: Name = None,
    schedule: Schedule = None,
    run_at: RunAt = None,
    timezone: Timezone = None,
    catchup: CatchupOption = None,
    webhook_url: WebhookUrl = None,
    payload: Payload = None,
    max_retry: MaxRetry = None,
    status: Status = None,
    auto_resume: AutoResume = None,
    template: Template = None,
    discord_mode: Mode = None,
    delete_after_seconds: DeleteAfter = None,
    as_json: JsonOption = False,
) -> None:
    """Change a task: only the options given change."""
    body = task_body(locals())
    if not body:
        raise typer.BadParameter("give at least one field to change, e.g. --payload")
    show_task(connect().patch(f"/tasks/{segment(task_id)}", body), as_json)


@app.command("delete")
def delete_task(task_id: TaskId) -> None:
    """Delete a task and its logs."""
    connect().delete(f"/tasks/{segment(task_id)}")
    typer.echo(f"deleted task {task_id}")


@app.command("run")
def run_task(task_id: TaskId, as_json: JsonOption = False) -> None:
    """Deliver a task now, also an inactive one."""
    queued = connect().post(f"/tasks/{segment(task_id)}/execute")
    if as_json:
        print_json(queued)
        return
    typer.echo(f"queued task {task_id}: occurrence {queued['occurrence_id']}")
    typer.echo(f"see how it went with: logs list --task {task_id}")


@app.command("pause")
def pause_task(task_id: TaskId, as_json: JsonOption = False) -> None:
    """Make a task inactive."""
    show_status(connect().post(f"/tasks/{segment(task_id)}/pause"), as_json)


@app.command("resume")
def resume_task(task_id: TaskId, as_json: JsonOption = False) -> None:
    """Make a task active again (its next run counted from now)."""
    show_status(connect().post(f"/tasks/{segment(task_id)}/resume"), as_json)


def show_status(task: dict[str, Any], as_json: bool) -> None:
    """A task's status after a pause or resume."""
    if as_json:
        print_json(task)
        return
    print_record(task, ["id", "name", "status", "status_reason", "next_run_at"])


@app.command("next-runs")
def next_runs(
    task_id: TaskId,
    count: Annotated[int, typer.Option(min=1, max=100, help="How many.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """When a task fires next, in UTC and in its timezone."""
    runs = connect().get(f"/tasks/{segment(task_id)}/next-runs", count=count)
    if as_json:
        print_json(runs)
        return
    print_table(
        runs["next_runs"], [column("UTC", "utc"), column(f"LOCAL ({runs['timezone']})", "local")]
    )


@app.command("preview")
def preview_task(task_id: TaskId, as_json: JsonOption = False) -> None:
    """What the next run would send (a template rendered for it)."""
    preview = connect().post(f"/tasks/{segment(task_id)}/preview")
    if as_json:
        print_json(preview)
        return
    typer.echo(f"scheduled for: {text(preview['scheduled_for'])}")
    print_json(preview["payload"])
