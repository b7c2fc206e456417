"""What the command line says about itself, and how it refuses wrong settings: no server."""

import subprocess
import sys

import pytest

from app import __version__
from harness import ROOT
from tests.cli.conftest import clean_env, run_main

COMMANDS = ["serve", "token", "version", "tasks", "logs", "keys", "apply", "export"]
TASK_COMMANDS = [
    "list",
    "get",
    "create",
    "update",
    "delete",
    "run",
    "pause",
    "resume",
    "next-runs",
    "preview",
]


def commands_listed(help_text: str) -> list[str]:
    """The command names of a help text's "Commands:" section."""
    listed = help_text.split("Commands:", 1)[1].splitlines()
    return [line.split()[0] for line in listed if line.startswith("  ") and line.strip()]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_command(flag):
    result = run_main(flag, env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: python main.py [OPTIONS] COMMAND [ARGS]...")
    assert sorted(commands_listed(result.stdout)) == sorted(COMMANDS)
    for said in ("INSIGNIA_URL", "INSIGNIA_TOKEN", "--json", "serves the API"):
        assert said in " ".join(result.stdout.split())


def test_help_of_each_group_and_command():
    env = clean_env()
    tasks = run_main("tasks", "--help", env=env).stdout
    assert sorted(commands_listed(tasks)) == sorted(TASK_COMMANDS)
    assert sorted(commands_listed(run_main("keys", "-h", env=env).stdout)) == [
        "create",
        "list",
        "revoke",
    ]
    assert commands_listed(run_main("logs", "-h", env=env).stdout) == ["list"]
    logs = run_main("logs", "list", "--help", env=env).stdout
    for option in ("--task", "--status", "--since", "--until", "--limit", "--follow", "--json"):
        assert option in logs
    assert "--max-seconds" not in logs  # for tests only
    apply = run_main("apply", "--help", env=env).stdout
    for option in ("--file", "-f", "--prune", "--dry-run", "--json"):
        assert option in apply
    create = run_main("tasks", "create", "--help", env=env).stdout
    for option in ("--name", "--schedule", "--run-at", "--webhook-url", "--payload", "--status"):
        assert option in create


def test_version_prints_the_app_version():
    result = run_main("version", env=clean_env())
    assert (result.returncode, result.stdout) == (0, f"{__version__}\n")


def test_a_wrong_command_is_a_usage_error():
    result = run_main("srve", env=clean_env())
    assert result.returncode == 2
    assert "No such command 'srve'" in result.stderr
    assert "Traceback" not in result.stderr


def test_shell_completion_of_the_insignia_command():
    """`insignia` is app.cli:main; run it under that name, as the installed script does."""
    as_insignia = "import sys; sys.argv[0] = 'insignia'; from app.cli import main; sys.exit(main())"
    script = subprocess.run(
        [sys.executable, "-c", as_insignia, "--show-completion", "bash"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 0, script.stderr
    assert "_INSIGNIA_COMPLETE=complete_bash" in script.stdout
    assert "complete " in script.stdout and " insignia" in script.stdout

    def complete(words: str, index: int) -> list[str]:
        env = clean_env(_INSIGNIA_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(index))
        return run_main(env=env).stdout.split()

    assert complete("insignia ta", 1) == ["tasks"]
    assert complete("insignia tasks ne", 2) == ["next-runs"]
    assert complete("insignia tasks list --status ", 4) == ["active", "inactive"]


SETTINGS_ERRORS = {
    "PORT": "abc",
    "API_TOKEN": "changeme",
    "LOG_LEVEL": "loud",
    "SCHEDULER_BATCH_SIZE": "0",
}


@pytest.mark.parametrize("command", [[], ["serve"], ["token"]])
def test_wrong_settings_print_one_line_each_and_exit_2(command, tmp_path):
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'never.db'}", **SETTINGS_ERRORS)
    result = run_main(*command, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert sorted(line.split(":")[0] for line in lines) == sorted(SETTINGS_ERRORS)
    by_name = {line.split(":")[0]: line for line in lines}
    assert by_name["PORT"] == "PORT: 'abc' is not an integer (expected an integer from 1 to 65535)"
    assert by_name["SCHEDULER_BATCH_SIZE"] == (
        "SCHEDULER_BATCH_SIZE: '0' is out of range (expected an integer from 1 to 1000)"
    )
    assert by_name["LOG_LEVEL"].startswith("LOG_LEVEL: 'LOUD' is not one of the choices")
    assert "'INFO'" in by_name["LOG_LEVEL"]
    assert by_name["API_TOKEN"].startswith(
        "API_TOKEN: a value of 8 characters (not shown) is refused: must be at least 16"
    )
    assert "changeme" not in result.stderr  # a secret, even a weak one, is never echoed
    assert not (tmp_path / "never.db").exists()


def test_a_check_across_settings_is_one_line(tmp_path):
    env = clean_env(SCHEDULER_LEASE_SECONDS="5", DELIVERY_TIMEOUT_SECONDS="10")
    result = run_main(env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "SCHEDULER_LEASE_SECONDS must be longer than DELIVERY_TIMEOUT_SECONDS, or work still "
        "being delivered would be taken over by another scheduler"
    ]
