"""The README's shell examples, run as they are written against a real service, so that they
cannot drift from what the service does.

The blocks marked `<!-- readme-test -->` (or `<!-- readme-test: label -->`) run in order in one
bash process, as a reader pastes them into one terminal. Two things differ from the reader's
machine: the service listens on a free port instead of 8000, and the checkout's
`.venv/bin/python main.py` is this interpreter on this checkout's main.py. curl fails on an HTTP
error (a reader sees the error; the test stops), and the script stops at the first failure.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from harness import ROOT
from tests.cli.conftest import AUTH, Cli, clean_env
from tests.conftest import TEST_TOKEN

MARK = re.compile(r"^<!-- readme-test(?::\s*(?P<label>[\w-]+))?\s*-->\n```(?:bash|sh)\n", re.M)
README_URL = "http://127.0.0.1:8000"
README_PYTHON = ".venv/bin/python main.py"
PRELUDE = 'set -euo pipefail\ncurl() { command curl --fail-with-body --show-error "$@"; }\n'


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """The marked shell blocks of a README, in order, with their labels ("" when none)."""
    blocks = []
    for mark in MARK.finditer(text):
        end = text.index("\n```\n", mark.end())
        blocks.append((mark["label"] or "", text[mark.end() : end + 1]))
    return blocks


def run_bash(script: str, cli: Cli, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The script, adapted to the test's service, run by bash in `cwd`."""
    adapted = script.replace(README_URL, cli.service.base_url).replace(
        README_PYTHON, f"{sys.executable} {ROOT / 'main.py'}"
    )
    # `python3` is this interpreter; the default INSIGNIA_URL names port 8000, hence the URL.
    path = f"{Path(sys.executable).parent}:{clean_env().get('PATH', '/usr/bin:/bin')}"
    env = clean_env(
        PATH=path,
        DATABASE_URL=cli.database_url,
        API_TOKEN=TEST_TOKEN,
        INSIGNIA_URL=cli.service.base_url,
    )
    return subprocess.run(
        ["bash", "-c", PRELUDE + adapted],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_marks_its_examples():
    labels = [label for label, _ in readme_blocks((ROOT / "README.md").read_text())]
    assert len(labels) >= 6 and labels.count("paging") == 1
    assert shutil.which("bash") and shutil.which("curl"), "the README's examples need bash and curl"


def test_the_readme_examples_run_in_order(cli: Cli, tmp_path: Path):
    blocks = readme_blocks((ROOT / "README.md").read_text())
    result = run_bash("\n".join(block for _, block in blocks), cli, tmp_path)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "Nothing to do: 2 unchanged." in out and "Nothing to do: 4 unchanged." in out
    assert "Plan: 0 to create, 0 to update, 2 to delete, 2 unchanged." in out
    names = sorted(task["name"] for task in cli.tasks())
    assert names == ["Backup check", "New year", "Stand-up reminder", "Weekly report"]
    standup = next(task for task in cli.tasks() if task["name"] == "Stand-up reminder")
    assert standup["payload"] == {"content": "New text"} and standup["max_retry"] == 5
    assert (tmp_path / "all-tasks.yaml").read_text().count("- name: ") == 4
    keys = httpx.get(f"{cli.service.base_url}/api-keys", headers=AUTH, timeout=10).json()
    assert [key["revoked_at"] is not None for key in keys["api_keys"]] == [True, True]


def test_the_readme_paging_loop_reads_every_row_once(cli: Cli, tmp_path: Path):
    blocks = readme_blocks((ROOT / "README.md").read_text())
    [paging] = [block for label, block in blocks if label == "paging"]
    rows = {"name": "Rows", "schedule": "@daily", "webhook_url": "https://hooks.example.com/r"}
    task = cli.api("POST", "/tasks", json=rows)
    row = {"task_id": task["id"], "status": "success"}
    with httpx.Client(base_url=cli.service.base_url, headers=AUTH, timeout=10) as client:
        ids = {client.post("/task-logs", json=row).json()["id"] for _ in range(230)}
    setup = f"API={cli.service.base_url}\nTOKEN={TEST_TOKEN}\n"
    result = run_bash(setup + paging, cli, tmp_path)
    assert result.returncode == 0, result.stderr
    printed = [line.split()[0] for line in result.stdout.splitlines()]
    assert len(printed) == 230 and set(printed) == ids
