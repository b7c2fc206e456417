"""The engine keeps its promises when the world is hostile (SPEC §7 "Webhook answers" and "The
engine"): webhooks that answer garbage, 429s that ask for no wait, a task that cannot be
planned, edits while a delivery is in flight, a replica whose clock is wrong."""

import itertools
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.models import Occurrence, Task
from harness.receiver import Answer, WebhookReceiver, discord_message, unknown_webhook
from harness.replica import second_scheduler
from harness.waiting import wait_until
from tests.integration.conftest import before_resume, start_client


@pytest.fixture
def discord_settings(scheduling_settings: Settings) -> Settings:
    """The receiver on 127.0.0.1 counts as Discord: ?wait=true and message ids."""
    return scheduling_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})


def create(client: TestClient, receiver: WebhookReceiver, hook: str, **fields) -> dict:
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
    rows = client.get(f"/task-logs/task/{task_id}", params={"limit": 1000}).json()["task_logs"]
    return rows[::-1]


def settled(client: TestClient, task_id: str, timeout: float = 15) -> dict:
    """The task once it is inactive (a one-time task that finished, or a deactivated one)."""
    return wait_until(
        lambda: (t := client.get(f"/tasks/{task_id}").json())["status"] == "inactive" and t,
        timeout=timeout,
        what="the task to become inactive",
    )


def open_occurrences(db: sessionmaker[Session], task_id: str) -> list[Occurrence]:
    """Occurrences that could still be sent (not finished)."""
    with db() as session:
        query = select(Occurrence).where(
            Occurrence.task_id == uuid.UUID(task_id), Occurrence.finished_at.is_(None)
        )
        return list(session.scalars(query))


def metric(client: TestClient, name: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# -- webhook answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, raw=b"ok\x00bye"),
        Answer(200, raw=b"\xff\xfe not utf-8 \xc3"),
        Answer(404, {"message": "\u0000", "code": 10015}),
        Answer(404, raw=b'{"message": "\\ud800 lone surrogate", "code": 10015}'),
    ],
    ids=["nul-body", "invalid-utf8", "nul-in-404-json", "surrogate-in-404-json"],
)
def test_a_hostile_answer_is_recorded_once_and_never_resent(
    scheduling_settings, db, receiver: WebhookReceiver, answer: Answer
):
    receiver.script("hostile", answer)
    with start_client(scheduling_settings) as client:
        hostile = create(client, receiver, "hostile", max_retry=0)
        victim = create(client, receiver, "victim")
        final = settled(client, hostile["id"])
        settled(client, victim["id"])
        (log,) = logs_of(client, hostile["id"])
        (victim_log,) = logs_of(client, victim["id"])
    assert "\x00" not in log["response_body"] and "\x00" not in log["message"]
    assert "\x00" not in final["status_reason"]
    assert log["http_status"] == answer.status
    assert victim_log["status"] == "success"
    # Finished occurrences can never be claimed again: nothing will be sent twice.
    assert open_occurrences(db, hostile["id"]) == []
    assert open_occurrences(db, victim["id"]) == []
    assert len(receiver.received("hostile")) == 1
    assert len(receiver.received("victim")) == 1


def test_a_nul_body_keeps_its_text_with_the_nul_replaced(scheduling_settings, receiver):
    receiver.script("1", Answer(200, raw=b"ok\x00bye"))
    with start_client(scheduling_settings) as client:
        task = create(client, receiver, "1")
        settled(client, task["id"])
        (log,) = logs_of(client, task["id"])
    assert log["response_body"] == "ok\ufffdbye"
    assert log["status"] == "success"


def test_the_discord_message_id_is_read_from_a_reply_over_a_kib(discord_settings, receiver):
    reply = discord_message("x" * 700 + "\u00e9" * 400)
    receiver.script("1", reply)
    with start_client(discord_settings) as client:
        task = create(client, receiver, "1")
        settled(client, task["id"])
        (log,) = logs_of(client, task["id"])
    assert len(reply.encoded()) > 1024
    assert log["message"] == f"Delivered (HTTP 200, Discord message {reply.body['id']})"
    assert len(log["response_body"]) <= 1024


@pytest.mark.parametrize(
    "answer",
    [
        Answer(429, {"message": "slow down", "retry_after": 0, "global": False}),
        Answer(429, None, {"Retry-After": "0"}),
        Answer(429, None, {"Retry-After": "0.001"}),
        Answer(429, None, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
    ],
    ids=["retry_after-0", "header-0", "header-tiny", "date-in-the-past"],
)
def test_a_429_asking_for_no_wait_waits_a_second_and_the_bound_holds(
    scheduling_settings, receiver, answer: Answer
):
    settings = scheduling_settings.model_copy(update={"max_rate_limit_wait_seconds": 2.5})
    receiver.script("1", *[answer] * 50)
    with start_client(settings) as client:
        task = create(client, receiver, "1", max_retry=0)
        final = settled(client, task["id"])
        logs = logs_of(client, task["id"])
    requests = receiver.received("1")
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(requests)]
    # At least 1 s between tries; 2.5 s of waits allowed: 2 waits, then the 429 is a failure.
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert len(requests) == 3
    assert len(logs) == 3
    assert before_resume(final) == "deactivated after 1 failed attempt: rate limited (HTTP 429)"


# -- the engine -------------------------------------------------------------------------------


def test_a_task_that_cannot_be_planned_is_stopped_and_the_others_go_on(
    scheduling_settings, db, receiver
):
    api_only = scheduling_settings.model_copy(update={"scheduler_enabled": False})
    with start_client(api_only) as api:
        broken = create(api, receiver, "broken", schedule="@every 1s", run_at=None)
        healthy = create(api, receiver, "healthy")
    with db() as session, session.begin():
        # A timezone this replica's tzdata lacks (a restore, a version skew).
        session.execute(
            update(Task)
            .where(Task.id == uuid.UUID(broken["id"]))
            .values(timezone="Mars/Olympus_Mons", next_run_at=datetime.now(UTC))
        )
    with start_client(scheduling_settings) as client:
        receiver.wait_for(1, webhook_id="healthy")
        final = settled(client, broken["id"])
        assert settled(client, healthy["id"])["status_reason"].startswith("completed")
    assert final["status_reason"].startswith("schedule cannot be evaluated")
    assert "Mars/Olympus_Mons" in final["status_reason"]
    assert final["next_run_at"] is None
    assert receiver.received("broken") == []


@pytest.mark.parametrize("change", ["edit", "pause"])
def test_a_one_time_task_changed_in_flight_still_ends_with_its_outcome(
    scheduling_settings, receiver, change: str
):
    receiver.script("1", Answer(204, delay=1.0))
    with start_client(scheduling_settings) as client:
        task = create(client, receiver, "1")
        receiver.wait_for(1)
        if change == "edit":
            changed = client.patch(f"/tasks/{task['id']}", json={"name": "renamed in flight"})
        else:
            changed = client.post(f"/tasks/{task['id']}/pause")
        assert changed.status_code == 200
        wait_until(lambda: logs_of(client, task["id"]), what="the delivery to be recorded")
        final = client.get(f"/tasks/{task['id']}").json()
        # Resuming it does not send it a second time.
        resumed = client.post(f"/tasks/{task['id']}/resume")
        after = client.get(f"/tasks/{task['id']}").json()
    assert final["status"] == "inactive"
    assert final["status_reason"].startswith("completed")
    assert final["next_run_at"] is None
    assert resumed.status_code == 409
    assert "already delivered" in resumed.json()["detail"]
    assert after == final
    assert len(receiver.received("1")) == 1


def test_a_one_time_task_rescheduled_in_flight_keeps_its_new_time(scheduling_settings, receiver):
    receiver.script("1", Answer(204, delay=1.0))
    with start_client(scheduling_settings) as client:
        task = create(client, receiver, "1")
        receiver.wait_for(1)
        later = datetime.now(UTC) + timedelta(hours=1)
        client.patch(f"/tasks/{task['id']}", json={"run_at": later.isoformat()})
        wait_until(lambda: logs_of(client, task["id"]), what="the delivery to be recorded")
        final = client.get(f"/tasks/{task['id']}").json()
    assert final["status"] == "active"
    assert abs((datetime.fromisoformat(final["next_run_at"]) - later).total_seconds()) < 0.001


def test_a_manual_run_of_a_paused_task_that_fails_is_not_a_deactivation(discord_settings, receiver):
    settings = discord_settings.model_copy(update={"alert_webhook_url": receiver.url("alerts")})
    receiver.script("paused", unknown_webhook())
    receiver.script("active", unknown_webhook())
    with start_client(settings) as client:
        paused = create(client, receiver, "paused", schedule="@daily", run_at=None)
        client.post(f"/tasks/{paused['id']}/pause")
        assert client.post(f"/tasks/{paused['id']}/execute").status_code == 202
        wait_until(lambda: logs_of(client, paused["id"]), what="the manual run's log row")
        after_manual = metric(client, "insignia_task_deactivations_total")
        # A task that really is deactivated afterwards: its alert is the only one.
        active = create(client, receiver, "active")
        (alert,) = receiver.wait_for(1, webhook_id="alerts")
        state = client.get(f"/tasks/{paused['id']}").json()
        after_real = metric(client, "insignia_task_deactivations_total")
    assert after_manual == 0
    assert after_real == 1
    assert active["id"] in alert.body["content"]
    assert paused["id"] not in alert.body["content"]
    assert state["status_reason"] == "paused through the API"
    assert len(receiver.received("alerts")) == 1


# -- clocks ---------------------------------------------------------------------------------


def test_a_replica_whose_clock_is_ahead_neither_fires_early_nor_sends_twice(
    scheduling_settings, db, receiver, caplog: pytest.LogCaptureFixture
):
    ahead = timedelta(seconds=90)
    receiver.script("slow", Answer(204, delay=1.5))  # in flight while the other replica looks
    with (
        start_client(scheduling_settings) as client,
        second_scheduler(scheduling_settings, lambda: datetime.now(UTC) + ahead),
    ):
        due = datetime.now(UTC) + timedelta(seconds=2)
        slow = create(client, receiver, "slow", run_at=datetime.now(UTC).isoformat())
        punctual = create(client, receiver, "punctual", run_at=due.isoformat())
        recurring = create(client, receiver, "every", schedule="@every 1s", run_at=None)
        (request,) = receiver.wait_for(1, webhook_id="punctual")
        settled(client, slow["id"])
        every = receiver.wait_for(4, webhook_id="every")
        client.post(f"/tasks/{recurring['id']}/pause")
    assert request.at >= due, f"fired {(due - request.at).total_seconds():.3f} s early"
    assert len(receiver.received("slow")) == 1
    for got in every:
        assert got.at >= datetime.fromisoformat(got.scheduled_for.replace("Z", "+00:00"))
    keys = [got.key for got in receiver.received("every")]
    assert len(keys) == len(set(keys))
    assert open_occurrences(db, punctual["id"]) == []
    warning = "this machine's clock is off the database's"
    assert [r for r in caplog.records if r.getMessage().startswith(warning)]
