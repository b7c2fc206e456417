"""The service as separate processes: kill -9, SIGTERM, and several replicas on one database."""

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from harness.network import free_port
from harness.receiver import Answer, WebhookReceiver
from harness.service import ServiceProcess
from harness.waiting import wait_until
from tests.conftest import TEST_TOKEN

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    """Service processes started by a test; any still running at the end are killed."""
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.stop_quietly()


def service_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "API_TOKEN": TEST_TOKEN,
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "DELIVERY_TIMEOUT_SECONDS": "2",
        "SCHEDULER_LEASE_SECONDS": "3",
        "RETRY_BACKOFF_BASE_SECONDS": "0.2",
        "SHUTDOWN_GRACE_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }
    env.update(overrides)
    return env


def launch(processes: list, env: dict, log: Path) -> ServiceProcess:
    process = ServiceProcess(env, log)
    processes.append(process)
    return process.start()


def post_task(service: ServiceProcess, **body) -> dict:
    response = httpx.post(f"{service.base_url}/tasks", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def get_task(service: ServiceProcess, task_id: str) -> dict:
    return httpx.get(f"{service.base_url}/tasks/{task_id}", headers=AUTH, timeout=10).json()


def task_logs(service: ServiceProcess, task_id: str) -> list[dict]:
    url = f"{service.base_url}/task-logs/task/{task_id}"
    return httpx.get(url, headers=AUTH, timeout=10).json()["task_logs"]


def one_time_soon(service: ServiceProcess, receiver: WebhookReceiver) -> dict:
    run_at = datetime.now(UTC) + timedelta(seconds=0.5)
    return post_task(
        service,
        name="once",
        run_at=run_at.isoformat(),
        webhook_url=receiver.url("1"),
        payload={"content": "hello"},
    )


def test_work_held_by_a_killed_process_is_delivered_after_restart(
    database_url: str, receiver: WebhookReceiver, processes, tmp_path: Path
):
    env = service_env(database_url)
    receiver.script("1", Answer(204, delay=30))  # the first attempt never gets its answer
    first = launch(processes, env, tmp_path / "first.log")
    task = one_time_soon(first, receiver)
    (in_flight,) = receiver.wait_for(1, timeout=10)
    first.kill()

    second = launch(processes, env, tmp_path / "second.log")
    requests = receiver.wait_for(2, timeout=20)
    assert requests[1].key == in_flight.key
    assert requests[1].scheduled_for == in_flight.scheduled_for
    # Taken over when the lease ran out, not before.
    assert (requests[1].at - in_flight.at).total_seconds() >= 3 - 0.1
    done = wait_until(
        lambda: (t := get_task(second, task["id"]))["status"] == "inactive" and t,
        what="the task to complete after the takeover",
    )
    assert done["status_reason"].startswith("completed")
    (log,) = task_logs(second, task["id"])
    assert log["status"] == "success"
    assert len(receiver.received()) == 2


def test_sigterm_hands_unfinished_work_back_at_once(
    database_url: str, receiver: WebhookReceiver, processes, tmp_path: Path
):
    # A lease far longer than the test: only an explicit release lets the next process in.
    env = service_env(database_url, SCHEDULER_LEASE_SECONDS="120")
    receiver.script("1", Answer(204, delay=30))
    first = launch(processes, env, tmp_path / "first.log")
    one_time_soon(first, receiver)
    (in_flight,) = receiver.wait_for(1, timeout=10)
    assert first.terminate(timeout=10)  # Cloud Run sends SIGKILL 10 s after SIGTERM
    assert "released unfinished deliveries" in first.log()

    launch(processes, env, tmp_path / "second.log")
    requests = receiver.wait_for(2, timeout=15)
    assert requests[1].key == in_flight.key


def test_sigterm_lets_a_quick_delivery_finish(
    database_url: str, receiver: WebhookReceiver, processes, tmp_path: Path
):
    env = service_env(database_url, SHUTDOWN_GRACE_SECONDS="5")
    receiver.script("1", Answer(204, delay=1.0))
    service = launch(processes, env, tmp_path / "service.log")
    task = one_time_soon(service, receiver)
    receiver.wait_for(1, timeout=10)
    assert service.terminate(timeout=10)
    api = launch(processes, {**env, "SCHEDULER_ENABLED": "false"}, tmp_path / "api.log")
    (log,) = task_logs(api, task["id"])
    assert log["status"] == "success"
    assert len(receiver.received()) == 1


def test_two_replicas_send_each_occurrence_exactly_once(
    database_url: str, receiver: WebhookReceiver, processes, tmp_path: Path
):
    # Claiming one occurrence per transaction makes the replicas interleave as much as possible.
    env = service_env(database_url, SCHEDULER_BATCH_SIZE="1", SCHEDULER_LEASE_SECONDS="10")
    replicas = [launch(processes, env, tmp_path / f"replica{i}.log") for i in (1, 2)]
    hooks = [str(n) for n in range(10)]
    for hook in hooks:
        post_task(
            replicas[0],
            name=f"every second {hook}",
            schedule="@every 1s",
            webhook_url=receiver.url(hook),
            payload={"hook": hook},
        )

    def every_hook_has(count: int):
        def check(got):
            per_hook = Counter(r.webhook_id for r in got)
            return all(per_hook[hook] >= count for hook in hooks)

        return check

    receiver.wait_until(every_hook_has(6), timeout=30, what="six deliveries per task")
    for replica in replicas:
        assert replica.terminate(timeout=10)

    got = receiver.received()
    keys = Counter(r.key for r in got)
    assert [key for key, n in keys.items() if n > 1] == []
    occurrences = Counter((r.webhook_id, r.scheduled_for) for r in got)
    assert [occ for occ, n in occurrences.items() if n > 1] == []
    # No gaps: every second between a task's first and last delivery was delivered.
    by_hook: dict[str, list[datetime]] = defaultdict(list)
    for request in got:
        by_hook[request.webhook_id].append(datetime.fromisoformat(request.scheduled_for))
    for hook, times in by_hook.items():
        times.sort()
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        assert set(gaps) == {1.0}, f"task {hook}: gaps {gaps}"

    delivered = [len(re.findall("delivery succeeded", r.log())) for r in replicas]
    if database_url.startswith("sqlite"):
        # One SQLite file, one scheduler: the second process says so and serves the API only.
        assert "serves the API only" in replicas[1].log()
        assert delivered[1] == 0
    else:
        assert min(delivered) > 0, f"both replicas should have delivered: {delivered}"
    assert sum(delivered) == len(got)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_webhook_token_in_the_logs_even_at_debug(
    database_url: str, receiver: WebhookReceiver, processes, tmp_path: Path, log_format: str
):
    token = "Tok3n-that-must-never-be-logged"
    env = service_env(
        database_url,
        LOG_LEVEL="DEBUG",
        LOG_FORMAT=log_format,
        DISCORD_EXTRA_HOSTS="127.0.0.1",
        RETRY_BACKOFF_BASE_SECONDS="0.1",
    )
    receiver.script("ok", Answer(204))
    receiver.script("fails", Answer(500), Answer(404, {"message": "Unknown Webhook"}))
    service = launch(processes, env, tmp_path / "service.log")
    closed_port = f"http://127.0.0.1:{free_port()}/api/webhooks/9/{token}"
    urls = [receiver.url("ok", token), receiver.url("fails", token), closed_port]
    tasks = [
        post_task(
            service, name=f"t{i}", schedule="@every 1h", webhook_url=url, payload={"content": "x"}
        )
        for i, url in enumerate(urls)
    ]
    for task in tasks:
        httpx.post(f"{service.base_url}/tasks/{task['id']}/execute", headers=AUTH, timeout=10)
    wait_until(
        lambda: all(task_logs(service, task["id"]) for task in tasks),
        timeout=20,
        what="every task to have a log row",
    )
    assert service.terminate(timeout=10)
    output = service.log()
    assert "delivery failed" in output and "delivery succeeded" in output
    assert token not in output


def test_a_change_made_on_another_replica_is_noticed_within_a_second(
    database_url: str, receiver: WebhookReceiver, processes, tmp_path: Path
):
    env = service_env(database_url)
    launch(processes, env, tmp_path / "scheduler.log")
    api = launch(processes, {**env, "SCHEDULER_ENABLED": "false"}, tmp_path / "api.log")
    far = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    task = post_task(
        api, name="moved", run_at=far, webhook_url=receiver.url("1"), payload={"content": "x"}
    )
    soon = datetime.now(UTC) + timedelta(seconds=0.3)
    moved = httpx.put(
        f"{api.base_url}/tasks/{task['id']}", json={"run_at": soon.isoformat()}, headers=AUTH
    )
    assert moved.status_code == 200
    (request,) = receiver.wait_for(1, timeout=5)
    lateness = (request.at - soon).total_seconds()
    # PostgreSQL wakes the other replica with NOTIFY; SQLite's scheduler polls every second.
    assert lateness < (1.2 if database_url.startswith("sqlite") else 0.3), lateness
