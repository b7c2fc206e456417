"""What a due task fires, under each catch-up policy (no database: transient Task objects)."""

from datetime import UTC, datetime, timedelta

import pytest

from app.models import Task
from app.scheduling.planner import (
    CATCHUP_LIMIT,
    end_reason,
    next_run_after,
    plan_due,
    upcoming_runs,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)


def task(**fields) -> Task:
    defaults = {
        "schedule": "@every 1m",
        "run_at": None,
        "timezone": "UTC",
        "catchup": "latest",
        "status": "active",
        "created_at": T0,
        "next_run_at": T0 + timedelta(minutes=1),
    }
    return Task(**(defaults | fields))


def minutes(*values: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in values]


def test_on_time_occurrence_runs_with_trigger_schedule():
    plan = plan_due(task(), now=T0 + timedelta(minutes=1, milliseconds=3), grace=GRACE)
    assert [(f.scheduled_for, f.trigger) for f in plan.firings] == [(minutes(1)[0], "schedule")]
    assert plan.next_run_at == minutes(2)[0]
    assert plan.stop_reason is None


@pytest.mark.parametrize(
    ("catchup", "expected"),
    [
        ("latest", [(10, "catchup")]),
        ("none", []),
        ("all", [(m, "catchup") for m in range(1, 11)]),
    ],
)
def test_missed_occurrences_follow_the_policy(catchup, expected):
    # Down from 12:00:30 to 12:10:45 with a 30 s grace: occurrences 12:01 .. 12:10 were missed.
    now = T0 + timedelta(minutes=10, seconds=45)
    plan = plan_due(task(catchup=catchup), now=now, grace=timedelta(seconds=30))
    assert [(f.scheduled_for, f.trigger) for f in plan.firings] == [
        (T0 + timedelta(minutes=m), trigger) for m, trigger in expected
    ]
    assert plan.next_run_at == minutes(11)[0]


def test_occurrences_within_grace_run_as_scheduled_after_missed_ones():
    # With a 90 s grace at 12:11:05, 12:01 .. 12:09 were missed; 12:10 and 12:11 are on time.
    now = T0 + timedelta(minutes=11, seconds=5)
    plan = plan_due(task(catchup="all"), now=now, grace=timedelta(seconds=90))
    triggers = [(f.scheduled_for, f.trigger) for f in plan.firings]
    assert triggers[-3:] == [
        (minutes(9)[0], "catchup"),
        (minutes(10)[0], "schedule"),
        (minutes(11)[0], "schedule"),
    ]
    assert len(triggers) == 11


def test_catchup_all_keeps_the_latest_hundred():
    now = T0 + timedelta(hours=5)
    plan = plan_due(task(catchup="all"), now=now, grace=GRACE)
    catchups = [f.scheduled_for for f in plan.firings if f.trigger == "catchup"]
    assert len(catchups) == CATCHUP_LIMIT
    assert catchups[-1] == now - GRACE  # 16:59, the last one more than a minute late
    assert catchups[0] == now - GRACE - timedelta(minutes=CATCHUP_LIMIT - 1)


def test_one_time_task_due_on_time_then_no_next_run():
    one = task(schedule=None, run_at=T0, next_run_at=T0)
    plan = plan_due(one, now=T0 + timedelta(seconds=1), grace=GRACE)
    assert [(f.scheduled_for, f.trigger) for f in plan.firings] == [(T0, "schedule")]
    assert plan.next_run_at is None
    assert plan.stop_reason is None


@pytest.mark.parametrize(
    ("catchup", "firings", "stops"), [("none", [], True), ("latest", [(T0, "catchup")], False)]
)
def test_missed_one_time_task(catchup, firings, stops):
    one = task(schedule=None, run_at=T0, next_run_at=T0, catchup=catchup)
    plan = plan_due(one, now=T0 + timedelta(hours=1), grace=GRACE)
    assert [(f.scheduled_for, f.trigger) for f in plan.firings] == firings
    assert (plan.stop_reason is not None) == stops


def test_next_run_after_for_each_kind():
    assert next_run_after(task(), after=T0 + timedelta(seconds=61)) == minutes(2)[0]
    assert next_run_after(task(status="inactive"), after=T0) is None
    future = task(schedule=None, run_at=T0 + timedelta(days=1))
    assert next_run_after(future, after=T0) == T0 + timedelta(days=1)
    past = task(schedule=None, run_at=T0 - timedelta(days=1))
    assert next_run_after(past, after=T0) == T0  # already passed: at once


def test_cron_next_run_uses_the_task_timezone():
    paris = task(schedule="0 9 * * *", timezone="Europe/Paris")
    assert next_run_after(paris, after=T0) == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_upcoming_runs_ignore_status():
    paused = task(status="inactive")
    assert [fire.at for fire in upcoming_runs(paused, after=T0, count=3)] == minutes(1, 2, 3)
    done = task(schedule=None, run_at=T0 - timedelta(minutes=1))
    assert upcoming_runs(done, after=T0, count=3) == []


def test_max_runs_trims_the_last_claim_and_leaves_no_next_run():
    due = task(max_runs=3, runs=2, catchup="all", next_run_at=T0 + timedelta(minutes=1))
    plan = plan_due(due, now=T0 + timedelta(minutes=3, seconds=1), grace=GRACE)
    assert [f.scheduled_for for f in plan.firings] == minutes(1)
    assert (plan.next_run_at, plan.stop_reason) == (None, None)  # ends once that run is over


def test_a_task_whose_runs_are_spent_fires_no_more():
    spent = task(max_runs=2, runs=2)
    assert next_run_after(spent, after=T0) is None
    assert upcoming_runs(spent, after=T0, count=5) == []
    assert end_reason(spent) == "completed 2 runs"


def test_end_at_bounds_the_plan_and_names_the_end():
    bounded = task(end_at=T0 + timedelta(minutes=2, seconds=30))
    plan = plan_due(bounded, now=T0 + timedelta(minutes=1, milliseconds=5), grace=GRACE)
    assert plan.next_run_at == minutes(2)[0]
    last = task(end_at=T0 + timedelta(minutes=2, seconds=30), next_run_at=minutes(2)[0])
    plan = plan_due(last, now=minutes(2)[0], grace=GRACE)
    assert ([f.scheduled_for for f in plan.firings], plan.next_run_at) == (minutes(2), None)
    assert end_reason(last) == "ended: its end_at (2026-03-01T12:02:30+00:00) has passed"


def test_nothing_left_to_run_stops_the_task_at_once():
    gone = task(end_at=T0 + timedelta(seconds=30), catchup="none", next_run_at=minutes(1)[0])
    plan = plan_due(gone, now=minutes(5)[0], grace=GRACE)
    assert plan.firings == []
    assert plan.stop_reason == "ended: its end_at (2026-03-01T12:00:30+00:00) has passed"


def test_quiet_hours_mark_the_firings_they_touch():
    quiet = task(
        schedule="*/30 * * * *",
        next_run_at=datetime(2026, 3, 1, 22, 0, tzinfo=UTC),
        quiet_hours={"from": "21:45", "to": "23:00", "mode": "silent"},
    )
    plan = plan_due(quiet, now=datetime(2026, 3, 1, 22, 0, 0, 5000, tzinfo=UTC), grace=GRACE)
    assert [(f.scheduled_for.hour, f.kind.value) for f in plan.firings] == [(22, "silent")]
