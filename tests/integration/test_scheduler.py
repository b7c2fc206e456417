"""The scheduler in the service process, delivering to a real HTTP receiver on 127.0.0.1."""

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.models import Occurrence, Task, TaskLog
from app.scheduling.store import OccurrenceStore
from harness.receiver import WebhookReceiver
from harness.waiting import wait_until
from tests.integration.conftest import start_client


def create_task(client: TestClient, receiver: WebhookReceiver, hook: str = "1", **fields) -> dict:
    body = {"name": f"task {hook}", "webhook_url": receiver.url(hook), "payload": {"n": hook}}
    body.update(fields)
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def logs_of(client: TestClient, task_id: str) -> list[dict]:
    return client.get(f"/task-logs/task/{task_id}", params={"limit": 1000}).json()["task_logs"]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_one_time_task_fires_on_time_once_then_completes(
    service: TestClient, receiver: WebhookReceiver
):
    run_at = datetime.now(UTC) + timedelta(seconds=1.5)
    task = create_task(service, receiver, schedule=None, run_at=run_at.isoformat())

    (request,) = receiver.wait_for(1, timeout=10)
    lateness = (request.at - run_at).total_seconds()
    assert 0 <= lateness < 0.5, f"fired {lateness:+.3f} s from run_at"
    assert request.body == {"n": "1"}
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("InsigniaTaskScheduler/")
    assert instant(request.scheduled_for) == run_at
    uuid.UUID(request.key)

    done = wait_until(
        lambda: (t := service.get(f"/tasks/{task['id']}").json())["status"] == "inactive" and t,
        what="the one-time task to complete",
    )
    assert done["status_reason"].startswith("completed")
    assert done["next_run_at"] is None
    assert done["last_status"] == "success"
    (log,) = logs_of(service, task["id"])
    assert (log["status"], log["trigger"], log["retry_count"]) == ("success", "schedule", 0)
    assert log["http_status"] == 204
    assert instant(log["scheduled_for"]) == run_at
    assert len(receiver.received()) == 1


def test_interval_task_fires_every_occurrence_once(service: TestClient, receiver: WebhookReceiver):
    task = create_task(service, receiver, schedule="@every 1s")
    got = receiver.wait_for(4, timeout=10)
    times = [instant(r.scheduled_for) for r in got[:4]]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(times)] == [1, 1, 1]
    assert len({r.key for r in got}) == len(got)
    for request in got:
        assert 0 <= (request.at - instant(request.scheduled_for)).total_seconds() < 0.5
    logs = wait_until(
        lambda: len(logs_of(service, task["id"])) >= 4 and logs_of(service, task["id"])
    )
    assert {log["trigger"] for log in logs} == {"schedule"}


def test_a_change_wakes_the_scheduler(service: TestClient, receiver: WebhookReceiver):
    far = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    task = create_task(service, receiver, schedule=None, run_at=far)
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    service.put(f"/tasks/{task['id']}", json={"run_at": soon.isoformat()})
    (request,) = receiver.wait_for(1, timeout=5)
    assert (request.at - soon).total_seconds() < 0.5


def test_execute_delivers_now_without_moving_the_schedule(
    service: TestClient, receiver: WebhookReceiver
):
    task = create_task(service, receiver, schedule="0 0 1 1 *")
    response = service.post(f"/tasks/{task['id']}/execute")
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["task_id"] == task["id"]
    (request,) = receiver.wait_for(1, timeout=5)
    assert request.headers["x-insignia-trigger"] == "manual"
    assert request.key == accepted["occurrence_id"]
    log = wait_until(lambda: logs_of(service, task["id"]))[0]
    assert (log["trigger"], log["status"]) == ("manual", "success")
    after = service.get(f"/tasks/{task['id']}").json()
    assert after["next_run_at"] == task["next_run_at"]
    assert after["status"] == "active"
    assert service.post("/tasks/00000000-0000-0000-0000-000000000000/execute").status_code == 404


