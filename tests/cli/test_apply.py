"""`apply` and `export` against the real service (SQLite and PostgreSQL)."""

import json
from pathlib import Path

from tests.cli.conftest import Cli

TASKS = """\
tasks:
  - name: Stand-up
    schedule: 0 9 * * mon-fri
    timezone: Europe/Paris
    webhook_url: https://hooks.example.com/stand-up
    payload:
      content: "Stand-up in 5 minutes! \u2728"
  - name: Launch
    run_at: 2030-01-15T10:00:00
    timezone: America/New_York
    webhook_url: https://hooks.example.com/launch
    payload: {event: launch, day: 2030-01-15}
    max_retry: 5
  - name: Paused
    schedule: "@every 90m"
    webhook_url: https://hooks.example.com/paused
    status: inactive
"""


def write(tmp_path: Path, text: str, name: str = "tasks.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def by_name(cli: Cli) -> dict[str, dict]:
    return {task["name"]: task for task in cli.tasks()}


def test_apply_creates_then_has_nothing_to_do(cli: Cli, tmp_path: Path):
    path = write(tmp_path, TASKS)
    dry = cli.ok("apply", "-f", path, "--dry-run")
    assert dry.splitlines() == [
        "+ create     Stand-up",
        "+ create     Launch",
        "+ create     Paused",
        "Plan: 3 to create, 0 to update, 0 to delete, 0 unchanged.",
        "Dry run: nothing was changed.",
    ]
    assert cli.tasks() == []

    assert (
        cli.ok("apply", "-f", path).splitlines()[-1] == "Applied: 3 created, 0 updated, 0 deleted."
    )
    tasks = by_name(cli)
    assert tasks["Stand-up"]["schedule"] == "0 9 * * MON-FRI"
    assert tasks["Stand-up"]["payload"] == {"content": "Stand-up in 5 minutes! \u2728"}
    assert tasks["Launch"]["run_at"] == "2030-01-15T15:00:00Z"
    assert tasks["Launch"]["payload"] == {"event": "launch", "day": "2030-01-15"}
    assert (tasks["Launch"]["max_retry"], tasks["Paused"]["status"]) == (5, "inactive")

    again = cli.ok("apply", "-f", path).splitlines()
    assert again[-1] == "Nothing to do: 3 unchanged."
    assert again[0] == f"= unchanged  Stand-up  ({tasks['Stand-up']['id']})"
    as_json = cli.json("apply", "-f", path)
    assert [change["action"] for change in as_json["changes"]] == ["unchanged"] * 3
    assert by_name(cli) == tasks  # nothing moved, not even updated_at


def test_apply_updates_field_by_field_and_prunes(cli: Cli, tmp_path: Path):
    cli.ok("apply", "-f", write(tmp_path, TASKS))
    before = by_name(cli)
    cli.api(
        "POST",
        "/tasks",
        json={"name": "Manual", "schedule": "@daily", "webhook_url": "https://hooks.example.com/m"},
    )
    changed = TASKS.replace("max_retry: 5", "max_retry: 7").replace(
        '  - name: Paused\n    schedule: "@every 90m"\n'
        "    webhook_url: https://hooks.example.com/paused\n    status: inactive\n",
        "",
    )
    path = write(tmp_path, changed, "changed.yaml")

    kept = cli.ok("apply", "-f", path, "--dry-run").splitlines()
    assert f"~ update     Launch  ({before['Launch']['id']})" in kept
    assert "      max_retry: 5 -> 7" in kept
    assert "2 other task name(s) on the server: kept (--prune deletes them)." in kept

    plan = cli.ok("apply", "-f", path, "--prune", "--dry-run").splitlines()
    assert plan[:5] == [
        f"= unchanged  Stand-up  ({before['Stand-up']['id']})",
        f"~ update     Launch  ({before['Launch']['id']})",
        "      max_retry: 5 -> 7",
        "- delete     Manual  (" + by_name(cli)["Manual"]["id"] + ")",
        f"- delete     Paused  ({before['Paused']['id']})",
    ]
    assert plan[5] == "Plan: 0 to create, 1 to update, 2 to delete, 1 unchanged."
    assert len(cli.tasks()) == 4  # a dry run changes nothing

    result = cli.json("apply", "-f", path, "--prune")
    assert [(c["action"], c["name"]) for c in result["changes"]] == [
        ("unchanged", "Stand-up"),
        ("update", "Launch"),
        ("delete", "Manual"),
        ("delete", "Paused"),
    ]
    assert result["changes"][1]["fields"] == {"max_retry": {"old": 5, "new": 7}}
    after = by_name(cli)
    assert sorted(after) == ["Launch", "Stand-up"]
    assert after["Launch"]["id"] == before["Launch"]["id"]  # updated in place, not replaced
    assert after["Launch"]["max_retry"] == 7
    assert after["Stand-up"] == before["Stand-up"]
    assert cli.ok("apply", "-f", path, "--prune").splitlines()[-1] == "Nothing to do: 2 unchanged."


ODD_TASKS = [
    {
        "name": "yes",
        "schedule": "@every 1h30m",
        "webhook_url": "https://hooks.example.com/a",
        "payload": {"content": "no", "n": "0123", "f": 1.5, "t": True, "z": None, "list": [1, "2"]},
        "catchup": "all",
        "max_retry": 0,
        "auto_resume": False,
    },
    {
        "name": "Board: status #1",
        "schedule": "*/5 * * * *",
        "template": True,
        "discord_mode": "edit",
        "delete_after_seconds": 3600,
        "webhook_url": "https://discord.com/api/webhooks/123/abc?thread_id=456",
        "payload": {"embeds": [{"title": "Status", "description": "{{ scheduled_for|iso }}"}]},
    },
    {
        "name": "Caf\u00e9 \u2728 'quoted' \"twice\"",
        "run_at": "2030-03-30T02:30:00",
        "timezone": "Europe/Paris",
        "webhook_url": "https://hooks.example.com/b",
        "payload": {"content": "two\nlines\n  indented", "trailing": "space "},
    },
    {
        "name": "@daily",
        "schedule": "@daily",
        "webhook_url": "https://hooks.example.com/c",
        "status": "inactive",
    },
]


def test_export_and_apply_take_each_other_back_unchanged(cli: Cli, tmp_path: Path):
    for task in ODD_TASKS:
        cli.api("POST", "/tasks", json=task)
    hourly = {"name": "Paused", "schedule": "@hourly", "webhook_url": "https://a.example.com"}
    paused = cli.api("POST", "/tasks", json=hourly)
    cli.api("POST", f"/tasks/{paused['id']}/pause")
    before = by_name(cli)

    exported = cli.ok("export")
    path = write(tmp_path, exported, "export.yaml")
    assert cli.ok("apply", "-f", path).splitlines()[-1] == "Nothing to do: 5 unchanged."
    assert by_name(cli) == before
    as_json = cli.ok("export", "--json")
    assert cli.ok("apply", "-f", "-", stdin=as_json).splitlines()[-1] == (
        "Nothing to do: 5 unchanged."
    )

    # Onto an empty server, then exported again: the same file, byte for byte.
    for task in cli.tasks():
        cli.api("DELETE", f"/tasks/{task['id']}")
    assert (
        cli.ok("apply", "-f", path).splitlines()[-1] == "Applied: 5 created, 0 updated, 0 deleted."
    )
    assert cli.ok("export") == exported
    again = by_name(cli)
    assert again["Paused"]["status"] == "inactive"
    for name, task in before.items():
        for field in ("schedule", "run_at", "timezone", "payload", "webhook_url", "status"):
            assert again[name][field] == task[field], (name, field)


def test_a_bad_file_names_the_task_and_field_and_changes_nothing(cli: Cli, tmp_path: Path):
    bad = (
        TASKS.replace("0 9 * * mon-fri", "0 9 * * moon")
        .replace("max_retry: 5", "max_retry: x")
        .replace("day: 2030", "on: 2030")
        .replace("status: inactive", "status: paused")
    )
    path = write(tmp_path, bad)
    lines = cli.fails("apply", "-f", path)
    assert len(lines) == 3
    assert lines[0].startswith(f'error: {path}: task "Stand-up" (#1): schedule: invalid cron')
    assert lines[1] == (
        f'error: {path}: task "Launch" (#2): payload: the key True is not text: quote it '
        "(YAML reads on, off, yes and no as true and false)"
    )
    assert lines[2] == (
        f"error: {path}: task \"Paused\" (#3): status: Input should be 'active' or 'inactive'"
    )
    assert cli.tasks() == []

    duplicate = TASKS + "  - name: Launch\n    schedule: '@daily'\n    webhook_url: https://a.b/c\n"
    assert cli.fails("apply", "-f", write(tmp_path, duplicate, "dup.yaml")) == [
        'error: the file has 2 tasks named "Launch": names must be unique'
    ]
    assert cli.tasks() == []


def test_a_refusal_by_the_server_names_the_task_and_stops(cli: Cli, tmp_path: Path):
    too_long = "x" * 2001  # over Discord's limit, which only the server checks
    text = TASKS + (
        "  - name: Too long\n    schedule: '@daily'\n"
        "    webhook_url: https://discord.com/api/webhooks/1/abc\n"
        f"    payload: {{content: {too_long}}}\n"
        "  - name: Never reached\n    schedule: '@daily'\n    webhook_url: https://a.example.com\n"
    )
    result = cli("apply", "-f", write(tmp_path, text))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        'error: task "Too long": payload: content: at most 2000 characters (got 2001) '
        "(HTTP 422); stopped after 3 of 5 changes"
    ]
    assert sorted(by_name(cli)) == ["Launch", "Paused", "Stand-up"]


def test_tasks_sharing_a_name_on_the_server_are_named(cli: Cli, tmp_path: Path):
    body = {"name": "Launch", "schedule": "@daily", "webhook_url": "https://a.example.com"}
    ids = sorted(cli.api("POST", "/tasks", json=body)["id"] for _ in range(2))
    [line] = cli.fails("apply", "-f", write(tmp_path, TASKS))
    assert line.startswith('error: the server has 2 tasks named "Launch" (')
    assert all(task_id in line for task_id in ids)
    [line] = cli.fails("export")
    assert line.startswith('error: 2 tasks are named "Launch" (')
    assert json.loads(cli.ok("tasks", "list", "--json")) != []
