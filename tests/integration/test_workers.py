"""WORKERS=N: several service processes in one container, sharing one port and one database."""

import contextlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.receiver import WebhookReceiver
from harness.service import ServiceProcess
from harness.waiting import wait_until
from tests.conftest import TEST_TOKEN

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
RUNS = 6


@pytest.fixture
def two_workers(database_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The service with WORKERS=2 and a scheduler poll far longer than any wait below, so that
    only a wake-up (in-process, NOTIFY, or the SQLite doorbell) can make work start early."""
    env = {
        "DATABASE_URL": database_url,
        "API_TOKEN": TEST_TOKEN,
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "WORKERS": "2",
        "SCHEDULER_POLL_SECONDS": "60",
        "LOG_LEVEL": "INFO",
    }
    service = ServiceProcess(env, tmp_path / "service.log")
    try:
        yield service.start()
    finally:
        service.stop_quietly()
        for pid in worker_pids(service):
            _kill(pid)


def worker_pids(service: ServiceProcess) -> list[int]:
    """The pids of the service's worker processes (the supervisor's spawned children)."""
    assert service.process is not None
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == service.process.pid and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def delivered_total(service: ServiceProcess) -> float:
    """insignia_deliveries_total{outcome="success"} as one scrape (a new connection) shows it."""
    text = httpx.get(f"{service.base_url}/metrics", headers={"Connection": "close"}).text
    found = re.search(r'^insignia_deliveries_total\{outcome="success"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_workers_serve_schedule_once_and_stop_together(
    two_workers: ServiceProcess, receiver: WebhookReceiver, database_url: str
):
    service = two_workers
    pids = wait_until(lambda: len(worker_pids(service)) == 2 and worker_pids(service))
    created = httpx.post(
        f"{service.base_url}/tasks",
        headers=AUTH,
        json={
            "name": "by hand",
            "schedule": "0 0 1 1 *",
            "webhook_url": receiver.url("1"),
            "payload": {"content": "hi"},
        },
    )
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    for _ in range(RUNS):  # each on a new connection: either worker may take it
        run = httpx.post(
            f"{service.base_url}/tasks/{task_id}/execute",
            headers=AUTH | {"Connection": "close"},
        )
        assert run.status_code == 202, run.text
    # Far sooner than the 60 s poll: whichever worker took the request woke the scheduler.
    receiver.wait_for(RUNS, timeout=15)
    keys = [post.key for post in receiver.posts("1")]
    assert len(keys) == RUNS and len(set(keys)) == RUNS
    # Every scrape, whichever worker answers it, counts the deliveries of both.
    wait_until(lambda: delivered_total(service) == RUNS, what="deliveries in /metrics")
    assert [delivered_total(service) for _ in range(6)] == [RUNS] * 6
    log = service.log()
    if database_url.startswith("sqlite"):
        assert log.count("scheduler started") == 1
        assert log.count("this process serves the API only") == 1
    else:
        assert log.count("scheduler started") == 2
    assert service.terminate(), service.log()
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids))
