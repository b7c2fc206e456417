"""What the client commands print: aligned tables and `key: value` records for people, JSON
for programs (`--json`)."""

import json
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for programs).")]
# 2026-11-30T08:00:00.012000Z -> 2026-11-30 08:00:00Z: seconds are enough for people.
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")
MAX_CELL_CHARS = 60

Column = tuple[str, Callable[[dict[str, Any]], Any]]


def column(header: str, key: str) -> Column:
    """A table column showing one field of each row."""
    return header, lambda row: row.get(key)


def text(value: Any) -> str:
    """A value as people read it: `-` for nothing, timestamps to the second, JSON for objects."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    shown = str(value)
    match = _TIMESTAMP.match(shown)
    return f"{match[1]} {match[2]}{match[3]}" if match else shown


def cell(value: Any) -> str:
    """A table cell: one line, cut to MAX_CELL_CHARS."""
    shown = " ".join(text(value).split())
    return shown if len(shown) <= MAX_CELL_CHARS else shown[: MAX_CELL_CHARS - 3] + "..."


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> None:
    """Rows as aligned columns under upper-case headers (`(none)` when there are none)."""
    if not rows:
        typer.echo("(none)")
        return
    grid = [[header for header, _ in columns]]
    grid += [[cell(value(row)) for _, value in columns] for row in rows]
    widths = [max(len(line[index]) for line in grid) for index in range(len(columns))]
    for line in grid:
        padded = (item.ljust(width) for item, width in zip(line, widths, strict=True))
        typer.echo("  ".join(padded).rstrip())


def print_record(record: dict[str, Any], fields: Sequence[str] | None = None) -> None:
    """One object as `key: value` lines, in the given order (default: the object's own)."""
    names = list(fields) if fields is not None else list(record)
    width = max((len(name) for name in names), default=0)
    for name in names:
        typer.echo(f"{name + ':':<{width + 1}} {text(record.get(name))}")


def print_json(value: Any) -> None:
    """A value as indented JSON."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def print_json_line(value: Any) -> None:
    """A value as one line of JSON (for streams such as `logs list --follow --json`)."""
    typer.echo(json.dumps(value, ensure_ascii=False))
