"""Each client command against the real service (SQLite and PostgreSQL): what it prints, what it
changed on the server, and the one-line error when the API refuses."""

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

from harness import ROOT
from harness.service import ServiceProcess
from harness.waiting import wait_until
from tests.cli.conftest import Cli, clean_env, run_main
from tests.conftest import TEST_TOKEN

HOOK = "https://hooks.example.com/cli"


def create(cli: Cli, name: str = "Stand-up", **fields: str) -> dict:
    args = ["tasks", "create", "--name", name, "--webhook-url", HOOK]
    for option, value in ({"schedule": "0 9 * * MON-FRI"} | fields).items():
        args += [f"--{option.replace('_', '-')}", value]
    return cli.json(*args)


def test_tasks_commands(cli: Cli):
    task = create(cli, timezone="Europe/Paris", payload='{"content": "Stand-up!"}', max_retry="5")
    task_id = task["id"]
    assert cli.api("GET", f"/tasks/{task_id}")["payload"] == {"content": "Stand-up!"}
    assert (task["timezone"], task["max_retry"], task["status"]) == ("Europe/Paris", 5, "active")

    shown = cli.ok("tasks", "get", task_id)
    assert "name:                 Stand-up\n" in shown
    assert "schedule:             0 9 * * MON-FRI\n" in shown
    header, row = cli.ok("tasks", "list").splitlines()
    assert header.split() == ["ID", "NAME", "SCHEDULE", "TIMEZONE", "STATUS", "NEXT", "RUN", "LAST"]
    assert row.startswith(f"{task_id}  Stand-up  0 9 * * MON-FRI  Europe/Paris  active")
    create(cli, "Other", schedule="@hourly")
    assert [t["name"] for t in cli.json("tasks", "list")] == ["Other", "Stand-up"]
    assert [t["name"] for t in cli.json("tasks", "list", "--search", "stand")] == ["Stand-up"]
    assert len(cli.json("tasks", "list", "--limit", "1")) == 1

    cli.ok("tasks", "update", task_id, "--payload", '{"content": "New"}', "--no-auto-resume")
    changed = cli.api("GET", f"/tasks/{task_id}")
    assert (changed["payload"], changed["auto_resume"], changed["max_retry"]) == (
        {"content": "New"},
        False,
        5,
    )

    paused = cli.ok("tasks", "pause", task_id)
    assert "status:        inactive" in paused
    assert cli.api("GET", f"/tasks/{task_id}")["status"] == "inactive"
    assert "status:        active" in cli.ok("tasks", "resume", task_id)

    runs = cli.json("tasks", "next-runs", task_id, "--count", "3")
    assert len(runs["next_runs"]) == 3
    lines = cli.ok("tasks", "next-runs", task_id, "--count", "2").splitlines()
    assert lines[0].split() == ["UTC", "LOCAL", "(Europe/Paris)"]
    assert len(lines) == 3 and lines[1].endswith(("+01:00", "+02:00"))
    preview = cli.ok("tasks", "preview", task_id)
    assert preview.startswith("scheduled for: ")
    assert json.loads(preview.split("\n", 1)[1]) == {"content": "New"}

    queued = cli.json("tasks", "run", task_id)
    assert queued["task_id"] == task_id and queued["occurrence_id"]
    assert cli.ok("tasks", "run", task_id).startswith(f"queued task {task_id}: occurrence ")

    assert cli.ok("tasks", "delete", task_id) == f"deleted task {task_id}\n"
    assert cli.fails("tasks", "get", task_id) == ["error: Task not found (HTTP 404)"]


