"""The pure decision after an attempt: a table of cases, no database, no clock."""

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.delivery.outcome import Outcome, OutcomeKind
from app.domain import LogStatus, TaskStatus, Trigger
from app.scheduling.attempts import (
    Alert,
    Attempt,
    Job,
    OccurrenceState,
    RetryPolicy,
    Step,
    TaskChange,
    TaskState,
    decide,
    draw_jitter,
)
from app.scheduling.ladder import HEALTHY, Ladder, ResumePolicy, climb

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLAIMED_VERSION = NOW - timedelta(hours=1)
POLICY = RetryPolicy(
    backoff_base_seconds=2, backoff_max_seconds=600, max_rate_limit_wait_seconds=10
)

SUCCESS = Outcome(kind=OutcomeKind.SUCCESS, message="Delivered (HTTP 204)", http_status=204)
TRANSIENT = Outcome(kind=OutcomeKind.TRANSIENT_FAILURE, message="HTTP 500 from webhook")
PERMANENT = Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message="webhook no longer exists")
DEFERRED = Outcome(kind=OutcomeKind.DEFERRED, message="paced", retry_after=3.0)


def limited(retry_after: float | None) -> Outcome:
    return Outcome(
        kind=OutcomeKind.RATE_LIMITED,
        message="rate limited (HTTP 429)",
        http_status=429,
        retry_after=retry_after,
    )


def job(*, one_time: bool = False, trigger: Trigger = Trigger.SCHEDULE, attempt: int = 0) -> Job:
    return Job(
        occurrence_id=uuid.uuid4(),
        task_id=uuid.uuid4(),
        scheduled_for=NOW - timedelta(seconds=1),
        trigger=trigger,
        attempt=attempt,
        webhook_url="https://hooks.example.com/x",
        payload={},
        max_retry=3,
        task_name="one-time" if one_time else "recurring",
        task_version=CLAIMED_VERSION,
        lease_expires_at=NOW + timedelta(seconds=60),
    )


def task_state(
    *, one_time: bool, state: str = "active", next_run_at: datetime | None = None
) -> TaskState:
    """The task as recording finds it: `state` is active, paused, or edited (since the claim)."""
    return TaskState(
        status=TaskStatus.INACTIVE if state == "paused" else TaskStatus.ACTIVE,
        schedule=None if one_time else "@hourly",
        next_run_at=next_run_at if one_time else NOW + timedelta(hours=1),
        updated_at=CLAIMED_VERSION if state == "active" else NOW - timedelta(seconds=1),
        last_run_at=None,
    )


def run(
    outcome: Outcome,
    *,
    one_time: bool = False,
    state: str = "active",
    attempt: int = 0,
    waited: float = 0.0,
    trigger: Trigger = Trigger.SCHEDULE,
):
    the_job = job(one_time=one_time, trigger=trigger, attempt=attempt)
    return decide(
        Attempt(job=the_job, outcome=outcome, started_at=NOW),
        task_state(one_time=one_time, state=state),
        OccurrenceState(attempt=attempt, rate_limit_wait_seconds=waited),
        now=NOW,
        policy=POLICY,
    )


# (outcome, one_time, task state, attempt) -> (step, task status afterwards or None: unchanged)
CASES = [
    # success
    (SUCCESS, False, "active", 0, Step.DELIVERED, None),
    (SUCCESS, False, "paused", 0, Step.DELIVERED, None),
    (SUCCESS, False, "edited", 0, Step.DELIVERED, None),
    (SUCCESS, True, "active", 0, Step.COMPLETED, TaskStatus.INACTIVE),
    (SUCCESS, True, "paused", 0, Step.COMPLETED, TaskStatus.INACTIVE),
    (SUCCESS, True, "edited", 0, Step.COMPLETED, TaskStatus.INACTIVE),
    # a transient failure with retries left, and with them spent
    (TRANSIENT, False, "active", 0, Step.RETRY_SCHEDULED, None),
    (TRANSIENT, True, "active", 2, Step.RETRY_SCHEDULED, None),
    (TRANSIENT, False, "edited", 1, Step.RETRY_SCHEDULED, None),
    (TRANSIENT, False, "active", 3, Step.DEACTIVATED, TaskStatus.INACTIVE),
    (TRANSIENT, True, "active", 3, Step.DEACTIVATED, TaskStatus.INACTIVE),
    (TRANSIENT, False, "edited", 3, Step.GAVE_UP, None),
    (TRANSIENT, True, "edited", 3, Step.DEACTIVATED, TaskStatus.INACTIVE),
    # an inactive (paused) task is not retried; a one-time one still ends with the outcome
    (TRANSIENT, False, "paused", 0, Step.FINISHED, None),
    (TRANSIENT, True, "paused", 0, Step.FINISHED, TaskStatus.INACTIVE),
    # a permanent failure never retries
    (PERMANENT, False, "active", 0, Step.DEACTIVATED, TaskStatus.INACTIVE),
    (PERMANENT, True, "active", 0, Step.DEACTIVATED, TaskStatus.INACTIVE),
    (PERMANENT, False, "edited", 0, Step.GAVE_UP, None),
    (PERMANENT, True, "paused", 0, Step.FINISHED, TaskStatus.INACTIVE),
    # a 429 waits without spending a retry
    (limited(2.0), False, "active", 0, Step.RATE_LIMITED, None),
    (limited(2.0), True, "active", 3, Step.RATE_LIMITED, None),
    (limited(2.0), False, "paused", 0, Step.FINISHED, None),
]


