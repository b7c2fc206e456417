"""Payload templates through the API and the scheduler (SPEC §9), on SQLite and PostgreSQL:
checked when saved, rendered into JSON strings when sent, the same on a retry but `attempt`."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from harness.receiver import Answer, WebhookReceiver, server_error
from harness.waiting import wait_until
from tests.integration.conftest import start_client

NASTY_NAME = 'He said "hi" \\ bye {{ not a template }}\n"}, "x": 1'


@pytest.fixture
def discord_settings(scheduling_settings: Settings) -> Settings:
    return scheduling_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})


@pytest.fixture
def service(discord_settings: Settings) -> Iterator[TestClient]:
    with start_client(discord_settings) as client:
        yield client


def once(client: TestClient, receiver: WebhookReceiver, hook: str, payload: dict, **fields):
    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    body = {
        "name": NASTY_NAME,
        "run_at": run_at.isoformat(),
        "timezone": "Europe/Paris",
        "webhook_url": receiver.url(hook),
        "payload": payload,
        "template": True,
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 201, response.text
    return response.json(), run_at


def test_a_template_is_rendered_into_json_strings_the_same_on_a_retry(service, receiver):
    receiver.script("t", server_error())
    payload = {
        "content": "{{ task.name }} #{{ run_number }} try {{ attempt }}",
        "embeds": [
            {
                "title": "{{ scheduled_for|discord('R') }}",
                "description": "{{ scheduled_for|local('%H:%M') }} / {{ scheduled_for|iso }}",
                "footer": {"text": "{{ occurrence_id }} {{ task.timezone }}"},
            }
        ],
        "{{ key }}": "keys are not templates",
    }
    _, run_at = once(service, receiver, "t", payload)
    first, retry = receiver.wait_for(2, webhook_id="t")
    unix = int(run_at.timestamp())
    paris = run_at.astimezone(ZoneInfo("Europe/Paris"))
    expected = {
        "content": f"{NASTY_NAME} #1 try 1",
        "embeds": [
            {
                "title": f"<t:{unix}:R>",
                "description": f"{paris:%H:%M} / {run_at:%Y-%m-%dT%H:%M:%S}Z",
                "footer": {"text": f"{first.key} Europe/Paris"},
            }
        ],
        "{{ key }}": "keys are not templates",
    }
    assert first.body == expected
    assert retry.body == expected | {"content": f"{NASTY_NAME} #1 try 2"}


def test_a_rendered_payload_over_discords_limits_fails_for_good(service, receiver):
    receiver.script("big", server_error())
    # 1,500 characters for the first attempt, 3,000 (over Discord's 2,000) for the retry.
    task, _ = once(service, receiver, "big", {"content": "{{ 'x' * (attempt * 1500) }}"})
    final = wait_until(
        lambda: (t := service.get(f"/tasks/{task['id']}").json())["status"] == "inactive" and t,
        timeout=15,
        what="the task to stop",
    )
    assert "rendered payload over Discord's limits" in final["status_reason"]
    assert "content" in final["status_reason"]
    assert len(receiver.received("big")) == 1  # the over-long retry was never sent


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{{ nope }}", "nope"),
        ("{{ task.name ", "content"),
        ("{{ ''.__class__ }}", "content"),
        ("{{ cycler.__init__.__globals__ }}", "content"),
        ("{% for i in range(10) %}x{% endfor %}", "content"),
    ],
)
def test_a_bad_template_is_422_on_payload_when_saved(client: TestClient, content, says):
    body = {
        "name": "bad",
        "schedule": "@daily",
        "webhook_url": "https://hooks.example.com/x",
        "payload": {"content": content},
        "template": True,
    }
    response = client.post("/tasks", json=body)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "payload"]
    assert says in error["msg"]
    plain = client.post("/tasks", json=body | {"template": False})
    assert plain.status_code == 201  # the same text is fine when it is not a template


def test_preview_renders_the_next_occurrence(client: TestClient):
    body = {
        "name": "Stand-up",
        "schedule": "0 9 * * *",
        "timezone": "Asia/Tokyo",
        "webhook_url": "https://discord.com/api/webhooks/1/token",
        "payload": {
            "content": "{{ task.name }} {{ scheduled_for|discord() }} then {{ next_run_at|iso }}"
        },
        "template": True,
    }
    task = client.post("/tasks", json=body).json()
    preview = client.post(f"/tasks/{task['id']}/preview")
    assert preview.status_code == 200, preview.text
    at = datetime.fromisoformat(preview.json()["scheduled_for"])
    assert at == datetime.fromisoformat(task["next_run_at"])
    following = (at + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert preview.json()["payload"] == {
        "content": f"Stand-up <t:{int(at.timestamp())}:f> then {following}"
    }
    raw = client.post("/tasks", json=body | {"template": False}).json()
    assert client.post(f"/tasks/{raw['id']}/preview").json()["payload"] == body["payload"]
    assert client.post("/tasks/00000000-0000-0000-0000-000000000000/preview").status_code == 404


def test_an_unchanged_answer_keeps_the_raw_text(service, receiver):
    receiver.script("raw", Answer(204))
    once(service, receiver, "raw", {"content": "{{ task.name }}"}, template=False)
    (got,) = receiver.wait_for(1, webhook_id="raw")
    assert got.body == {"content": "{{ task.name }}"}
