"""Operations: metrics, request ids, the external scheduler pass, a database outage."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from app.config import Settings
from app.scheduling.single import acquire_scheduler_lock, sqlite_database_path
from harness.network import TcpProxy
from harness.receiver import WebhookReceiver
from harness.waiting import wait_until
from tests.conftest import TEST_TOKEN
from tests.integration.conftest import SCHEDULING, start_client


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text output (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(rf"^{pattern}$", text, flags=re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def make_task(client: TestClient, receiver: WebhookReceiver, **fields) -> dict:
    body = {
        "name": "Secret project name",
        "schedule": "0 0 1 1 *",
        "webhook_url": receiver.url("1"),
        "payload": {"content": "x"},
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 201, response.text
    return response.json()


def test_metrics_count_deliveries_requests_and_state(service: TestClient, receiver):
    task = make_task(service, receiver)
    service.post(f"/tasks/{task['id']}/execute")
    receiver.wait_for(1)
    wait_until(lambda: service.get(f"/task-logs/task/{task['id']}").json()["total"] == 1)
    service.headers.pop("Authorization")

    text = wait_until(
        lambda: (
            (t := service.get("/metrics").text)
            and metric(t, "insignia_deliveries_total", outcome="success") == 1
            and t
        ),
        what="the delivery to be counted",
    )
    assert metric(text, "insignia_tasks", status="active") == 1
    assert metric(text, "insignia_tasks", status="inactive") == 0
    assert metric(text, "insignia_due_backlog") == 0
    assert metric(text, "insignia_firing_lateness_seconds_count", trigger="manual") == 1
    assert metric(text, "insignia_delivery_duration_seconds_count") == 1
    assert (
        metric(text, "insignia_http_requests_total", method="POST", route="/tasks", status="201")
        == 1
    )
    assert (
        metric(
            text,
            "insignia_http_requests_total",
            method="POST",
            route="/tasks/{task_id}/execute",
            status="202",
        )
        == 1
    )
    # Labels never carry names, URLs or ids.
    assert "Secret project name" not in text
    assert task["id"] not in text
    assert "hook-token-secret" not in text


def test_request_ids_are_echoed_or_made(client: TestClient):
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = client.get("/health", headers={"X-Request-ID": "not valid; " * 20})
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert client.get("/nope").headers["x-request-id"]


def test_external_scheduler_pass_delivers_what_is_due(
    scheduling_settings: Settings, receiver, database_url: str
):
    settings = scheduling_settings.model_copy(update={"scheduler_enabled": False})
    with start_client(settings) as client:
        due = datetime.now(UTC) + timedelta(seconds=0.2)
        task = make_task(client, receiver, schedule=None, run_at=due.isoformat())
        wait_until(lambda: datetime.now(UTC) > due, what="the run_at to pass")
        response = client.post("/scheduler/run")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "done", "claimed": 1, "unfinished": 0}
        (log,) = client.get(f"/task-logs/task/{task['id']}").json()["task_logs"]
        assert log["status"] == "success"
        assert len(receiver.received()) == 1
        assert client.post("/scheduler/run").json()["claimed"] == 0
        assert client.get("/readyz").json()["checks"]["scheduler"] == "off"


def test_on_sqlite_an_external_pass_is_refused_while_another_process_schedules(
    scheduling_settings: Settings, receiver, database_url: str
):
    path = sqlite_database_path(database_url)
    if path is None:
        pytest.skip("SQLite's scheduler lock")
    settings = scheduling_settings.model_copy(update={"scheduler_enabled": False})
    with start_client(settings) as client:
        task = make_task(client, receiver, schedule=None, run_at=datetime.now(UTC).isoformat())
        held = acquire_scheduler_lock(path)  # another process's scheduler
        assert held is not None
        try:
            refused = client.post("/scheduler/run")
        finally:
            held.close()
        assert refused.status_code == 409
        assert receiver.received() == []
        assert client.post("/scheduler/run").json()["claimed"] == 1
        assert client.get(f"/task-logs/task/{task['id']}").json()["total"] == 1


def test_scheduler_pass_needs_the_token(client: TestClient):
    client.headers.pop("Authorization")
    assert client.post("/scheduler/run").status_code == 401


@pytest.mark.postgresql
def test_a_database_outage_is_survived(postgres_url: str, receiver):
    """The API answers 503, /readyz says why, and everything carries on when it is back."""
    url = make_url(postgres_url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        through_proxy = url.set(host="127.0.0.1", port=proxy.port)
        settings = Settings(
            _env_file=None,
            database_url=through_proxy.render_as_string(hide_password=False),
            api_token=TEST_TOKEN,
            **SCHEDULING,
        )
        with start_client(settings) as client:
            client.post(
                "/tasks",
                json={
                    "name": "ticker",
                    "schedule": "@every 1s",
                    "webhook_url": receiver.url("1"),
                    "payload": {"content": "tick"},
                },
            )
            receiver.wait_for(1, timeout=5)

            proxy.cut()
            down = client.get("/tasks")
            assert down.status_code == 503
            assert "Database unavailable" in down.json()["detail"]
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database"].startswith("unavailable")
            wait_until(
                lambda: client.get("/readyz").json()["checks"]["scheduler"] != "ok",
                timeout=10,
                what="the scheduler to report the outage",
            )

            proxy.restore()
            wait_until(
                lambda: client.get("/readyz").status_code == 200,
                timeout=30,
                what="readiness after the outage",
            )
            assert client.get("/tasks").status_code == 200
            before = len(receiver.received())
            receiver.wait_for(before + 2, timeout=15)


def test_metrics_need_no_token_and_use_the_prometheus_format(client: TestClient):
    client.headers.pop("Authorization")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE insignia_deliveries_total counter" in response.text
