"""ALLOW_PRIVATE_WEBHOOK_TARGETS end to end: refusals when a task is saved, and deliveries to
the receiver on 127.0.0.1 allowed or refused when the connection is made."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from harness.receiver import WebhookReceiver
from harness.waiting import wait_until
from tests.integration.conftest import start_client

SETTING = "ALLOW_PRIVATE_WEBHOOK_TARGETS"
SECRET = "s3cr3t-T0KEN-do-not-leak"


def task_body(url: str) -> dict:
    """A one-time task to `url`, due in 0.3 s."""
    return {
        "name": "private target",
        "run_at": (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat(),
        "webhook_url": url,
        "payload": {"content": "hello"},
    }


def save(client: TestClient, url: str) -> dict:
    response = client.post("/tasks", json=task_body(url))
    assert response.status_code == 201, response.text
    return response.json()


def refusal(client: TestClient, url: str) -> str:
    """The 422 message for saving a task to `url`; the answer never quotes the URL's secret."""
    response = client.post("/tasks", json=task_body(url))
    assert response.status_code == 422, response.text
    assert SECRET not in response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "webhook_url"]
    return error["msg"]


def finished(client: TestClient, task_id: str) -> tuple[dict, list[dict]]:
    """The task once it became inactive (its occurrence is over), and its log rows."""
    task = wait_until(
        lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "inactive" and t,
        timeout=15,
        what="the task to become inactive",
    )
    logs = client.get(f"/task-logs/task/{task_id}").json()["task_logs"]
    return task, logs


def with_targets(settings: Settings, value: bool | str) -> Settings:
    return settings.model_copy(update={"allow_private_webhook_targets": value})


@pytest.mark.parametrize(
    "host",
    ["10.0.0.1", "2130706433", "[::ffff:127.0.0.1]", "localhost", "169.254.169.254"],
)
def test_saving_a_private_target_is_422_naming_the_setting(client, host):
    message = refusal(client, f"http://{host}/api/webhooks/1/{SECRET}?token={SECRET}")
    assert message.startswith("refusing to send to ")
    assert SETTING in message


@pytest.mark.parametrize(
    "host", ["169.254.169.254", "0xa9fea9fe", "[fd00:ec2::254]", "metadata.google.internal"]
)
def test_true_still_refuses_cloud_metadata_endpoints(settings, host):
    with start_client(with_targets(settings, True)) as client:
        message = refusal(client, f"http://{host}/computeMetadata/v1/{SECRET}")
        save(client, "http://127.0.0.1:9/hook")  # every other private address is allowed
    assert message.endswith(f"only listing it in {SETTING} allows it")


def test_a_metadata_endpoint_opens_only_when_listed(settings):
    with start_client(with_targets(settings, "169.254.0.0/16")) as client:
        assert "cloud metadata address" in refusal(client, f"http://169.254.169.254/{SECRET}")
        save(client, "http://169.254.1.1/hook")
    with start_client(with_targets(settings, "169.254.169.254/32")) as client:
        save(client, "http://169.254.169.254/latest")


@pytest.mark.parametrize("value", ["127.0.0.1/32", "10.0.0.0/8,localhost"])
def test_a_listed_network_or_name_lets_the_delivery_through(
    scheduling_settings, receiver: WebhookReceiver, value
):
    url = receiver.url()
    if "localhost" in value:
        url = url.replace("127.0.0.1", "localhost")  # a listed name, whatever it resolves to
    with start_client(with_targets(scheduling_settings, value)) as client:
        task = save(client, url)
        (request,) = receiver.wait_for(1)
        final, (log,) = finished(client, task["id"])
    assert request.body == {"content": "hello"}
    assert final["status_reason"].startswith("completed")
    assert (log["status"], log["http_status"]) == ("success", 204)


def test_a_list_that_does_not_cover_the_address_refuses_when_connecting(
    scheduling_settings, receiver: WebhookReceiver
):
    settings = with_targets(scheduling_settings, "10.0.0.0/8,relay.internal")
    with start_client(settings) as client:
        # The literal is judged when the task is saved...
        assert f"add it to {SETTING}" in refusal(client, f"http://127.0.0.1:{receiver.port}/x")
        # ...a name only when the connection is made, by the addresses it resolves to.
        task = save(client, f"http://localhost:{receiver.port}/api/webhooks/1/{SECRET}")
        final, (log,) = finished(client, task["id"])
    assert log["message"].startswith(
        "refused: refusing to connect to localhost: it resolves to a non-public address "
        f"(127.0.0.1); add it to {SETTING} to allow it"
    )
    assert SETTING in final["status_reason"]
    assert SECRET not in final["status_reason"]
    assert receiver.received() == []
