"""`keys …`: API keys with scopes (create, list, revoke); needs an admin token."""

from typing import Annotated

import typer

from app.cli.client import segment
from app.cli.output import JsonOption, column, print_json, print_record, print_table
from app.cli.service import connect
from app.domain import Scope

app = typer.Typer(help="API keys with scopes: create, list, revoke (admin only).")

COLUMNS = [
    column("ID", "id"),
    column("NAME", "name"),
    column("SCOPES", "scopes"),
    column("EXPIRES", "expires_at"),
    column("LAST USED", "last_used_at"),
    column("REVOKED", "revoked_at"),
]


@app.command("create")
def create_key(
    name: Annotated[str, typer.Option(help="What the key is for.", show_default=False)],
    scope: Annotated[
        list[Scope], typer.Option(help="A scope it has (repeat for several).", show_default=False)
    ],
    expires_at: Annotated[
        str | None, typer.Option(help="When it stops working (ISO 8601).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key; the key itself is shown this once."""
    body = {"name": name, "scopes": list(dict.fromkeys(scope)), "expires_at": expires_at}
    created = connect().post("/api-keys", {k: v for k, v in body.items() if v is not None})
    if as_json:
        print_json(created)
        return
    print_record(created, ["id", "name", "scopes", "expires_at", "key"])
    typer.echo("Keep the key now: it cannot be shown again.", err=True)


@app.command("list")
def list_keys(as_json: JsonOption = False) -> None:
    """List the keys (never the keys themselves), newest first."""
    keys = connect().get("/api-keys")["api_keys"]
    if as_json:
        print_json(keys)
    else:
        print_table(keys, COLUMNS)


@app.command("revoke")
def revoke_key(
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id (see `keys list`).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: it is refused from now on."""
    revoked = connect().delete(f"/api-keys/{segment(key_id)}")
    if as_json:
        print_json(revoked)
    else:
        typer.echo(f"revoked key {revoked['id']} ({revoked['name']})")
