"""Failing tasks come back by themselves (SPEC §8): the health ladder with short settings,
against the receiver, on SQLite and PostgreSQL."""

import re
import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.models import Occurrence
from harness.receiver import Answer, WebhookReceiver, server_error, unknown_webhook
from harness.replica import second_scheduler
from harness.waiting import wait_until
from tests.integration.conftest import start_client

LADDER = {
    "auto_resume_first_seconds": 1.0,
    "auto_resume_max_seconds": 2.0,
    "auto_resume_give_up_seconds": 120.0,
}


@pytest.fixture
def ladder_settings(scheduling_settings: Settings) -> Settings:
    return scheduling_settings.model_copy(update=LADDER)


@pytest.fixture
def discord_ladder_settings(ladder_settings: Settings) -> Settings:
    """The receiver on 127.0.0.1 counts as Discord: probes are GETs of the webhook."""
    return ladder_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})


@pytest.fixture
def service(ladder_settings: Settings) -> Iterator[TestClient]:
    with start_client(ladder_settings) as client:
        yield client


def every_second(client: TestClient, receiver: WebhookReceiver, hook: str, **fields) -> dict:
    body = {
        "name": f"hook {hook}",
        "schedule": "@every 1s",
        "webhook_url": receiver.url(hook),
        "payload": {"content": f"hello {hook}"},
        "max_retry": 0,
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 201, response.text
    return response.json()


def task_of(client: TestClient, task: dict) -> dict:
    return client.get(f"/tasks/{task['id']}").json()


def wait_for_task(client: TestClient, task: dict, check, what: str, timeout: float = 15) -> dict:
    return wait_until(
        lambda: (t := task_of(client, task)) and check(t) and t, timeout=timeout, what=what
    )


def logs_of(client: TestClient, task: dict) -> list[dict]:
    rows = client.get(f"/task-logs/task/{task['id']}", params={"limit": 1000}).json()
    return rows["task_logs"][::-1]


def open_probes(db: sessionmaker[Session], task: dict) -> list[Occurrence]:
    with db() as session:
        query = select(Occurrence).where(
            Occurrence.task_id == uuid.UUID(task["id"]),
            Occurrence.trigger == "probe",
            Occurrence.finished_at.is_(None),
        )
        return list(session.scalars(query))


def metric(client: TestClient, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", client.get("/metrics").text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_generic_task_resumes_and_its_next_occurrence_is_the_test(service, receiver, db):
    receiver.script("gen", server_error())
    task = every_second(service, receiver, "gen")
    off = wait_for_task(service, task, lambda t: t["status"] == "inactive", "deactivation")
    assert off["resume_at"] is not None
    assert "; trying again at " in off["status_reason"]
    assert instant(off["status_changed_at"]) > instant(task["status_changed_at"])
    assert (instant(off["resume_at"]) - instant(off["status_changed_at"])).total_seconds() > 0.5
    back = wait_for_task(service, task, lambda t: t["status"] == "active", "the task to resume")
    assert back["resume_at"] is None
    assert back["status_reason"] is None
    # The next regular occurrence is delivered, which ends the streak of failures.
    receiver.wait_for(2, webhook_id="gen")
    wait_until(
        lambda: [log for log in logs_of(service, task) if log["status"] == "success"],
        what="a successful delivery after the resume",
    )
    probe = next(log for log in logs_of(service, task) if log["trigger"] == "probe")
    assert probe["status"] == "success"
    assert probe["message"].startswith("resumed without a request")
    assert [r.method for r in receiver.received("gen")][:2] == ["POST", "POST"]
    assert metric(service, "insignia_task_recoveries_total") == 1
    assert metric(service, 'insignia_probes_total{step="resumed"}') == 1
    service.post(f"/tasks/{task['id']}/pause")


def test_a_discord_task_resumes_through_a_get_that_posts_nothing(discord_ladder_settings, receiver):
    alerts = discord_ladder_settings.model_copy(
        update={"alert_webhook_url": receiver.url("alerts")}
    )
    receiver.script("dc", server_error())
    with start_client(alerts) as service:
        task = every_second(service, receiver, "dc")
        wait_for_task(service, task, lambda t: t["status"] == "inactive", "deactivation")
        (get,) = receiver.wait_until(
            lambda got: any(r.method == "GET" for r in got), webhook_id="dc", what="the probe"
        )[1:2]
        wait_for_task(service, task, lambda t: t["status"] == "active", "the task to resume")
        receiver.wait_for(3, webhook_id="dc")  # the next regular occurrence
        service.post(f"/tasks/{task['id']}/pause")
        kinds = [a.body["content"] for a in receiver.wait_for(2, webhook_id="alerts")]
    first, probe, after = receiver.received("dc")[:3]
    assert (first.method, probe.method, after.method) == ("POST", "GET", "POST")
    assert get.query.get("wait") is None  # a plain GET of the webhook
    assert "was deactivated" in kinds[0] and "trying again at" in kinds[0]
    assert "is active again" in kinds[1]


@pytest.mark.parametrize(
    ("answer", "resumes"),
    [(unknown_webhook(), False), (Answer(401, {"message": "401: Unauthorized"}), False)],
    ids=["404", "401"],
)
def test_a_webhook_that_is_gone_never_resumes(
    discord_ladder_settings, receiver, db, answer, resumes
):
    receiver.script("gone", answer)
    with start_client(discord_ladder_settings) as service:
        task = every_second(service, receiver, "gone", max_retry=3)
        off = wait_for_task(service, task, lambda t: t["status"] == "inactive", "deactivation")
        assert off["resume_at"] is None
        assert open_probes(db, task) == []
    assert len(receiver.received("gone")) == 1
    assert resumes is False


def test_a_probe_answered_404_stops_the_ladder_and_500_climbs_it(
    discord_ladder_settings, receiver, db
):
    receiver.script("dc", server_error())
    receiver.script_get("dc", server_error(), unknown_webhook())
    with start_client(discord_ladder_settings) as service:
        task = every_second(service, receiver, "dc")
        done = wait_for_task(
            service,
            task,
            lambda t: t["status_reason"] and t["status_reason"].startswith("not resumed"),
            "the ladder to stop",
        )
        probes = [log for log in logs_of(service, task) if log["trigger"] == "probe"]
        assert open_probes(db, task) == []
    first_get, second_get = receiver.gets("dc")
    # The second probe came a step later: 2 s after the first (first 1 s, doubling, cap 2 s).
    assert (second_get.at - first_get.at).total_seconds() >= 1.9
    assert done["status"] == "inactive"
    assert done["resume_at"] is None
    assert "webhook no longer exists (HTTP 404)" in done["status_reason"]
    assert [p["http_status"] for p in probes] == [500, 404]
    assert len(receiver.posts("dc")) == 1


def test_auto_resume_false_stays_off(service, receiver, db):
    receiver.script("off", server_error())
    task = every_second(service, receiver, "off", auto_resume=False)
    off = wait_for_task(service, task, lambda t: t["status"] == "inactive", "deactivation")
    assert off["auto_resume"] is False
    assert off["resume_at"] is None
    assert off["status_reason"] == "deactivated after 1 failed attempt: HTTP 500 from webhook"
    assert open_probes(db, task) == []


def test_pausing_clears_the_ladder(service, receiver, db):
    receiver.script("p", server_error())
    task = every_second(service, receiver, "p")
    wait_for_task(service, task, lambda t: t["resume_at"] is not None, "a resume_at")
    paused = service.post(f"/tasks/{task['id']}/pause").json()
    assert paused["resume_at"] is None
    assert paused["status_reason"] == "paused through the API"
    assert open_probes(db, task) == []


def test_a_probe_is_claimed_once_with_two_schedulers(discord_ladder_settings, receiver):
    settings = discord_ladder_settings.model_copy(update={"auto_resume_first_seconds": 1.5})
    receiver.script("two", server_error())
    with start_client(settings) as service, second_scheduler(settings):
        task = every_second(service, receiver, "two")
        wait_for_task(
            service,
            task,
            lambda t: t["status"] == "active" and t["last_status"] == "success",
            "recovery",
            timeout=20,
        )
        service.post(f"/tasks/{task['id']}/pause")
        probes = [log for log in logs_of(service, task) if log["trigger"] == "probe"]
    assert len(receiver.gets("two")) == 1
    assert len(probes) == 1
