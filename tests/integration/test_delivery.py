"""Delivery over real HTTP to a receiver on 127.0.0.1 that behaves like Discord."""

import itertools
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from harness.network import free_port
from harness.receiver import Answer, WebhookReceiver, rate_limited, server_error, unknown_webhook
from harness.waiting import wait_until
from tests.integration.conftest import before_resume, start_client


@pytest.fixture
def discord_settings(scheduling_settings: Settings) -> Settings:
    """The receiver on 127.0.0.1 counts as Discord: ?wait=true, payload limits, pacing."""
    return scheduling_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})


@pytest.fixture
def service(discord_settings: Settings) -> Iterator[TestClient]:
    with start_client(discord_settings) as client:
        yield client


def once_soon(client: TestClient, receiver: WebhookReceiver, hook: str = "1", **fields) -> dict:
    """A one-time task due in 0.3 s."""
    body = {
        "name": f"hook {hook}",
        "run_at": (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat(),
        "webhook_url": receiver.url(hook),
        "payload": {"content": f"hello {hook}"},
    }
    body.update(fields)
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def logs_of(client: TestClient, task_id: str) -> list[dict]:
    """The task's log rows, oldest first."""
    rows = client.get(f"/task-logs/task/{task_id}", params={"limit": 1000}).json()["task_logs"]
    return rows[::-1]


def final_state(client: TestClient, task_id: str) -> dict:
    return wait_until(
        lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "inactive" and t,
        timeout=15,
        what="the task to become inactive",
    )


def gaps(requests) -> list[float]:
    return [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(requests)]


def test_discord_is_sent_with_wait_true_and_the_log_keeps_the_message_id(service, receiver):
    task = once_soon(service, receiver)
    (request,) = receiver.wait_for(1)
    assert request.query["wait"] == ["true"]
    final_state(service, task["id"])
    (log,) = logs_of(service, task["id"])
    assert log["http_status"] == 200
    assert log["message"].startswith("Delivered (HTTP 200, Discord message 13")
    assert '"id"' in log["response_body"]
    assert log["duration_ms"] >= 0


def test_plain_webhooks_get_any_2xx_and_no_wait_parameter(scheduling_settings, receiver):
    with start_client(scheduling_settings) as client:  # 127.0.0.1 is not Discord here
        receiver.script("1", Answer(202, {"queued": True}))
        task = once_soon(client, receiver, payload={"anything": [1, 2]})
        (request,) = receiver.wait_for(1)
        final_state(client, task["id"])
        (log,) = logs_of(client, task["id"])
    assert "wait" not in request.query
    assert request.body == {"anything": [1, 2]}
    assert (log["status"], log["http_status"], log["message"]) == (
        "success",
        202,
        "Delivered (HTTP 202)",
    )


def test_failures_are_retried_with_growing_gaps_then_the_task_is_deactivated(service, receiver):
    receiver.script("1", *[server_error()] * 4)
    task = once_soon(service, receiver, max_retry=3)
    requests = receiver.wait_for(4, timeout=15)
    final = final_state(service, task["id"])
    assert before_resume(final) == "deactivated after 4 failed attempts: HTTP 500 from webhook"
    assert final["last_status"] == "failed"
    logs = logs_of(service, task["id"])
    assert [log["retry_count"] for log in logs] == [0, 1, 2, 3]
    assert {log["status"] for log in logs} == {"failed"}
    assert logs[0]["message"].startswith("HTTP 500 from webhook; retry 1 of 3 at ")
    assert logs[-1]["message"] == "HTTP 500 from webhook; retries exhausted"
    assert len({r.key for r in requests}) == 1  # one occurrence, retried
    assert [r.headers["x-insignia-attempt"] for r in requests] == ["1", "2", "3", "4"]
    # base 0.2 s: about 0.2, 0.4, 0.8 s apart (+-10 % jitter), each wait about twice the last
    first, second, third = gaps(requests)
    assert 0.18 <= first < second < third
    assert second > 1.5 * first
    assert third > 1.5 * second
    assert len(receiver.received()) == 4


def test_a_retry_that_succeeds_finishes_the_occurrence(service, receiver):
    receiver.script("1", server_error(), Answer(503))
    task = once_soon(service, receiver, max_retry=3)
    receiver.wait_for(3)
    final = final_state(service, task["id"])
    assert final["status_reason"].startswith("completed")
    assert [log["status"] for log in logs_of(service, task["id"])] == [
        "failed",
        "failed",
        "success",
    ]


def test_max_retry_zero_means_a_single_attempt(service, receiver):
    receiver.script("1", server_error())
    task = once_soon(service, receiver, max_retry=0)
    final = final_state(service, task["id"])
    assert before_resume(final) == "deactivated after 1 failed attempt: HTTP 500 from webhook"
    assert len(receiver.received()) == 1


def test_unknown_webhook_stops_at_once(service, receiver):
    receiver.script("1", unknown_webhook())
    task = service.post(
        "/tasks",
        json={
            "name": "dead hook",
            "schedule": "@every 1s",
            "webhook_url": receiver.url("1"),
            "payload": {"content": "x"},
            "max_retry": 5,
        },
    ).json()
    final = final_state(service, task["id"])
    assert final["status_reason"] == (
        "deactivated after 1 failed attempt: webhook no longer exists (HTTP 404): Unknown Webhook"
    )
    assert final["next_run_at"] is None
    (log,) = logs_of(service, task["id"])
    assert log["message"].endswith("; not retried")
    assert len(receiver.received()) == 1


def test_429_waits_as_told_without_spending_a_retry(service, receiver):
    receiver.script("1", rate_limited(0.5), rate_limited(0.5))
    task = once_soon(service, receiver, max_retry=0)
    requests = receiver.wait_for(3, timeout=10)
    final = final_state(service, task["id"])
    assert final["status_reason"].startswith("completed")
    assert all(gap >= 0.5 for gap in gaps(requests))
    logs = logs_of(service, task["id"])
    assert [(log["status"], log["retry_count"]) for log in logs] == [
        ("failed", 0),
        ("failed", 0),
        ("success", 0),
    ]
    assert "rate limited" in logs[0]["message"]


def test_429_beyond_the_total_wait_counts_as_a_failure(discord_settings, receiver):
    # Each wait is at least 1 s: the first fits in the bound, the second would not.
    settings = discord_settings.model_copy(update={"max_rate_limit_wait_seconds": 1.5})
    receiver.script("1", rate_limited(0.5), rate_limited(0.5))
    with start_client(settings) as client:
        task = once_soon(client, receiver, max_retry=0)
        final = final_state(client, task["id"])
    assert before_resume(final) == "deactivated after 1 failed attempt: rate limited (HTTP 429)"
    assert len(receiver.received()) == 2


def test_tasks_sharing_a_discord_webhook_are_paced_not_rejected(service, receiver):
    receiver.rate_limit("shared", limit=2, per=1.0)
    for _ in range(6):
        once_soon(service, receiver, hook="shared")
    requests = receiver.wait_for(6, webhook_id="shared", timeout=15)
    assert receiver.rejected("shared") == 0
    # Two per second at most: six take at least two refills.
    assert (requests[-1].at - requests[0].at).total_seconds() >= 1.9


def test_a_slow_webhook_does_not_delay_another_task(service, receiver):
    receiver.script("slow", *[Answer(204, delay=1.8)] * 10)
    due = datetime.now(UTC) + timedelta(seconds=0.5)
    for i in range(5):
        service.post(
            "/tasks",
            json={
                "name": f"slow {i}",
                "run_at": due.isoformat(),
                "webhook_url": receiver.url("slow"),
                "payload": {"content": "slow"},
            },
        )
    fast = once_soon(service, receiver, hook="fast", run_at=due.isoformat())
    (request,) = receiver.wait_for(1, webhook_id="fast", timeout=5)
    assert (request.at - due).total_seconds() < 0.5
    final_state(service, fast["id"])


def test_a_pending_retry_survives_a_restart(discord_settings, receiver):
    settings = discord_settings.model_copy(update={"retry_backoff_base_seconds": 1.5})
    receiver.script("1", server_error())
    with start_client(settings) as client:
        task = once_soon(client, receiver, max_retry=2)
        receiver.wait_for(1)
        wait_until(lambda: logs_of(client, task["id"]), what="the failed attempt's log row")
    # The service is down while the retry falls due; the next one delivers it.
    with start_client(settings) as client:
        requests = receiver.wait_for(2, timeout=10)
        final = final_state(client, task["id"])
    assert requests[0].key == requests[1].key
    assert gaps(requests)[0] >= 1.5 * 0.9
    assert final["status_reason"].startswith("completed")
    assert [log["retry_count"] for log in logs_of(client, task["id"])] == [0, 1]


def _private_name() -> str:
    """This machine's host name: it resolves to a loopback or private address."""
    name = socket.gethostname()
    address = socket.gethostbyname(name)
    assert address.startswith(("127.", "10.", "172.", "192.168.")), address
    return name


def test_a_name_resolving_to_a_private_address_is_refused_when_connecting(
    scheduling_settings, receiver
):
    settings = scheduling_settings.model_copy(update={"allow_private_webhook_targets": False})
    name = _private_name()
    url = f"http://{name}:{receiver.port}/api/webhooks/1/token"
    with start_client(settings) as client:
        # Saving does not resolve names: the refusal happens when the connection is made.
        task = once_soon(client, receiver, webhook_url=url)
        final = final_state(client, task["id"])
        (log,) = logs_of(client, task["id"])
    assert "non-public address" in final["status_reason"]
    assert log["message"].startswith("refused:")
    assert receiver.received() == []


def test_deactivation_is_announced_on_the_alert_webhook(discord_settings, receiver):
    settings = discord_settings.model_copy(update={"alert_webhook_url": receiver.url("alerts")})
    receiver.script("1", unknown_webhook())
    with start_client(settings) as client:
        task = once_soon(client, receiver, name="Nightly report")
        (alert,) = receiver.wait_for(1, webhook_id="alerts", timeout=10)
    assert task["id"] in alert.body["content"]
    assert "Nightly report" in alert.body["content"]
    assert "webhook no longer exists (HTTP 404)" in alert.body["content"]


def test_a_refused_connection_is_a_network_error_and_retried(service, receiver):
    closed = f"http://127.0.0.1:{free_port()}/api/webhooks/1/token"
    task = once_soon(service, receiver, webhook_url=closed, max_retry=1)
    final = final_state(service, task["id"])
    logs = logs_of(service, task["id"])
    assert [log["message"] for log in logs] == [
        logs[0]["message"],
        "network error: connection refused; retries exhausted",
    ]
    assert logs[0]["message"].startswith("network error: connection refused; retry 1 of 1 at ")
    assert before_resume(final) == (
        "deactivated after 2 failed attempts: network error: connection refused"
    )


def test_429_without_a_wait_still_spends_no_retry(service, receiver):
    receiver.script("1", Answer(429), Answer(429))
    task = once_soon(service, receiver, max_retry=0)
    receiver.wait_for(3, timeout=10)
    final = final_state(service, task["id"])
    assert final["status_reason"].startswith("completed")


def test_discord_pacing_does_not_hold_sending_slots(discord_settings, receiver):
    settings = discord_settings.model_copy(update={"max_concurrent_deliveries": 2})
    receiver.rate_limit("busy", limit=1, per=3.0)
    with start_client(settings) as client:
        for _ in range(4):
            once_soon(client, receiver, hook="busy")
        receiver.wait_for(1, webhook_id="busy", timeout=5)
        due = datetime.now(UTC) + timedelta(seconds=0.3)
        other = once_soon(client, receiver, hook="other", run_at=due.isoformat())
        (request,) = receiver.wait_for(1, webhook_id="other", timeout=5)
        final_state(client, other["id"])
    assert (request.at - due).total_seconds() < 0.5
    assert receiver.rejected("busy") == 0


def test_a_redirect_is_not_followed_and_only_a_kib_of_the_body_is_kept(
    scheduling_settings, receiver
):
    elsewhere = receiver.url("2")
    receiver.script("1", Answer(307, "x" * 5000, {"Location": elsewhere}))
    with start_client(scheduling_settings) as client:
        task = once_soon(client, receiver, max_retry=2)
        final = final_state(client, task["id"])
        (log,) = logs_of(client, task["id"])
    assert final["status_reason"].startswith("deactivated after 1 failed attempt: ")
    assert log["http_status"] == 307
    assert log["response_body"] == '"' + "x" * 1023
    assert [request.webhook_id for request in receiver.received()] == ["1"]