def test_an_api_refusal_is_one_line_naming_the_field(cli: Cli):
    bad_cron = ["--schedule", "0 25 * * *"]
    assert cli.fails("tasks", "create", "--name", "x", "--webhook-url", HOOK, *bad_cron) == [
        "error: schedule: invalid cron expression '0 25 * * *': hour must be 0-23 (HTTP 422)"
    ]
    [line] = cli.fails(
        "tasks", "create", "--name", "x", "--webhook-url", "ftp://x", "--timezone", "Mars/Base"
    )
    assert line.startswith("error: timezone: ") and "; webhook_url: " in line
    assert cli.fails("tasks", "update", "nope", "--max-retry", "2") == [
        "error: Task not found (HTTP 404)"
    ]
    bad_json = cli.fails(
        "tasks", "create", "--name", "x", "--webhook-url", HOOK, "--payload", "{", code=2
    )
    assert "Invalid value for --payload: not JSON" in "\n".join(bad_json)
    assert cli.tasks() == []

    wrong_token = cli("tasks", "list", INSIGNIA_TOKEN="not-the-token-0123456789")
    assert wrong_token.returncode == 1
    assert wrong_token.stderr.startswith("error: ")
    assert wrong_token.stderr.rstrip().endswith("(HTTP 401; check INSIGNIA_TOKEN)")
    nobody = cli("tasks", "list", INSIGNIA_URL="http://127.0.0.1:9")
    assert nobody.returncode == 1
    assert nobody.stderr.startswith("error: cannot reach the API at http://127.0.0.1:9")


def log_row(cli: Cli, task_id: str, at: str, status: str = "success") -> dict:
    body = {"task_id": task_id, "status": status, "execution_time": at, "message": f"at {at}"}
    return cli.api("POST", "/task-logs", json=body)


def test_logs_list(cli: Cli):
    task_id = create(cli)["id"]
    other = create(cli, "Other")["id"]
    log_row(cli, task_id, "2026-11-01T10:00:00Z")
    log_row(cli, task_id, "2026-11-01T11:00:00Z", "failed")
    log_row(cli, task_id, "2026-11-01T12:00:00Z")
    log_row(cli, other, "2026-11-01T13:00:00Z")

    mine = cli.json("logs", "list", "--task", task_id)
    assert [row["message"] for row in mine] == [
        "at 2026-11-01T10:00:00Z",
        "at 2026-11-01T11:00:00Z",
        "at 2026-11-01T12:00:00Z",
    ]
    latest = cli.json("logs", "list", "--limit", "2")
    assert [row["execution_time"][:13] for row in latest] == ["2026-11-01T12", "2026-11-01T13"]
    failed = cli.json("logs", "list", "--status", "failed")
    assert [row["execution_time"][:13] for row in failed] == ["2026-11-01T11"]
    window = cli.json(
        "logs", "list", "--since", "2026-11-01T11:00:00Z", "--until", "2026-11-01T12:00:00Z"
    )
    assert len(window) == 2

    table = cli.ok("logs", "list", "--task", task_id).splitlines()
    assert table[0].split() == ["TIME", "TASK", "STATUS", "TRY", "TRIGGER", "HTTP", "MS", "MESSAGE"]
    assert table[1].startswith(f"2026-11-01 10:00:00Z  {task_id}  success")
    assert cli.fails("logs", "list", "--since", "yesterday")[0].startswith("error: since: ")


class Lines:
    """The lines a child process prints, collected as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self.thread = threading.Thread(target=self._read, args=(process.stdout,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))


def test_logs_follow_prints_new_rows_until_ctrl_c(cli: Cli):
    task_id = create(cli)["id"]
    first = log_row(cli, task_id, "2026-11-01T10:00:00Z")
    follow = subprocess.Popen(
        [sys.executable, "main.py", "logs", "list", "--follow", "--json", "--interval", "0.2"],
        cwd=ROOT,
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed = Lines(follow)
        wait_until(lambda: len(printed.lines) >= 1, timeout=30, what="the existing row")
        assert json.loads(printed.lines[0])["id"] == first["id"]
        second = cli.api("POST", "/task-logs", json={"task_id": task_id, "status": "failed"})
        third = cli.api("POST", "/task-logs", json={"task_id": task_id, "status": "success"})
        wait_until(lambda: len(printed.lines) >= 3, timeout=30, what="the new rows")
        assert [json.loads(line)["id"] for line in printed.lines] == [
            first["id"],
            second["id"],
            third["id"],
        ]
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=30) == 0
        assert follow.stderr is not None and follow.stderr.read() == ""
        assert len(printed.lines) == 3  # each row once
    finally:
        follow.kill()
        follow.wait(timeout=10)


def test_logs_follow_for_people_stops_after_max_seconds(cli: Cli):
    task_id = create(cli)["id"]
    log_row(cli, task_id, "2026-11-01T10:00:00Z", "failed")
    out = cli.ok("logs", "list", "-f", "--interval", "0.1", "--max-seconds", "0.5").splitlines()
    assert out[0].split() == ["TIME", "STATUS", "TRY", "TRIGGER", "HTTP", "MS", "TASK", "MESSAGE"]
    assert out[1].split()[:5] == ["2026-11-01", "10:00:00Z", "failed", "0", "manual"]
    assert out[1].endswith(f"{task_id}  at 2026-11-01T10:00:00Z")
    assert len(out) == 2


def test_keys_commands(cli: Cli):
    created = cli.json(
        "keys", "create", "--name", "CI", "--scope", "tasks:read", "--scope", "logs:read"
    )
    assert created["key"].startswith("isk_") and created["scopes"] == ["logs:read", "tasks:read"]
    as_key = {"INSIGNIA_TOKEN": created["key"]}
    assert cli.json("tasks", "list", **as_key) == []
    refused = cli(
        "tasks", "create", "--name", "x", "--webhook-url", HOOK, "--schedule", "@daily", **as_key
    )
    assert refused.returncode == 1
    assert refused.stderr == (
        "error: this key lacks the scope tasks:write (HTTP 403; use a token with that scope "
        "(INSIGNIA_TOKEN))\n"
    )
    listed = cli.ok("keys", "list").splitlines()
    assert listed[0].split()[:3] == ["ID", "NAME", "SCOPES"]
    assert listed[1].startswith(f"{created['id']}  CI    logs:read, tasks:read")
    assert [key["id"] for key in cli.json("keys", "list")] == [created["id"]]

    printed = cli.ok("keys", "create", "--name", "Other", "--scope", "admin")
    assert "key:        isk_" in printed
    assert cli.ok("keys", "revoke", created["id"]) == f"revoked key {created['id']} (CI)\n"
    assert cli("tasks", "list", **as_key).returncode == 1
    past = ["--expires-at", "2000-01-01T00:00:00Z"]
    assert cli.fails("keys", "create", "--name", "x", "--scope", "tasks:read", *past) == [
        "error: expires_at: must be in the future (HTTP 422)"
    ]


def test_serve_command_and_the_local_token_by_default(database_url: str, tmp_path: Path):
    """`serve` serves like no command; without INSIGNIA_TOKEN the client commands use the
    token the service generated and stored in the database."""
    env = clean_env(DATABASE_URL=database_url, SCHEDULER_ENABLED="false")
    service = ServiceProcess(env, tmp_path / "svc.log")
    service.process = subprocess.Popen(
        [sys.executable, "main.py", "serve"],
        cwd=ROOT,
        env=service.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(service._ready, timeout=30, interval=0.05, what="serve to be ready")
        local = env | {"INSIGNIA_URL": service.base_url}
        listed = run_main("tasks", "list", "--json", env=local)
        assert (listed.returncode, listed.stdout) == (0, "[]\n"), listed.stderr
        token = run_main("token", env=local).stdout.strip()
        assert len(token) >= 32 and token != TEST_TOKEN
    finally:
        service.stop_quietly()


def test_no_token_anywhere_is_one_line(tmp_path: Path):
    missing = tmp_path / "missing.db"
    env = clean_env(DATABASE_URL=f"sqlite:///{missing}", INSIGNIA_URL="http://127.0.0.1:9")
    result = run_main("tasks", "list", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: no API token: set INSIGNIA_TOKEN")
    assert len(result.stderr.splitlines()) == 1
    assert not missing.exists()  # looking for a token created no database
