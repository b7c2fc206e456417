"""Signed deliveries (Standard Webhooks), verified by the receiver with the `standardwebhooks`
library, on SQLite and PostgreSQL: across a retry, after a rotation, service-wide."""

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from app.config import Settings
from app.delivery.signing import new_secret
from harness.receiver import Received, server_error
from tests.integration.conftest import start_client


def verify(secret: str, request: Received) -> object:
    """What a receiver does: raises unless a signature made with `secret` matches the body."""
    return Webhook(secret).verify(request.raw, request.headers)


def make_task(client, receiver, hook: str, **fields) -> dict:
    body = {
        "name": f"signed {hook}",
        "schedule": "@every 1s",
        "webhook_url": receiver.url(hook),
        "payload": {"text": "héllo", "n": [1, 2.5, None]},
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_task_secret_signs_every_attempt_with_a_stable_id(service, receiver):
    receiver.script("s", server_error())
    task = make_task(service, receiver, "s", schedule=None,
                     run_at=(datetime.now(UTC) + timedelta(seconds=1)).isoformat())  # fmt: skip
    rotated = service.post(f"/tasks/{task['id']}/signing-secret")
    assert rotated.status_code == 200, rotated.text
    secret = rotated.json()["signing_secret"]
    assert secret.startswith("whsec_")
    assert rotated.json()["previous_valid_until"] is None
    assert service.get(f"/tasks/{task['id']}").json()["signed"] is True
    assert secret not in service.get(f"/tasks/{task['id']}").text  # shown once only
    first, retry = receiver.wait_for(2, webhook_id="s")
    assert verify(secret, first) == {"text": "héllo", "n": [1, 2.5, None]}
    assert verify(secret, retry) == first.body
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == first.key
    with pytest.raises(Exception, match="signature"):
        verify(new_secret(), first)


def test_after_a_rotation_both_secrets_sign_for_a_day(service, receiver):
    task = make_task(service, receiver, "r")
    old = service.post(f"/tasks/{task['id']}/signing-secret").json()["signing_secret"]
    new = service.post(f"/tasks/{task['id']}/signing-secret").json()
    since = len(receiver.received("r"))
    got = receiver.wait_for(since + 2, webhook_id="r")[-1]
    service.post(f"/tasks/{task['id']}/pause")
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verify(new["signing_secret"], got)
    verify(old, got)  # receivers still on the old secret keep working
    valid_until = datetime.fromisoformat(new["previous_valid_until"])
    assert timedelta(hours=23) < valid_until - datetime.now(UTC) <= timedelta(hours=24)


def test_the_service_wide_secret_signs_tasks_without_their_own(
    scheduling_settings: Settings, receiver
):
    secret = new_secret()
    settings = scheduling_settings.model_copy(update={"webhook_signing_secret": secret})
    with start_client(settings) as client:
        task = make_task(client, receiver, "w")
        (got,) = receiver.wait_for(1, webhook_id="w")[:1]
        client.post(f"/tasks/{task['id']}/pause")
        assert client.get(f"/tasks/{task['id']}").json()["signed"] is False
    verify(secret, got)


def test_unsigned_by_default_and_never_for_discord(scheduling_settings: Settings, receiver):
    settings = scheduling_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})
    with start_client(settings) as client:
        task = make_task(client, receiver, "d", payload={"content": "hi"})
        refused = client.post(f"/tasks/{task['id']}/signing-secret")
        (got,) = receiver.wait_for(1, webhook_id="d")[:1]
        client.post(f"/tasks/{task['id']}/pause")
    assert refused.status_code == 422
    assert "webhook-signature" not in got.headers


@pytest.fixture
def service(scheduling_settings: Settings):
    with start_client(scheduling_settings) as client:
        yield client
