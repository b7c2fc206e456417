"""`logs list`: the task-log rows, newest at the bottom, optionally followed as they come."""

import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Annotated, Any

import typer

from app.cli.client import PAGE_LIMIT, Api
from app.cli.output import (
    JsonOption,
    cell,
    column,
    print_json,
    print_json_line,
    print_table,
)
from app.cli.service import connect
from app.domain import LogStatus

app = typer.Typer(help="Task logs: one row per delivery attempt.")

# A row can be written a little after its execution_time (attempts are recorded in batches,
# a slow webhook holds its row until it answers): each poll looks back this far, and rows
# already printed are recognised by id.
LOOKBACK = timedelta(seconds=60)
FOLLOW_HELP = "Keep printing new rows as they come, until Ctrl-C."
LINE = (
    "{time:<20}  {status:<7}  {retry:>3}  {trigger:<8}  {http:>4}  {ms:>6}  {task:<36}  {message}"
)
HEADER = LINE.format(
    time="TIME",
    status="STATUS",
    retry="TRY",
    trigger="TRIGGER",
    http="HTTP",
    ms="MS",
    task="TASK",
    message="MESSAGE",
)
COLUMNS = [
    column("TIME", "execution_time"),
    column("TASK", "task_id"),
    column("STATUS", "status"),
    column("TRY", "retry_count"),
    column("TRIGGER", "trigger"),
    column("HTTP", "http_status"),
    column("MS", "duration_ms"),
    column("MESSAGE", "message"),
]


def moment(row: dict[str, Any]) -> datetime:
    """A row's execution_time."""
    return datetime.fromisoformat(row["execution_time"])


def oldest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in the order they happened (the API answers newest first)."""
    return sorted(rows, key=lambda row: (moment(row), row["id"]))


def show(rows: list[dict[str, Any]], *, as_json: bool, stream: bool) -> None:
    """Rows as a table, a JSON array, or (when streaming) one line or JSON object per row."""
    if as_json and stream:
        for row in rows:
            print_json_line(row)
    elif as_json:
        print_json(rows)
    elif stream:
        for row in rows:
            typer.echo(stream_line(row))
    else:
        print_table(rows, COLUMNS)
    sys.stdout.flush()


def stream_line(row: dict[str, Any]) -> str:
    """One row on one line with fixed widths, under HEADER, for --follow."""
    return LINE.format(
        time=cell(row["execution_time"]),
        status=row["status"],
        retry=row["retry_count"],
        trigger=row["trigger"],
        http=cell(row["http_status"]),
        ms=cell(row["duration_ms"]),
        task=row["task_id"],
        message=cell(row["message"]),
    )


@app.command("list")
def list_logs(
    task: Annotated[str | None, typer.Option(help="Only this task's logs (its id).")] = None,
    status: Annotated[LogStatus | None, typer.Option(help="Only these.")] = None,
    since: Annotated[str | None, typer.Option(help="From this time on (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this time (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="The latest this many.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help=FOLLOW_HELP)] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between checks.")] = 2.0,
    max_seconds: Annotated[float | None, typer.Option(hidden=True)] = None,
    as_json: JsonOption = False,
) -> None:
    """List log rows, the latest (oldest of them first); --follow keeps printing new ones."""
    api = connect()
    filters = {"task_id": task, "status": status, "since": since, "until": until}
    pages = api.rows("/task-logs", "task_logs", limit=min(limit, PAGE_LIMIT), **filters)
    rows = oldest_first(list(islice(pages, limit)))
    if not follow:
        show(rows, as_json=as_json, stream=False)
        return
    if not as_json:
        typer.echo(HEADER)
    show(rows, as_json=as_json, stream=True)
    watch = Watch(api, filters, rows, complete=len(rows) < limit)
    try:
        watch.run(interval=interval, max_seconds=max_seconds, as_json=as_json)
    except KeyboardInterrupt:
        return


class Watch:
    """Polls for rows not printed yet: those at most LOOKBACK older than the newest seen.

    When the rows shown first were cut to --limit, the older ones were left out on purpose:
    nothing older than the oldest shown is printed later."""

    def __init__(
        self, api: Api, filters: dict[str, Any], rows: list[dict[str, Any]], *, complete: bool
    ) -> None:
        self.api = api
        self.filters = filters
        self.seen = {row["id"]: moment(row) for row in rows}
        given = parse_moment(filters.get("since"))
        oldest = None if complete or not rows else moment(rows[0])
        self.floor = max((at for at in (given, oldest) if at is not None), default=None)

    def run(self, *, interval: float, max_seconds: float | None, as_json: bool) -> None:
        """Print new rows every `interval` seconds, until Ctrl-C (or `max_seconds`)."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(interval)
            show(self.poll(), as_json=as_json, stream=True)

    def poll(self) -> list[dict[str, Any]]:
        """The rows written since the last poll, oldest first."""
        since = self._since()
        query = self.filters | ({"since": since.isoformat()} if since else {})
        rows = self.api.rows("/task-logs", "task_logs", **query)
        fresh = [row for row in rows if row["id"] not in self.seen]
        self.seen.update((row["id"], moment(row)) for row in fresh)
        if since is not None:
            self.seen = {key: at for key, at in self.seen.items() if at >= since}
        return oldest_first(fresh)

    def _since(self) -> datetime | None:
        """Where the next poll starts: LOOKBACK before the newest row seen, never before the
        --since given."""
        if not self.seen:
            return self.floor
        start = max(self.seen.values()) - LOOKBACK
        return max(start, self.floor) if self.floor else start


def parse_moment(value: str | None) -> datetime | None:
    """An ISO 8601 time (naive: UTC), or None for none or one Python cannot read."""
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed
