"""The fate of a delivery attempt, decided in one pure function.

`decide(attempt, task, occurrence, now=..., policy=...)` takes the claimed job and its outcome,
the task and occurrence rows as they are now (locked by the caller), and the instant of the
database; it returns a `Decision`: the log row to write, what becomes of the occurrence and of
the task, the `Step` to report and whether to alert. It reads no clock and touches no database:
`OccurrenceStore` applies decisions, the recorder reports their steps.

The rules, in order:

1. The task is gone: nothing to write (DROPPED).
2. Nothing was sent (DEFERRED by pacing): the occurrence waits, no log row, no retry spent.
3. Another scheduler holds the occurrence now (our lease ran out): the log row is written, the
   occurrence is theirs (DROPPED).
4. The next step for the occurrence: success finishes it; a scheduled occurrence of an inactive
   task is finished (not retried); a 429 waits as told while the occurrence's waits stay within
   `max_rate_limit_wait_seconds` (each wait at least `MIN_RATE_LIMIT_WAIT_SECONDS`), spending no
   retry; a permanent failure gives up; a failure with retries left is retried with backoff;
   otherwise it gives up.
5. What a finished occurrence does to the task: giving up deactivates an active task that was
   not edited since the claim (DEACTIVATED, alert); the task's last run (a one-time task's own
   scheduled occurrence, or the last open run of a recurring task that fires no more: end_at,
   max_runs) ends the task (COMPLETED, or deactivated on failure) whatever edits or pauses
   happened in flight, unless the edit planned a new run. For a fan-out task the state is the
   target's (its webhook's status and ladder), and only the last run's end is the task's.
   A manual run never changes an inactive task.
   A deactivation for a transient cause climbs the health ladder (`app.scheduling.ladder`) when
   the task has `auto_resume`: the task gets a `resume_at` and a probe occurrence is due then.
   A success resets the ladder.
6. A probe (trigger PROBE): success makes the task active again (RESUMED); a permanent failure
   (401/403/404 from Discord, a refused target) stops the ladder (GAVE_UP); anything else climbs
   one step (PROBE_FAILED), or gives up once the failures have lasted too long. A probe of a
   task the user changed meanwhile is only finished.

Retry timing: retry n (n >= 1) is due `min(cap, base * 2**(n-1)) * (1 + jitter)` seconds after
the failed attempt, with jitter drawn from ±10 %, and no sooner than a 429 asked.
"""

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from app.delivery.outcome import Outcome, OutcomeKind
from app.domain import DiscordMode, LogStatus, TaskStatus, Trigger
from app.scheduling.ladder import HEALTHY, Ladder, ResumePolicy, climb

JITTER_FRACTION = 0.10
# A 429 that asks for no wait (0, a tiny value, a date in the past) still waits this long.
MIN_RATE_LIMIT_WAIT_SECONDS = 1.0


class Step(StrEnum):
    """What happened after an attempt, as the scheduler reports it."""

    DELIVERED = "delivered"  # success; the task goes on as it is
    COMPLETED = "completed"  # a one-time task's occurrence is over; the task is now inactive
    RETRY_SCHEDULED = "retry_scheduled"
    RATE_LIMITED = "rate_limited"  # waiting as a 429 asked; no retry spent
    DEFERRED = "deferred"  # nothing was sent (pacing); tried again later
    DEACTIVATED = "deactivated"  # gave up; the task was active and is now inactive
    GAVE_UP = "gave_up"  # gave up; the task's state was not this attempt's to change
    FINISHED = "finished"  # not retried because the task is inactive
    DROPPED = "dropped"  # the task is gone, or another scheduler holds the occurrence
    RESUMED = "resumed"  # a probe succeeded: the task is active again
    PROBE_FAILED = "probe_failed"  # a probe failed: the next one is a step further away


class Alert(StrEnum):
    """What ALERT_WEBHOOK_URL is told."""

    DEACTIVATED = "task_deactivated"  # with the time it will be tried again, if any
    RECOVERED = "task_recovered"
    GAVE_UP = "task_given_up"  # it will not be tried again by itself