def test_pause_stops_deliveries_and_resume_restarts_them(
    service: TestClient, receiver: WebhookReceiver
):
    task = create_task(service, receiver, hook="paused", schedule="@every 1s")
    create_task(service, receiver, hook="clock", schedule="@every 1s")
    receiver.wait_for(1, webhook_id="paused", timeout=5)

    paused = service.post(f"/tasks/{task['id']}/pause").json()
    assert (paused["status"], paused["next_run_at"]) == ("inactive", None)
    assert paused["status_reason"]
    count_at_pause = len(receiver.received("paused"))
    # Three more ticks of the other task prove the scheduler kept running for 2+ seconds.
    ticks = len(receiver.received("clock"))
    receiver.wait_for(ticks + 3, webhook_id="clock", timeout=10)
    # At most the delivery already in flight when the pause was answered may still arrive.
    assert len(receiver.received("paused")) <= count_at_pause + 1

    resumed_at = datetime.now(UTC)
    resumed = service.post(f"/tasks/{task['id']}/resume").json()
    assert resumed["status"] == "active"
    assert resumed["status_reason"] is None
    assert instant(resumed["next_run_at"]) > resumed_at
    before = len(receiver.received("paused"))
    got = receiver.wait_for(before + 1, webhook_id="paused", timeout=5)
    assert instant(got[-1].scheduled_for) > resumed_at


def test_next_runs_in_utc_and_local_time(service: TestClient, receiver: WebhookReceiver):
    task = create_task(service, receiver, schedule="0 9 * * *", timezone="America/New_York")
    body = service.get(f"/tasks/{task['id']}/next-runs", params={"count": 3}).json()
    assert body["timezone"] == "America/New_York"
    assert len(body["next_runs"]) == 3
    for run in body["next_runs"]:
        local = datetime.fromisoformat(run["local"])
        assert (local.hour, local.minute) == (9, 0)
        assert instant(run["utc"]) == local
    first, second = (instant(run["utc"]) for run in body["next_runs"][:2])
    assert timedelta(hours=23) <= second - first <= timedelta(hours=25)
    assert service.get(f"/tasks/{task['id']}/next-runs", params={"count": 0}).status_code == 422
    assert service.get(f"/tasks/{task['id']}/next-runs", params={"count": 101}).status_code == 422
    default = service.get(f"/tasks/{task['id']}/next-runs").json()
    assert len(default["next_runs"]) == 5


# -- catch-up after downtime ------------------------------------------------------------------


def arrange_downtime(
    settings: Settings,
    db: sessionmaker[Session],
    receiver: WebhookReceiver,
    *,
    catchup: str,
    schedule: str = "@every 1m",
    down_for: timedelta = timedelta(minutes=10, seconds=30),
    period: timedelta = timedelta(minutes=1),
) -> uuid.UUID:
    """A task whose schedule fell due repeatedly while no scheduler ran: it was created
    `down_for` ago and its first occurrence was never claimed."""
    with start_client(api_only(settings)) as api:
        task = create_task(api, receiver, schedule=schedule, catchup=catchup)
    created = datetime.now(UTC) - down_for
    with db() as session, session.begin():
        session.execute(
            update(Task)
            .where(Task.id == uuid.UUID(task["id"]))
            .values(created_at=created, next_run_at=created + period)
        )
    return uuid.UUID(task["id"])


def api_only(settings: Settings) -> Settings:
    """The same service with its scheduler off: nothing is claimed."""
    return settings.model_copy(update={"scheduler_enabled": False})


def occurrences_of(db: sessionmaker[Session], task_id: uuid.UUID) -> list[Occurrence]:
    with db() as session:
        return list(session.scalars(select(Occurrence).where(Occurrence.task_id == task_id)))


def wait_for_claim(db: sessionmaker[Session], task_id: uuid.UUID) -> Task:
    """Wait until a scheduler has claimed the due task (its next_run_at is in the future)."""

    def claimed() -> Task | None:
        with db() as session:
            task = session.get(Task, task_id)
            return task if task.next_run_at > datetime.now(UTC) else None

    return wait_until(claimed, timeout=10, what="the due task to be claimed")


