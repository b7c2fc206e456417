"""Schedules people have, end to end: fan-out, quiet hours, run limits, end dates and several
schedules, delivered over real HTTP to the receiver, on SQLite and PostgreSQL."""

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from harness.receiver import Answer, WebhookReceiver, server_error
from harness.replica import second_scheduler
from harness.waiting import wait_until
from tests.integration.conftest import start_client

SUPPRESS_NOTIFICATIONS = 1 << 12


@pytest.fixture
def discord_settings(scheduling_settings: Settings) -> Settings:
    """The receiver on 127.0.0.1 counts as Discord (flags, ?wait=true)."""
    return scheduling_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})


@pytest.fixture
def discord_service(discord_settings: Settings) -> Iterator[TestClient]:
    with start_client(discord_settings) as client:
        yield client


def create(client: TestClient, **fields) -> dict:
    body = {"name": "rules", "payload": {"content": "hello"}} | fields
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def ended(client: TestClient, task_id: str, timeout: float = 20) -> dict:
    """The task once it is inactive."""
    return wait_until(
        lambda: (task := client.get(f"/tasks/{task_id}").json())["status"] == "inactive" and task,
        timeout=timeout,
        what="the task to end",
    )


def sent_at(request) -> datetime:
    return datetime.fromisoformat(request.scheduled_for.replace("Z", "+00:00"))


def test_fan_out_one_failing_webhook_leaves_the_others_on_time_exactly_once(
    scheduling_settings: Settings, receiver: WebhookReceiver
):
    receiver.script("b", *[server_error()] * 20)
    with start_client(scheduling_settings) as client, second_scheduler(scheduling_settings):
        task = create(
            client,
            schedule="@every 1s",
            max_runs=3,
            max_retry=1,
            auto_resume=False,
            webhook_urls=[receiver.url("a"), receiver.url("b"), receiver.url("c")],
        )
        done = ended(client, task["id"])
        logs = client.get(f"/task-logs/task/{task['id']}", params={"limit": 100}).json()
    for hook in ("a", "c"):
        posts = receiver.posts(hook)
        assert len(posts) == 3 and len({post.key for post in posts}) == 3
        # Each on time, however the failing webhook fares.
        assert all((post.at - sent_at(post)).total_seconds() < 1.0 for post in posts)
    # The failing webhook: its first run and one retry, then it is switched off alone.
    assert len(receiver.posts("b")) == 2
    assert done["status_reason"] == "completed 3 runs"
    states = [(t["index"], t["status"]) for t in done["targets"]]
    assert states == [(0, "active"), (1, "inactive"), (2, "active")]
    assert done["targets"][1]["status_reason"].startswith("deactivated after 2 failed attempts")
    by_target = Counter((row["target"], row["status"]) for row in logs["task_logs"])
    assert by_target == {(0, "success"): 3, (1, "failed"): 2, (2, "success"): 3}


def test_quiet_hours_silent_posts_with_suppress_notifications(
    discord_service: TestClient, receiver: WebhookReceiver
):
    now = datetime.now(UTC)
    window = {
        "from": (now - timedelta(hours=1)).strftime("%H:%M"),
        "to": (now + timedelta(hours=1)).strftime("%H:%M"),
        "mode": "silent",
    }
    task = create(
        discord_service,
        schedule="@every 1s",
        max_runs=1,
        quiet_hours=window,
        webhook_url=receiver.url("q"),
        payload={"content": "psst", "flags": 4},
    )
    (post,) = receiver.wait_for(1, webhook_id="q")
    assert post.body["flags"] == 4 | SUPPRESS_NOTIFICATIONS
    assert post.headers["x-insignia-fire-kind"] == "silent"
    assert ended(discord_service, task["id"])["status_reason"] == "completed 1 runs"


def test_quiet_hours_defer_sends_at_the_end_of_the_window(service, receiver: WebhookReceiver):
    now = datetime.now(UTC)
    # The first minute boundary at least 5 s away: the first run (2 s after creation) falls
    # inside the window, and the window ends within 65 s.
    end = (now + timedelta(seconds=5)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    window = {
        "from": (end - timedelta(minutes=5)).strftime("%H:%M"),
        "to": end.strftime("%H:%M"),
        "mode": "defer",
    }
    task = create(
        service, schedule="@every 2s", max_runs=1, quiet_hours=window, webhook_url=receiver.url()
    )
    (planned,) = service.get(f"/tasks/{task['id']}/next-runs", params={"count": 5}).json()[
        "next_runs"
    ]
    assert (planned["utc"], planned["kind"]) == (end.isoformat().replace("+00:00", "Z"), "deferred")
    (post,) = receiver.wait_for(1, timeout=75)
    assert sent_at(post) == end
    assert 0 <= (post.at - end).total_seconds() < 1.0
    assert post.headers["x-insignia-fire-kind"] == "deferred"


def test_max_runs_ends_the_task_after_that_many(service, receiver: WebhookReceiver):
    task = create(service, schedule="@every 1s", max_runs=2, webhook_url=receiver.url())
    done = ended(service, task["id"])
    posts = receiver.posts()
    assert len(posts) == 2 and len({post.key for post in posts}) == 2
    assert (done["runs"], done["next_run_at"]) == (2, None)
    assert done["status_reason"] == "completed 2 runs"


def test_end_at_ends_the_task_after_its_last_run(service, receiver: WebhookReceiver):
    end_at = datetime.now(UTC) + timedelta(seconds=2.5)
    task = create(
        service, schedule="@every 1s", end_at=end_at.isoformat(), webhook_url=receiver.url()
    )
    done = ended(service, task["id"])
    assert len(receiver.posts()) == 2
    assert all(sent_at(post) <= end_at for post in receiver.posts())
    assert done["status_reason"].startswith("ended: its end_at (")


def test_several_schedules_fire_as_one_union_each_instant_once(service, receiver: WebhookReceiver):
    task = create(
        service,
        schedules=["@every 2s", "@every 3s"],
        max_runs=4,
        webhook_url=receiver.url(),
    )
    ended(service, task["id"])
    created = datetime.fromisoformat(task["created_at"].replace("Z", "+00:00"))
    offsets = sorted(
        round((sent_at(post) - created).total_seconds(), 3) for post in receiver.posts()
    )
    assert offsets == [2.0, 3.0, 4.0, 6.0]


def test_a_webhook_switched_off_alone_comes_back_when_the_task_is_resumed(
    scheduling_settings: Settings, receiver: WebhookReceiver
):
    receiver.script("bad", Answer(404, {"message": "Unknown Webhook", "code": 10015}))
    with start_client(scheduling_settings) as client:
        task = create(
            client,
            schedule="@every 1s",
            max_retry=0,
            webhook_urls=[receiver.url("good"), receiver.url("bad")],
        )
        wait_until(
            lambda: client.get(f"/tasks/{task['id']}").json()["targets"][1]["status"] == "inactive",
            what="the bad webhook to be switched off",
        )
        assert client.get(f"/tasks/{task['id']}").json()["status"] == "active"
        client.post(f"/tasks/{task['id']}/pause")
        resumed = client.post(f"/tasks/{task['id']}/resume").json()
    assert [t["status"] for t in resumed["targets"]] == ["active", "active"]
