"""All of Discord (SPEC §10): messages that edit themselves, replace or delete themselves, and
threads, against the Discord-like receiver, on SQLite and PostgreSQL."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from harness.network import free_port
from harness.receiver import Answer, WebhookReceiver
from harness.waiting import wait_until
from tests.integration.conftest import start_client


@pytest.fixture
def discord_settings(scheduling_settings: Settings) -> Settings:
    return scheduling_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})


@pytest.fixture
def service(discord_settings: Settings) -> Iterator[TestClient]:
    with start_client(discord_settings) as client:
        yield client


def create(client: TestClient, url: str, **fields) -> dict:
    body = {
        "name": "status board",
        "schedule": "@every 1s",
        "webhook_url": url,
        "payload": {"content": "all systems go"},
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 201, response.text
    return response.json()


def once(client: TestClient, url: str, **fields) -> dict:
    run_at = (datetime.now(UTC) + timedelta(seconds=0.2)).isoformat()
    return create(client, url, schedule=None, run_at=run_at, **fields)


def methods(receiver: WebhookReceiver, hook: str) -> list[str]:
    return [r.method for r in receiver.received(hook)]


def message_of(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def test_post_mode_keeps_the_last_message_id(service, receiver):
    task = once(service, receiver.url("p"))
    done = wait_until(
        lambda: (t := service.get(f"/tasks/{task['id']}").json())["discord_message_id"] and t,
        what="the message id on the task",
    )
    (posted,) = receiver.received("p")
    assert done["discord_message_id"] in receiver.messages
    assert posted.query["wait"] == ["true"]


def test_edit_mode_posts_once_then_edits_the_same_message(service, receiver):
    task = create(service, receiver.url("e"), discord_mode="edit")
    got = receiver.wait_for(3, webhook_id="e")
    service.post(f"/tasks/{task['id']}/pause")
    first, second, third = got[:3]
    assert (first.method, second.method, third.method) == ("POST", "PATCH", "PATCH")
    message_id = next(iter(receiver.messages))
    assert message_of(second.path) == message_of(third.path) == message_id
    assert second.path.endswith(f"/messages/{message_id}")
    assert "wait" not in second.query
    assert second.body == {"content": "all systems go"}
    state = service.get(f"/tasks/{task['id']}").json()
    assert state["discord_message_id"] == message_id
    assert len(receiver.messages) == 1


def test_edit_mode_posts_a_new_message_when_the_old_one_is_gone(service, receiver):
    task = create(service, receiver.url("g"), discord_mode="edit")
    receiver.wait_for(1, webhook_id="g")
    wait_until(
        lambda: service.get(f"/tasks/{task['id']}").json()["discord_message_id"],
        what="the first message id",
    )
    receiver.messages.clear()  # someone deleted the message in Discord
    got = receiver.wait_until(
        lambda rs: [r.method for r in rs].count("POST") >= 2, webhook_id="g", what="a new post"
    )
    service.post(f"/tasks/{task['id']}/pause")
    sequence = [r.method for r in got]
    gone = sequence.index("PATCH")
    assert sequence[gone : gone + 2] == ["PATCH", "POST"]  # 404 Unknown Message, then a post
    new_id = wait_until(
        lambda: (
            (
                (i := service.get(f"/tasks/{task['id']}").json()["discord_message_id"])
                in receiver.messages
            )
            and i
        ),
        what="the new message id on the task",
    )
    assert list(receiver.messages) == [new_id]


def test_replace_mode_deletes_the_previous_message_then_posts(service, receiver):
    task = create(service, receiver.url("r"), discord_mode="replace")
    got = receiver.wait_until(
        lambda rs: [r.method for r in rs].count("POST") >= 3, webhook_id="r", what="3 posts"
    )
    service.post(f"/tasks/{task['id']}/pause")
    sequence = [r.method for r in got]
    assert sequence[:5] == ["POST", "DELETE", "POST", "DELETE", "POST"]
    deleted = [message_of(r.path) for r in got if r.method == "DELETE"]
    assert len(set(deleted)) == len(deleted)  # each message deleted once


def test_a_posted_message_is_deleted_after_its_time(service, receiver):
    task = once(service, receiver.url("d"), delete_after_seconds=1)
    posted, deleted = receiver.wait_for(2, webhook_id="d")
    assert (posted.method, deleted.method) == ("POST", "DELETE")
    assert (deleted.at - posted.at).total_seconds() >= 1.0
    assert receiver.messages == {}
    logs = wait_until(
        lambda: (
            (rows := service.get(f"/task-logs/task/{task['id']}").json()["task_logs"])
            and len(rows) == 2
            and rows
        ),
        what="two log rows",
    )
    assert sorted(log["trigger"] for log in logs) == ["delete", "schedule"]
    state = service.get(f"/tasks/{task['id']}").json()
    assert state["status_reason"].startswith("completed")  # the deletion is not a run


def test_a_deletion_survives_a_restart(discord_settings, receiver):
    with start_client(discord_settings) as first:
        task = once(first, receiver.url("s"), delete_after_seconds=3)
        receiver.wait_for(1, webhook_id="s")
        wait_until(
            lambda: first.get(f"/tasks/{task['id']}").json()["discord_message_id"],
            what="the post to be recorded",
        )
    assert methods(receiver, "s") == ["POST"]
    with start_client(discord_settings):
        receiver.wait_for(2, webhook_id="s", timeout=15)
    assert methods(receiver, "s") == ["POST", "DELETE"]


def test_thread_id_is_kept_for_every_call(service, receiver):
    url = receiver.url("t") + "?thread_id=987654321"
    task = create(service, url, discord_mode="replace")
    got = receiver.wait_for(3, webhook_id="t")
    service.post(f"/tasks/{task['id']}/pause")
    for request in got[:3]:
        assert request.query["thread_id"] == ["987654321"], request.method


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"discord_mode": "edit"}, "discord_mode"),
        ({"delete_after_seconds": 60}, "delete_after_seconds"),
    ],
)
def test_discord_fields_are_for_discord_urls_only(client: TestClient, fields, where):
    body = {
        "name": "plain",
        "schedule": "@daily",
        "webhook_url": "https://hooks.example.com/x",
        "payload": {"a": 1},
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", where]]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"delete_after_seconds": 0}, "delete_after_seconds"),
        ({"delete_after_seconds": 14 * 86_400 + 1}, "delete_after_seconds"),
        ({"discord_mode": "append"}, "discord_mode"),
        ({"payload": {"content": "x", "thread_name": "n" * 101}}, "payload"),
        ({"payload": {"content": "x", "thread_name": ""}}, "payload"),
        ({"payload": {"content": "x", "applied_tags": ["1", "2", "3", "4", "5", "6"]}}, "payload"),
    ],
)
def test_discord_fields_are_checked(client: TestClient, fields, where):
    body = {
        "name": "forum",
        "schedule": "@daily",
        "webhook_url": "https://discord.com/api/webhooks/1/token",
        "payload": {"content": "x"},
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", where]]


@pytest.fixture
def verifying(discord_settings: Settings) -> Iterator[TestClient]:
    with start_client(discord_settings.model_copy(update={"verify_discord_webhooks": True})) as c:
        yield c


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Answer(404, {"message": "Unknown Webhook", "code": 10015}), 422),
        (Answer(401, {"message": "Invalid Webhook Token", "code": 50027}), 422),
        (Answer(200, {"id": "v", "type": 1}), 201),
        (Answer(500, {"message": "oops"}), 201),
    ],
    ids=["404", "401", "200", "500"],
)
def test_a_discord_webhook_is_checked_when_saved(verifying, receiver, answer, status):
    receiver.script_get("v", answer)
    body = {"name": "checked", "schedule": "@daily", "webhook_url": receiver.url("v")}
    response = verifying.post("/tasks", json=body | {"payload": {"content": "x"}})
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "webhook_url"]
        assert "does not exist" in response.json()["detail"][0]["msg"]
    assert methods(receiver, "v") == ["GET"]  # nothing was posted


def test_a_webhook_that_cannot_be_reached_does_not_block_saving(verifying, receiver):
    url = receiver.url("v").replace(str(receiver.port), str(free_port()))
    body = {"name": "offline", "schedule": "@daily", "webhook_url": url}
    assert verifying.post("/tasks", json=body | {"payload": {"content": "x"}}).status_code == 201


def test_an_update_checks_a_changed_url_only(verifying, receiver):
    body = {"name": "moving", "schedule": "@daily", "webhook_url": receiver.url("a")}
    task = verifying.post("/tasks", json=body | {"payload": {"content": "x"}}).json()
    assert verifying.patch(f"/tasks/{task['id']}", json={"name": "renamed"}).status_code == 200
    receiver.script_get("b", Answer(404, {"message": "Unknown Webhook", "code": 10015}))
    moved = verifying.patch(f"/tasks/{task['id']}", json={"webhook_url": receiver.url("b")})
    assert moved.status_code == 422
    assert [r.method for r in receiver.received()] == ["GET", "GET"]