# Causes that may go away by themselves: the ladder tries again after them.
TRANSIENT_KINDS = frozenset({OutcomeKind.TRANSIENT_FAILURE, OutcomeKind.RATE_LIMITED})


@dataclass(frozen=True, kw_only=True)
class Job:
    """A leased occurrence with what its delivery needs (a snapshot taken at claim time)."""

    occurrence_id: uuid.UUID
    task_id: uuid.UUID
    scheduled_for: datetime
    trigger: Trigger
    attempt: int  # 0 for the first attempt, n for the n-th retry
    webhook_url: str
    payload: dict
    max_retry: int
    task_name: str
    task_version: datetime  # the task's updated_at when claimed: changed since means edited
    lease_expires_at: datetime
    timezone: str = "UTC"
    template: bool = False
    run_number: int | None = None  # the task's n-th occurrence (scheduled and catch-up runs)
    next_run_at: datetime | None = None  # the schedule's next fire time after this one
    discord_mode: DiscordMode = DiscordMode.POST
    discord_message_id: str | None = None  # the task's last message, when claimed
    delete_after_seconds: int | None = None
    message_id: str | None = None  # what a DELETE occurrence deletes
    signing_secret: str | None = None
    previous_signing_secret: str | None = None
    signing_rotated_at: datetime | None = None
    target: int = 0  # which of the task's webhooks (fan-out); 0 for a one-webhook task
    fire_kind: str | None = None  # "silent" or "deferred" when quiet hours made it so


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """A finished delivery attempt waiting to be recorded (`started_at`: when it was sent)."""

    job: Job
    outcome: Outcome
    started_at: datetime


@dataclass(frozen=True, kw_only=True)
class TaskState:
    """The task row as it is when the attempt is recorded."""

    status: TaskStatus
    schedule: str | None
    next_run_at: datetime | None
    updated_at: datetime
    last_run_at: datetime | None
    auto_resume: bool = True
    ladder: Ladder = HEALTHY
    # A recurring task that fires no more (end_at, max_runs): why it ends after its last run.
    end_reason: str | None = None
    open_runs: int = 1  # its scheduled runs not finished yet, the one being recorded included


@dataclass(frozen=True, kw_only=True)
class OccurrenceState:
    """The occurrence row, when this scheduler still holds it."""

    attempt: int
    rate_limit_wait_seconds: float


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """The settings that time retries and bound 429 waits."""

    backoff_base_seconds: float
    backoff_max_seconds: float
    max_rate_limit_wait_seconds: float
    resume: ResumePolicy = field(default_factory=ResumePolicy)

    def backoff_seconds(self, retry_number: int, *, jitter: float = 0.0) -> float:
        """Wait before retry n (n >= 1): `min(cap, base * 2**(n-1)) * (1 + jitter)`."""
        if retry_number < 1:
            raise ValueError("retry_number starts at 1")
        # Cap the exponent first: 2**(n-1) for a large n would be a huge float for nothing.
        wait = min(
            self.backoff_max_seconds, self.backoff_base_seconds * 2 ** min(retry_number - 1, 62)
        )
        return wait * (1 + jitter)


def draw_jitter(rng: random.Random | None = None) -> float:
    """A jitter fraction from ±10 %, which spreads retries of tasks that failed together."""
    return (rng or random).uniform(-JITTER_FRACTION, JITTER_FRACTION)


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    """The log row of one attempt (the rest of its columns come from the attempt)."""

    status: LogStatus
    message: str


@dataclass(frozen=True, kw_only=True)
class OccurrenceChange:
    """The occurrence's next state: `available_at` None means finished."""

    available_at: datetime | None
    attempt: int
    rate_limit_wait_seconds: float

    @property
    def finished(self) -> bool:
        return self.available_at is None


