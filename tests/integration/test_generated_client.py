"""A Python client generated from /openapi.json (openapi-python-client) drives a real service
process: create, list, get, update, execute, logs and delete, with plain dicts for payloads."""

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from app.config import Settings
from app.main import create_app
from harness.receiver import WebhookReceiver
from harness.service import ServiceProcess
from harness.waiting import wait_until
from tests.conftest import TEST_TOKEN

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated client package, importable as `insignia_client`."""
    folder = tmp_path_factory.mktemp("generated")
    spec = create_app(Settings(_env_file=None, api_token=TEST_TOKEN)).openapi()
    (folder / "openapi.json").write_text(json.dumps(spec))
    (folder / "config.yaml").write_text("post_hooks: []\n")
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--config",
            str(folder / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(folder / "insignia_client"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout  # every schema was understood
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("insignia_client")
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.startswith("insignia_client")]:
            del sys.modules[name]


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    env = {
        "DATABASE_URL": database_url,
        "API_TOKEN": TEST_TOKEN,
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "RETRY_BACKOFF_BASE_SECONDS": "0.2",
    }
    service = ServiceProcess(env, tmp_path / "service.log")
    try:
        yield service.start()
    finally:
        service.stop_quietly()


def operation(package: ModuleType, tag: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{name}")


def test_a_generated_client_works_with_plain_dicts(
    generated: ModuleType, api: ServiceProcess, receiver: WebhookReceiver
):
    models = importlib.import_module("insignia_client.models")
    client = generated.AuthenticatedClient(base_url=api.base_url, token=TEST_TOKEN)
    tasks, logs = "tasks", "task_logs"
    body = {
        "name": "Generated",
        "schedule": "0 9 * * MON-FRI",
        "timezone": "Europe/Paris",
        "webhook_url": receiver.url("generated"),
        "payload": {"content": "from a generated client", "embeds": [{"title": "hi"}]},
    }
    created = operation(generated, tasks, "create_task").sync(
        client=client, body=models.TaskCreate.from_dict(body)
    )
    assert created.payload == body["payload"]  # a plain dict back, not a model class
    assert created.status == models.TaskStatus.ACTIVE
    listed = operation(generated, tasks, "list_tasks").sync(client=client, search="generated")
    assert [task.id for task in listed.tasks] == [created.id]
    fetched = operation(generated, tasks, "get_task").sync(created.id, client=client)
    assert fetched.name == "Generated"
    update = models.TaskUpdate.from_dict({"payload": {"content": "changed"}, "max_retry": 1})
    updated = operation(generated, tasks, "update_task").sync(
        created.id, client=client, body=update
    )
    assert (updated.payload, updated.max_retry) == ({"content": "changed"}, 1)
    accepted = operation(generated, tasks, "execute_task").sync(created.id, client=client)
    assert accepted.task_id == created.id
    (request,) = receiver.wait_for(1, webhook_id="generated")
    assert request.body == {"content": "changed"}
    page = wait_until(
        lambda: (
            (
                got := operation(generated, logs, "list_logs_of_task").sync(
                    created.id, client=client
                )
            ).total
            and got
        ),
        what="the manual run's log row",
    )
    assert page.task_logs[0].status == models.LogStatus.SUCCESS
    assert page.task_logs[0].trigger == models.Trigger.MANUAL
    all_logs = operation(generated, logs, "list_task_logs").sync(
        client=client, since=datetime.now(UTC) - timedelta(hours=1)
    )
    assert all_logs.total == 1
    deleted = operation(generated, tasks, "delete_task").sync(created.id, client=client)
    assert deleted.message == "Task deleted successfully"
    gone = operation(generated, tasks, "get_task").sync_detailed(created.id, client=client)
    assert gone.status_code == 404
