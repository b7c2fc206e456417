"""The Dockerfile's recipe, replayed without a container engine: its install step in a fresh
virtual environment, its files copied, its command started against PostgreSQL, then probed."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness import ROOT
from harness.network import free_port
from harness.waiting import wait_until
from tests.conftest import TEST_TOKEN


def instructions(stage: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of one stage, continued lines joined, comments dropped."""
    joined = stage.replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def stages() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(parts) == 2, "the recipe below expects a build stage and a runtime stage"
    return instructions("FROM " + parts[0]), instructions("FROM " + parts[1])


@pytest.mark.postgresql
def test_image_recipe_installs_starts_and_becomes_ready(postgres_url: str, tmp_path: Path):
    build, runtime = stages()
    rootfs = tmp_path / "rootfs"

    def host_path(container_path: str) -> Path:
        return rootfs / container_path.lstrip("/")

    # Build stage: COPY the requirements into WORKDIR, then RUN the install with /opt/venv
    # standing for its place under rootfs.
    workdir = rootfs
    for instruction, arguments in build:
        if instruction == "WORKDIR":
            workdir = host_path(arguments)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            *sources, target = arguments.split()
            for source in sources:
                shutil.copy(ROOT / source, workdir / (source if target == "." else target))
        elif instruction == "RUN":
            command = arguments.replace("/opt/venv", str(host_path("/opt/venv")))
            command = re.sub(r"^python ", shlex.quote(sys.executable) + " ", command)
            subprocess.run(["bash", "-c", command], cwd=workdir, check=True, timeout=600)

    # Runtime stage: ENV, WORKDIR and COPY from the build context; RUN (users) is the engine's.
    env = {"PATH": os.environ["PATH"]}
    command: list[str] = []
    for instruction, arguments in runtime:
        if instruction == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", arguments):
                value = value.replace("$PATH", env["PATH"]).replace(
                    "/opt/venv", str(host_path("/opt/venv"))
                )
                env[key] = value
        elif instruction == "WORKDIR":
            workdir = host_path(arguments)
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY" and not arguments.startswith("--from"):
            *sources, target = arguments.split()
            for source in sources:
                destination = workdir / (source if target in (".", "./") else target)
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy(ROOT / source, destination)
        elif instruction == "CMD":
            command = [part.strip('" ') for part in arguments.strip("[]").split(",")]
    assert command == ["python", "main.py"]

    port = free_port()
    env |= {
        "PORT": str(port),
        "DATABASE_URL": postgres_url,
        "API_TOKEN": TEST_TOKEN,
        "HOST": "127.0.0.1",  # the recipe's 0.0.0.0, kept to loopback on a shared machine
    }
    assert env["PATH"].startswith(str(host_path("/opt/venv/bin")))
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    try:

        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "service.log").read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=60, interval=0.2, what="/readyz of the replayed image")
        assert httpx.get(f"http://127.0.0.1:{port}/livez", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    output = (tmp_path / "service.log").read_text()
    assert "Application shutdown complete" in output
    assert '"level": "INFO"' in output  # LOG_FORMAT=json from the recipe