@dataclass(frozen=True, kw_only=True)
class TaskChange:
    """What changes on the task: a status (with its reason; an inactive task has no next run),
    the health ladder, and whether its next run is computed again from now (resumed)."""

    status: TaskStatus | None = None  # None: unchanged
    status_reason: str | None = None
    ladder: Ladder | None = None  # None: unchanged
    reschedule: bool = False
    discord_message_id: str | None = None  # None: unchanged
    ends_task: bool = False  # the task's last run is over: the change is the task's own


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What to write and what to report for one attempt."""

    step: Step
    log: LogEntry | None = None
    occurrence: OccurrenceChange | None = None
    task: TaskChange | None = None
    last_run: bool = False  # the attempt is the task's latest: set last_run_at / last_status
    alert: Alert | None = None
    delete_message_at: datetime | None = None  # a DELETE occurrence for the posted message


def decide(
    attempt: Attempt,
    task: TaskState | None,
    occurrence: OccurrenceState | None,
    *,
    now: datetime,
    policy: RetryPolicy,
    jitter: float = 0.0,
) -> Decision:
    """The decision for one attempt (see the module's docstring for the rules)."""
    outcome = attempt.outcome
    if task is None:
        return Decision(step=Step.DROPPED)
    if outcome.kind is OutcomeKind.DEFERRED:
        return _deferred(outcome, occurrence, now=now)
    latest = task.last_run_at is None or attempt.started_at >= task.last_run_at
    status = LogStatus.SUCCESS if outcome.success else LogStatus.FAILED
    if occurrence is None:
        log = LogEntry(status=status, message=outcome.message)
        return Decision(step=Step.DROPPED, log=log, last_run=latest)
    if attempt.job.trigger is Trigger.PROBE:
        return _probe(attempt, task, occurrence, now=now, policy=policy.resume)
    step, message, change = _next_step(
        attempt, task, occurrence, now=now, policy=policy, jitter=jitter
    )
    log = LogEntry(status=status, message=message)
    if attempt.job.trigger is Trigger.DELETE:  # housekeeping: never a run of the task
        return Decision(step=step, log=log, occurrence=change)
    decision = Decision(step=step, log=log, occurrence=change, last_run=latest)
    if change.finished:
        decision = _finish(decision, attempt, task, now=now, policy=policy)
    return _keep_message(decision, attempt)


def _keep_message(decision: Decision, attempt: Attempt) -> Decision:
    """A Discord message posted or edited: the task keeps its id, and its deletion is due
    `delete_after_seconds` later."""
    job, outcome = attempt.job, attempt.outcome
    if not outcome.success or outcome.message_id is None:
        return decision
    change = decision.task or TaskChange()
    delete_at = None
    if job.delete_after_seconds and outcome.message_id != job.discord_message_id:
        delete_at = attempt.started_at + timedelta(seconds=job.delete_after_seconds)
    return replace(
        decision,
        task=replace(change, discord_message_id=outcome.message_id),
        delete_message_at=delete_at,
    )


def _deferred(outcome: Outcome, occurrence: OccurrenceState | None, *, now: datetime) -> Decision:
    """Nothing was sent: no log row, no retry spent, only a later time."""
    if occurrence is None:
        return Decision(step=Step.DROPPED)
    wait = max(MIN_RATE_LIMIT_WAIT_SECONDS, outcome.retry_after or 0.0)
    change = OccurrenceChange(
        available_at=now + timedelta(seconds=wait),
        attempt=occurrence.attempt,
        rate_limit_wait_seconds=occurrence.rate_limit_wait_seconds,
    )
    return Decision(step=Step.DEFERRED, occurrence=change)


def _next_step(
    attempt: Attempt,
    task: TaskState,
    occurrence: OccurrenceState,
    *,
    now: datetime,
    policy: RetryPolicy,
    jitter: float,
) -> tuple[Step, str, OccurrenceChange]:
    """The occurrence's next step, the log message that explains it, and its new state."""
    job, outcome = attempt.job, attempt.outcome
    waited = occurrence.rate_limit_wait_seconds
    finish = OccurrenceChange(
        available_at=None, attempt=job.attempt, rate_limit_wait_seconds=waited
    )
    if outcome.success:
        return Step.DELIVERED, outcome.message, finish
    if task.status is not TaskStatus.ACTIVE and job.trigger is not Trigger.MANUAL:
        return Step.FINISHED, f"{outcome.message}; not retried: the task is inactive", finish
    backoff = timedelta(seconds=policy.backoff_seconds(job.attempt + 1, jitter=jitter))
    rate_wait = _rate_limit_wait(outcome, backoff)
    if rate_wait is not None and waited + rate_wait <= policy.max_rate_limit_wait_seconds:
        return _wait_for_rate_limit(outcome, job, rate_wait, waited, now=now)
    if outcome.permanent:
        return Step.GAVE_UP, f"{outcome.message}; not retried", finish
    if job.attempt < job.max_retry:
        retry_number = job.attempt + 1
        # A 429 counted as a failure is retried no sooner than the wait it asked for.
        retry_time = now + max(backoff, timedelta(seconds=rate_wait or 0.0))
        at = retry_time.isoformat(timespec="seconds").replace("+00:00", "Z")
        message = f"{outcome.message}; retry {retry_number} of {job.max_retry} at {at}"
        change = OccurrenceChange(
            available_at=retry_time, attempt=retry_number, rate_limit_wait_seconds=waited
        )
        return Step.RETRY_SCHEDULED, message, change
    if job.max_retry == 0:
        return Step.GAVE_UP, f"{outcome.message}; no retries configured", finish
    return Step.GAVE_UP, f"{outcome.message}; retries exhausted", finish


def _wait_for_rate_limit(
    outcome: Outcome, job: Job, wait: float, waited: float, *, now: datetime
) -> tuple[Step, str, OccurrenceChange]:
    """Wait as a 429 asked, spending no retry."""
    message = f"{outcome.message}; trying again in {wait:g} s (not counted as a retry)"
    change = OccurrenceChange(
        available_at=now + timedelta(seconds=wait),
        attempt=job.attempt,
        rate_limit_wait_seconds=waited + wait,
    )
    return Step.RATE_LIMITED, message, change


def _rate_limit_wait(outcome: Outcome, backoff: timedelta) -> float | None:
    """Seconds a rate-limited answer makes us wait (at least the minimum); None otherwise.
    A 429 that names no wait waits as a retry would."""
    if outcome.kind is not OutcomeKind.RATE_LIMITED:
        return None
    asked = outcome.retry_after if outcome.retry_after is not None else backoff.total_seconds()
    return max(MIN_RATE_LIMIT_WAIT_SECONDS, asked)


def _finish(
    decision: Decision, attempt: Attempt, task: TaskState, *, now: datetime, policy: RetryPolicy
) -> Decision:
    """What the end of an occurrence does to its task."""
    job, outcome = attempt.job, attempt.outcome
    failed = decision.step in (Step.GAVE_UP, Step.FINISHED)
    edited = task.updated_at != job.task_version
    active = task.status is TaskStatus.ACTIVE
    ends = ends_task(task, job)
    if failed and (ends or (active and not edited)):
        stopped = _stop_failing(decision, attempt, task, now=now, policy=policy.resume)
        if ends and stopped.task is not None:
            stopped = replace(stopped, task=replace(stopped.task, ends_task=True))
        return stopped
    reset = HEALTHY if task.ladder != HEALTHY else None  # a success ends a streak of failures
    if ends and outcome.success:
        at = attempt.started_at.isoformat(timespec="seconds")
        reason = task.end_reason or f"completed: delivered at {at}"
        change = TaskChange(
            status=TaskStatus.INACTIVE, status_reason=reason, ladder=reset, ends_task=True
        )
        return replace(decision, step=Step.COMPLETED, task=change)
    if outcome.success and reset is not None:
        return replace(decision, task=TaskChange(ladder=reset))
    return decision


def ends_task(task: TaskState, job: Job) -> bool:
    """Whether this occurrence is the task's last: a one-time task's own run, or a run of a
    recurring task that fires no more, once no other of its scheduled runs is open. An edit in
    flight that planned a new run keeps the task going."""
    if job.trigger is Trigger.MANUAL or task.next_run_at is not None:
        return False
    if task.schedule is not None and task.end_reason is None:
        return False
    return task.open_runs <= 1


def _stop_failing(
    decision: Decision, attempt: Attempt, task: TaskState, *, now: datetime, policy: ResumePolicy
) -> Decision:
    """The task stops after a failed occurrence; with `auto_resume` and a transient cause it
    climbs the ladder (a probe at `resume_at`), else nothing brings it back by itself."""
    job, outcome = attempt.job, attempt.outcome
    active = task.status is TaskStatus.ACTIVE
    attempts = job.attempt + 1
    noun = "attempt" if attempts == 1 else "attempts"
    verb = "deactivated" if active else "failed"
    reason = f"{verb} after {attempts} failed {noun}: {outcome.message}"
    ladder, alert = HEALTHY, Alert.DEACTIVATED if active else None
    # Only what the service itself switched off comes back by itself: not a paused task.
    if active and task.auto_resume and outcome.kind in TRANSIENT_KINDS:
        ladder = climb(task.ladder, now=now, policy=policy)
        reason += _resume_note(ladder)
        alert = Alert.DEACTIVATED if ladder.resume_at else Alert.GAVE_UP
    step = Step.DEACTIVATED if active else decision.step
    change = TaskChange(status=TaskStatus.INACTIVE, status_reason=reason, ladder=ladder)
    return replace(decision, step=step, task=change, alert=alert)


def _resume_note(ladder: Ladder) -> str:
    if ladder.resume_at is None:
        return "; not tried again: failing for too long"
    at = ladder.resume_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"; trying again at {at}"


def _probe(
    attempt: Attempt,
    task: TaskState,
    occurrence: OccurrenceState,
    *,
    now: datetime,
    policy: ResumePolicy,
) -> Decision:
    """The decision after a probe of a task on the health ladder."""
    outcome = attempt.outcome
    finish = OccurrenceChange(
        available_at=None, attempt=occurrence.attempt, rate_limit_wait_seconds=0.0
    )
    status = LogStatus.SUCCESS if outcome.success else LogStatus.FAILED
    if task.status is TaskStatus.ACTIVE or task.ladder.resume_at is None:
        log = LogEntry(status=status, message=f"{outcome.message}; not needed: the task changed")
        return Decision(step=Step.FINISHED, log=log, occurrence=finish)
    if outcome.success:
        ladder = replace(task.ladder, resume_at=None)
        change = TaskChange(status=TaskStatus.ACTIVE, ladder=ladder, reschedule=True)
        log = LogEntry(status=status, message=f"{outcome.message}; the task is active again")
        return Decision(
            step=Step.RESUMED, log=log, occurrence=finish, task=change, alert=Alert.RECOVERED
        )
    if outcome.permanent:
        reason = f"not resumed: {outcome.message}"
        change = TaskChange(status_reason=reason, ladder=HEALTHY)
        log = LogEntry(status=status, message=f"{outcome.message}; not tried again")
        return Decision(
            step=Step.GAVE_UP, log=log, occurrence=finish, task=change, alert=Alert.GAVE_UP
        )
    ladder = climb(task.ladder, now=now, policy=policy)
    note = _resume_note(ladder)
    change = TaskChange(status_reason=f"probe failed: {outcome.message}{note}", ladder=ladder)
    log = LogEntry(status=status, message=f"{outcome.message}{note}")
    alert = None if ladder.resume_at else Alert.GAVE_UP
    return Decision(step=Step.PROBE_FAILED, log=log, occurrence=finish, task=change, alert=alert)
