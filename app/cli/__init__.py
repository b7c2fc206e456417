"""The command line: `python main.py` (or `insignia`) serves by default; its commands run the
service (`serve`, `token`, `version`) or talk to a running one over its HTTP API (`tasks`,
`logs`, `keys`, `apply`, `export`), at INSIGNIA_URL with INSIGNIA_TOKEN."""

import os
import sys

import typer

from app.cli import apply, keys, logs, service, tasks
from app.cli.client import DEFAULT_URL, TOKEN_VARIABLE, URL_VARIABLE, ApiError

HELP = (
    "Insignia Task Scheduler: scheduled webhook notifications.\n\n"
    "Without a command it serves the API and runs the scheduler (as `serve`).\n\n"
    f"The client commands (tasks, logs, keys, apply, export) use the API at {URL_VARIABLE} "
    f"(default {DEFAULT_URL}) with the token {TOKEN_VARIABLE} (default: the local service's, "
    "as `token` prints it). They print tables, or JSON with --json, and exit 1 with the API's "
    "error."
)
COMPLETE_VARIABLE = "_INSIGNIA_COMPLETE"

app = typer.Typer(
    help=HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.command("serve")(service.serve)
app.command("token")(service.token)
app.command("version")(service.version)
app.add_typer(tasks.app, name="tasks")
app.add_typer(logs.app, name="logs")
app.add_typer(keys.app, name="keys")
app.command("apply")(apply.apply)
app.command("export")(apply.export)


@app.callback(invoke_without_command=True)
def default(context: typer.Context) -> None:
    """Serve when no command is given."""
    if context.invoked_subcommand is None:
        service.serve()


def program_name() -> str:
    """`insignia` when run as that command, else `python main.py`."""
    name = os.path.basename(sys.argv[0]) if sys.argv else ""
    return "insignia" if name.startswith("insignia") else "python main.py"


def main() -> int:
    """Run the command line; an API error is one line on stderr and exit status 1."""
    try:
        app(prog_name=program_name(), complete_var=COMPLETE_VARIABLE)
    except ApiError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    return 0