def test_catchup_latest_runs_once_for_everything_missed(
    scheduling_settings, db, receiver: WebhookReceiver
):
    task_id = arrange_downtime(scheduling_settings, db, receiver, catchup="latest")
    with start_client(scheduling_settings) as service:
        got = receiver.wait_for(1, timeout=10)
        task = wait_for_claim(db, task_id)
        log = wait_until(lambda: logs_of(service, str(task_id)))[0]
    assert len(receiver.received()) == 1
    assert got[0].headers["x-insignia-trigger"] == "catchup"
    assert log["trigger"] == "catchup"
    # The most recent missed occurrence (the tenth) is the one that ran.
    with db() as session:
        created = session.get(Task, task_id).created_at
    assert instant(got[0].scheduled_for) == created + timedelta(minutes=10)
    assert task.next_run_at == created + timedelta(minutes=11)


def test_catchup_none_skips_what_was_missed(scheduling_settings, db, receiver):
    task_id = arrange_downtime(scheduling_settings, db, receiver, catchup="none")
    with start_client(scheduling_settings):
        task = wait_for_claim(db, task_id)
    assert occurrences_of(db, task_id) == []
    assert receiver.received() == []
    assert task.status == "active"
    assert task.next_run_at == task.created_at + timedelta(minutes=11)


def test_catchup_all_runs_every_missed_occurrence(scheduling_settings, db, receiver):
    task_id = arrange_downtime(scheduling_settings, db, receiver, catchup="all")
    with start_client(scheduling_settings) as service:
        got = receiver.wait_for(10, timeout=10)
        wait_until(lambda: len(logs_of(service, str(task_id))) == 10, what="10 log rows")
    with db() as session:
        created = session.get(Task, task_id).created_at
    expected = {created + timedelta(minutes=m) for m in range(1, 11)}
    assert {instant(r.scheduled_for) for r in got} == expected
    assert len(receiver.received()) == 10
    assert {r.headers["x-insignia-trigger"] for r in got} == {"catchup"}


def test_catchup_all_is_capped_at_100(scheduling_settings, db, receiver):
    task_id = arrange_downtime(
        scheduling_settings,
        db,
        receiver,
        catchup="all",
        schedule="@every 1s",
        down_for=timedelta(seconds=300),
        period=timedelta(seconds=1),
    )
    # Stop the task right after the claim so only the catch-up burst is delivered.
    with start_client(scheduling_settings) as service:
        wait_for_claim(db, task_id)
        service.post(f"/tasks/{task_id}/pause")
        receiver.wait_for(100, timeout=20)

        def catchups() -> int:
            with db() as session:
                query = select(TaskLog).where(
                    TaskLog.task_id == task_id, TaskLog.trigger == "catchup"
                )
                return len(session.scalars(query).all())

        wait_until(lambda: catchups() == 100, timeout=20, what="100 catch-up log rows")
    catchup_requests = [
        r for r in receiver.received() if r.headers["x-insignia-trigger"] == "catchup"
    ]
    assert len(catchup_requests) == 100
    assert len({r.scheduled_for for r in catchup_requests}) == 100


@pytest.mark.parametrize(("catchup", "delivered"), [("none", 0), ("latest", 1)])
def test_missed_one_time_task(scheduling_settings, db, receiver, catchup, delivered):
    with start_client(api_only(scheduling_settings)) as api:
        future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
        task = create_task(api, receiver, schedule=None, run_at=future, catchup=catchup)
    missed = datetime.now(UTC) - timedelta(minutes=5)
    with db() as session, session.begin():
        session.execute(
            update(Task)
            .where(Task.id == uuid.UUID(task["id"]))
            .values(run_at=missed, next_run_at=missed)
        )
    with start_client(scheduling_settings) as service:
        final = wait_until(
            lambda: (t := service.get(f"/tasks/{task['id']}").json())["status"] == "inactive" and t,
            what="the one-time task to finish",
        )
    assert len(receiver.received()) == delivered
    assert final["status_reason"].startswith("skipped" if catchup == "none" else "completed")


def test_a_failing_prune_does_not_stop_the_scheduler(
    scheduling_settings, receiver, monkeypatch: pytest.MonkeyPatch
):
    calls = []

    def broken_prune(self):
        calls.append(1)
        raise OperationalError("DELETE", {}, Exception("database is locked"))

    real_next_wake = OccurrenceStore.next_wake

    def slow_next_wake(self):
        time.sleep(0.5)  # a slow query after the claim: readiness must not wait for it
        return real_next_wake(self)

    monkeypatch.setattr(OccurrenceStore, "prune_finished", broken_prune)
    monkeypatch.setattr(OccurrenceStore, "next_wake", slow_next_wake)
    with start_client(scheduling_settings) as service:
        wait_until(lambda: calls, what="the scheduler to try pruning")
        create_task(service, receiver, schedule=None, run_at=datetime.now(UTC).isoformat())
        receiver.wait_for(1, timeout=10)
        # The claim that led to this delivery reached the database: ready again already.
        assert service.get("/readyz").status_code == 200


def test_a_recorder_error_does_not_stop_recording(
    scheduling_settings, receiver, monkeypatch: pytest.MonkeyPatch
):
    real = OccurrenceStore.record
    failures = []

    def flaky(self, attempts, **kwargs):
        if not failures:
            failures.append(1)
            raise RuntimeError("unexpected")
        return real(self, attempts, **kwargs)

    monkeypatch.setattr(OccurrenceStore, "record", flaky)
    with start_client(scheduling_settings) as service:
        first = create_task(service, receiver, hook="a", schedule="0 0 1 1 *")
        service.post(f"/tasks/{first['id']}/execute")
        wait_until(lambda: failures, what="the first recording to fail")
        second = create_task(service, receiver, hook="b", schedule="0 0 1 1 *")
        service.post(f"/tasks/{second['id']}/execute")
        wait_until(lambda: logs_of(service, second["id"]), what="the next attempt to be recorded")
        assert service.get("/readyz").json()["checks"]["scheduler"] == "ok"


def test_putting_the_same_values_back_keeps_a_due_run(
    scheduling_settings, db, receiver: WebhookReceiver
):
    with start_client(api_only(scheduling_settings)) as api:
        task = create_task(api, receiver, schedule="@every 1h")
        due = datetime.now(UTC) - timedelta(minutes=5)
        with db() as session, session.begin():
            session.execute(
                update(Task).where(Task.id == uuid.UUID(task["id"])).values(next_run_at=due)
            )
        same = {key: task[key] for key in ("name", "schedule", "timezone", "status", "payload")}
        after = api.put(f"/tasks/{task['id']}", json=same).json()
        assert instant(after["next_run_at"]) == due
        assert after["updated_at"] == task["updated_at"]
        resumed = api.post(f"/tasks/{task['id']}/resume").json()
        assert instant(resumed["next_run_at"]) == due


def test_log_rows_past_the_retention_are_deleted(scheduling_settings, db, receiver):
    settings = scheduling_settings.model_copy(update={"log_retention_days": 7})
    with start_client(api_only(settings)) as api:
        task = create_task(api, receiver, schedule="0 0 1 1 *")
        for days in (30, 8, 6, 1):
            at = (datetime.now(UTC) - timedelta(days=days)).isoformat()
            body = {"task_id": task["id"], "status": "success", "execution_time": at}
            assert api.post("/task-logs", json=body).status_code == 201
    with start_client(settings) as service:
        kept = wait_until(
            lambda: (rows := logs_of(service, task["id"])) and len(rows) == 2 and rows,
            what="the old rows to be deleted",
        )
    ages = sorted((datetime.now(UTC) - instant(log["execution_time"])).days for log in kept)
    assert ages == [1, 6]