@pytest.mark.parametrize(("outcome", "one_time", "state", "attempt", "step", "status"), CASES)
def test_the_decision_table(outcome, one_time, state, attempt, step, status):
    decision = run(outcome, one_time=one_time, state=state, attempt=attempt)
    assert decision.step is step
    assert (decision.task.status if decision.task else None) == status
    assert decision.log is not None
    assert decision.log.status is (LogStatus.SUCCESS if outcome.success else LogStatus.FAILED)
    assert (decision.alert is not None) == (step is Step.DEACTIVATED)
    assert decision.occurrence is not None
    retried = step in (Step.RETRY_SCHEDULED, Step.RATE_LIMITED)
    assert decision.occurrence.finished is not retried


def test_a_retry_is_due_after_the_backoff_and_spends_a_retry():
    decision = run(TRANSIENT, attempt=1)
    assert decision.occurrence.attempt == 2
    assert decision.occurrence.available_at == NOW + timedelta(seconds=4)
    assert decision.log.message == "HTTP 500 from webhook; retry 2 of 3 at 2026-03-01T12:00:04Z"


def test_the_reasons_say_what_happened():
    assert run(TRANSIENT, attempt=3).task.status_reason == (
        "deactivated after 4 failed attempts: HTTP 500 from webhook;"
        " trying again at 2026-03-01T12:05:00Z"
    )
    assert run(PERMANENT, one_time=True).task.status_reason == (
        "deactivated after 1 failed attempt: webhook no longer exists"
    )
    # A paused one-time task was not deactivated by us: it failed.
    assert run(TRANSIENT, one_time=True, state="paused").task.status_reason == (
        "failed after 1 failed attempt: HTTP 500 from webhook"
    )
    assert run(SUCCESS, one_time=True).task.status_reason == (
        "completed: delivered at 2026-03-01T12:00:00+00:00"
    )
    assert run(TRANSIENT, attempt=3).log.message.endswith("; retries exhausted")
    assert run(PERMANENT).log.message.endswith("; not retried")


@pytest.mark.parametrize(
    ("asked", "waits"),
    [(0.0, 1.0), (0.001, 1.0), (None, 2.0), (2.5, 2.5)],
    ids=["zero", "tiny", "unsaid-waits-as-a-retry", "as-asked"],
)
def test_a_429_waits_at_least_a_second(asked, waits):
    # A date in the past reaches here as 0 (see retry_after_seconds).
    decision = run(limited(asked))
    assert decision.step is Step.RATE_LIMITED
    assert decision.occurrence.available_at == NOW + timedelta(seconds=waits)
    assert decision.occurrence.rate_limit_wait_seconds == waits
    assert decision.occurrence.attempt == 0


def test_429_waits_add_up_to_the_bound_then_count_as_a_failure():
    assert run(limited(0.0), waited=9.0).step is Step.RATE_LIMITED  # 9 + 1 <= 10
    over = run(limited(0.0), waited=9.5)
    assert over.step is Step.RETRY_SCHEDULED
    assert over.occurrence.attempt == 1
    # ...retried no sooner than the wait it asked for, nor than the backoff.
    assert over.occurrence.available_at == NOW + timedelta(seconds=2)
    assert run(limited(30.0), waited=0.0).step is Step.RETRY_SCHEDULED
    assert run(limited(30.0)).occurrence.available_at == NOW + timedelta(seconds=30)
    spent = run(limited(0.0), waited=9.5, attempt=3)
    assert spent.step is Step.DEACTIVATED


def test_a_manual_run_of_a_paused_task_that_gives_up_changes_nothing():
    decision = run(PERMANENT, state="paused", trigger=Trigger.MANUAL)
    assert decision.step is Step.GAVE_UP
    assert decision.task is None
    assert not decision.alert
    retried = run(TRANSIENT, state="paused", trigger=Trigger.MANUAL)
    assert retried.step is Step.RETRY_SCHEDULED  # a manual run is retried even when paused


def test_a_manual_run_of_an_active_task_that_gives_up_deactivates_it():
    decision = run(PERMANENT, trigger=Trigger.MANUAL)
    assert decision.step is Step.DEACTIVATED
    assert decision.alert


def test_a_manual_run_never_completes_a_one_time_task():
    assert run(SUCCESS, one_time=True, trigger=Trigger.MANUAL).task is None


def test_a_one_time_task_rescheduled_in_flight_keeps_its_new_run():
    the_job = job(one_time=True)
    later = NOW + timedelta(days=1)
    task = replace(task_state(one_time=True, state="edited"), next_run_at=later)
    for outcome in (SUCCESS, PERMANENT):
        decision = decide(
            Attempt(job=the_job, outcome=outcome, started_at=NOW),
            task,
            OccurrenceState(attempt=0, rate_limit_wait_seconds=0),
            now=NOW,
            policy=POLICY,
        )
        assert decision.task is None


def test_a_task_that_is_gone_writes_nothing():
    the_job = job()
    decision = decide(
        Attempt(job=the_job, outcome=SUCCESS, started_at=NOW), None, None, now=NOW, policy=POLICY
    )
    assert decision.step is Step.DROPPED
    assert (decision.log, decision.occurrence, decision.task) == (None, None, None)


def test_an_occurrence_held_by_another_scheduler_is_logged_but_not_touched():
    the_job = job()
    state = task_state(one_time=False)
    decision = decide(
        Attempt(job=the_job, outcome=TRANSIENT, started_at=NOW), state, None, now=NOW, policy=POLICY
    )
    assert decision.step is Step.DROPPED
    assert decision.log is not None
    assert decision.occurrence is None and decision.task is None


def test_deferred_waits_without_a_log_row_or_a_retry():
    decision = run(DEFERRED, attempt=2)
    assert decision.step is Step.DEFERRED
    assert decision.log is None
    assert decision.occurrence.available_at == NOW + timedelta(seconds=3)
    assert decision.occurrence.attempt == 2


def test_last_run_moves_only_forward():
    the_job = job()
    state = replace(task_state(one_time=False), last_run_at=NOW + timedelta(seconds=5))
    decision = decide(
        Attempt(job=the_job, outcome=SUCCESS, started_at=NOW),
        state,
        OccurrenceState(attempt=0, rate_limit_wait_seconds=0),
        now=NOW,
        policy=POLICY,
    )
    assert not decision.last_run
    assert run(SUCCESS).last_run


# -- backoff ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "expected"), [(1, 2), (2, 4), (3, 8), (4, 16), (9, 512), (10, 600)])
def test_backoff_doubles_from_the_base_up_to_the_cap(n: int, expected: float):
    assert POLICY.backoff_seconds(n) == expected


@pytest.mark.parametrize("jitter", [-0.1, 0.1])
def test_jitter_is_ten_percent_either_way(jitter: float):
    assert POLICY.backoff_seconds(3, jitter=jitter) == pytest.approx(8 * (1 + jitter))


def test_drawn_jitter_stays_within_bounds_and_varies():
    rng = random.Random(7)
    draws = [draw_jitter(rng) for _ in range(1000)]
    assert min(draws) >= -0.1
    assert max(draws) <= 0.1
    assert max(draws) - min(draws) > 0.1


def test_huge_retry_numbers_do_not_overflow():
    assert POLICY.backoff_seconds(10_000) == 600


def test_retry_numbers_start_at_one():
    with pytest.raises(ValueError):
        POLICY.backoff_seconds(0)


# -- the health ladder and probes -------------------------------------------------------------

SHORT = ResumePolicy(first_seconds=10, max_seconds=40, give_up_seconds=300)
LADDER_POLICY = RetryPolicy(
    backoff_base_seconds=2, backoff_max_seconds=600, max_rate_limit_wait_seconds=10, resume=SHORT
)


def decide_with(outcome: Outcome, task: TaskState, *, trigger=Trigger.SCHEDULE, attempt=3):
    the_job = job(one_time=task.schedule is None, trigger=trigger, attempt=attempt)
    return decide(
        Attempt(job=the_job, outcome=outcome, started_at=NOW),
        task,
        OccurrenceState(attempt=attempt, rate_limit_wait_seconds=0),
        now=NOW,
        policy=LADDER_POLICY,
    )


def failing(failures: int, since_seconds: float, *, inactive: bool = True) -> TaskState:
    """A task on the ladder: `failures` so far, failing for `since_seconds`."""
    ladder = Ladder(
        failures=failures,
        failing_since=NOW - timedelta(seconds=since_seconds),
        resume_at=NOW if inactive else None,
    )
    state = task_state(one_time=False)
    status = TaskStatus.INACTIVE if inactive else TaskStatus.ACTIVE
    return replace(state, status=status, ladder=ladder)


