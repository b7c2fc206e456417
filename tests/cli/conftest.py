"""Fixtures for the command line's tests: the real service in a child process on the test
database, and the command line run as `python main.py …` against it, as people run it."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import ROOT
from harness.service import ServiceProcess
from tests.conftest import TEST_TOKEN

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
# Nothing is delivered while these tests run: the scheduler is off, and runs queued by
# `tasks run` simply wait. Private targets are allowed, Discord webhooks are not checked online.
SERVICE_ENV = {
    "API_TOKEN": TEST_TOKEN,
    "SCHEDULER_ENABLED": "false",
    "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
    "VERIFY_DISCORD_WEBHOOKS": "false",
    "LOG_LEVEL": "WARNING",
}
# What a caller's environment might set that would change what the tests see.
CLEARED = ("INSIGNIA_URL", "INSIGNIA_TOKEN", "API_TOKEN", "DATABASE_URL", "PORT", "HOST")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the settings the tests choose, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if key.upper() not in CLEARED}
    return env | {"COLUMNS": "200"} | extra


def run_main(*args: str, env: dict[str, str], stdin: str | None = None, cwd: Path = ROOT):
    """`python main.py ARGS` to its end: the completed process, output as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


class Cli:
    """The command line pointed at one running service."""

    def __init__(self, service: ServiceProcess, database_url: str) -> None:
        self.service = service
        self.database_url = database_url
        self.env = clean_env(INSIGNIA_URL=service.base_url, INSIGNIA_TOKEN=TEST_TOKEN)

    def __call__(self, *args: str, stdin: str | None = None, **env: str):
        """Run a command; the completed process (any exit status)."""
        return run_main(*args, env=self.env | env, stdin=stdin)

    def ok(self, *args: str, stdin: str | None = None, **env: str) -> str:
        """Run a command that must succeed; its standard output."""
        result = self(*args, stdin=stdin, **env)
        assert result.returncode == 0, f"{args} -> {result.returncode}\n{result.stderr}"
        assert "Traceback" not in result.stderr, result.stderr
        return result.stdout

    def json(self, *args: str, **env: str) -> Any:
        """Run a command with --json; its output parsed."""
        return json.loads(self.ok(*args, "--json", **env))

    def fails(self, *args: str, code: int = 1, stdin: str | None = None) -> list[str]:
        """Run a command that must fail with `code`; its stderr lines (never a traceback)."""
        result = self(*args, stdin=stdin)
        assert result.returncode == code, f"{args} -> {result.returncode}\n{result.stdout}"
        assert "Traceback" not in result.stderr, result.stderr
        return result.stderr.splitlines()

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request straight to the API, to arrange or check what the commands did."""
        response = httpx.request(
            method, f"{self.service.base_url}{path}", headers=AUTH, timeout=10, **kwargs
        )
        assert response.status_code < 300, response.text
        return response.json()

    def tasks(self) -> list[dict[str, Any]]:
        """Every task on the server, by the API."""
        return self.api("GET", "/tasks", params={"limit": 1000})["tasks"]


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    """`python main.py` (no command: it serves) on the test database."""
    process = ServiceProcess(SERVICE_ENV | {"DATABASE_URL": database_url}, tmp_path / "svc.log")
    try:
        yield process.start()
    finally:
        process.stop_quietly()


@pytest.fixture
def cli(service: ServiceProcess, database_url: str) -> Cli:
    """The command line against the running service, with INSIGNIA_URL and INSIGNIA_TOKEN."""
    return Cli(service, database_url)