def test_the_ladder_doubles_up_to_its_cap():
    assert [SHORT.delay(n).total_seconds() for n in (1, 2, 3, 4, 5, 60)] == [10, 20, 40, 40, 40, 40]
    first = climb(HEALTHY, now=NOW, policy=SHORT)
    assert (first.failures, first.failing_since, first.resume_at) == (
        1,
        NOW,
        NOW + timedelta(seconds=10),
    )
    given_up = climb(first, now=NOW + timedelta(seconds=300), policy=SHORT)
    assert given_up.resume_at is None


@pytest.mark.parametrize(
    ("outcome", "auto_resume", "resume_in", "alert"),
    [
        (TRANSIENT, True, 10, Alert.DEACTIVATED),
        (limited(30.0), True, 10, Alert.DEACTIVATED),  # a 429 past its wait bound
        (TRANSIENT, False, None, Alert.DEACTIVATED),
        (PERMANENT, True, None, Alert.DEACTIVATED),  # permanent causes never resume
    ],
)
def test_a_deactivation_climbs_the_ladder_only_for_transient_causes(
    outcome, auto_resume, resume_in, alert
):
    task = replace(task_state(one_time=False), auto_resume=auto_resume)
    decision = decide_with(outcome, task, attempt=3)
    assert decision.step is Step.DEACTIVATED
    assert decision.alert is alert
    resume_at = decision.task.ladder.resume_at
    assert resume_at == (None if resume_in is None else NOW + timedelta(seconds=resume_in))


def test_a_failing_streak_gives_up_after_its_time():
    task = failing(4, since_seconds=400, inactive=False)
    decision = decide_with(TRANSIENT, task)
    assert decision.step is Step.DEACTIVATED
    assert decision.alert is Alert.GAVE_UP
    assert decision.task.ladder.resume_at is None
    assert decision.task.status_reason.endswith("; not tried again: failing for too long")


def test_a_success_resets_the_ladder():
    decision = decide_with(SUCCESS, failing(3, 100, inactive=False), attempt=0)
    assert decision.step is Step.DELIVERED
    assert decision.task == TaskChange(ladder=HEALTHY)
    assert decide_with(SUCCESS, task_state(one_time=False), attempt=0).task is None


PROBE_OK = Outcome(kind=OutcomeKind.SUCCESS, message="webhook answered HTTP 200")
PROBE_GONE = Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message="webhook no longer exists (404)")
PROBE_DOWN = Outcome(kind=OutcomeKind.TRANSIENT_FAILURE, message="HTTP 503 from webhook")


@pytest.mark.parametrize(
    ("outcome", "step", "status", "resume_in", "alert"),
    [
        (PROBE_OK, Step.RESUMED, TaskStatus.ACTIVE, None, Alert.RECOVERED),
        (PROBE_GONE, Step.GAVE_UP, None, None, Alert.GAVE_UP),
        (PROBE_DOWN, Step.PROBE_FAILED, None, 40, None),  # third failure: 10 * 2**2 = 40
    ],
)
def test_a_probe_decides_the_next_step(outcome, step, status, resume_in, alert):
    decision = decide_with(outcome, failing(2, 30), trigger=Trigger.PROBE, attempt=0)
    assert decision.step is step
    assert decision.alert is alert
    assert decision.task.status is status
    expected = None if resume_in is None else NOW + timedelta(seconds=resume_in)
    assert decision.task.ladder.resume_at == expected
    assert decision.task.reschedule == (step is Step.RESUMED)
    assert decision.occurrence.finished
    assert decision.log.status is (LogStatus.SUCCESS if outcome.success else LogStatus.FAILED)


def test_a_probe_keeps_the_streak_until_a_real_delivery_succeeds():
    decision = decide_with(PROBE_OK, failing(2, 30), trigger=Trigger.PROBE, attempt=0)
    assert decision.task.ladder.failures == 2


def test_a_failing_probe_past_the_give_up_time_stops_the_ladder():
    decision = decide_with(PROBE_DOWN, failing(6, 400), trigger=Trigger.PROBE, attempt=0)
    assert decision.step is Step.PROBE_FAILED
    assert decision.alert is Alert.GAVE_UP
    assert decision.task.ladder.resume_at is None


@pytest.mark.parametrize("change", ["resumed", "cleared"])
def test_a_probe_of_a_task_the_user_changed_is_only_finished(change):
    task = failing(2, 30, inactive=change == "cleared")
    if change == "cleared":
        task = replace(task, ladder=HEALTHY)
    decision = decide_with(PROBE_OK, task, trigger=Trigger.PROBE, attempt=0)
    assert decision.step is Step.FINISHED
    assert decision.task is None
    assert decision.alert is None
