"""The scheduler's database work: claim due occurrences, record attempts, find the next wake-up.

Each function runs inside one short transaction that the caller opens; none of them is ever held
open across an HTTP request. On PostgreSQL, due rows are locked with `FOR UPDATE SKIP LOCKED`, so
replicas claiming at the same moment take different rows instead of waiting for each other; the
unique key on (task_id, scheduled_for) makes a second claim of one occurrence impossible.
"""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.delivery.sender import Outcome
from app.models import Occurrence, Task, TaskLog
from app.scheduling.planner import plan_due
from app.scheduling.wakeup import request_wake

FINISHED_RETENTION = timedelta(days=1)

_TASKS = Task.__table__
_OCCURRENCES = Occurrence.__table__
# A claimed task's new next run (and, for a one-time task whose time passed unseen, its end).
_ADVANCE_TASK = (
    update(_TASKS)
    .where(_TASKS.c.id == bindparam("_id"))
    .values(
        next_run_at=bindparam("_next_run_at"),
        status=bindparam("_status"),
        status_reason=bindparam("_status_reason"),
    )
)


@dataclass(frozen=True, kw_only=True)
class Job:
    """A leased occurrence with what its delivery needs (a snapshot taken at claim time)."""

    occurrence_id: uuid.UUID
    task_id: uuid.UUID
    scheduled_for: datetime
    trigger: str
    attempt: int
    webhook_url: str
    payload: dict
    max_retry: int
    task_name: str
    task_version: datetime  # the task's updated_at when claimed: changed since means edited
    lease_expires_at: datetime


def claim_due(
    session: Session, *, now: datetime, owner: str, lease: timedelta, limit: int, grace: timedelta
) -> list[Job]:
    """Lease up to `limit` occurrences to `owner`: available ones (retries, manual runs, work
    whose holder's lease ran out) and new ones from due tasks, each kind getting at least half
    of the room so that neither can starve the other."""
    lease_until = now + lease
    jobs = _claim_available(
        session, now=now, owner=owner, lease_until=lease_until, limit=max(1, limit // 2)
    )
    jobs += _claim_due_tasks(
        session, now=now, owner=owner, lease_until=lease_until, limit=limit - len(jobs), grace=grace
    )
    if len(jobs) < limit:
        jobs += _claim_available(
            session, now=now, owner=owner, lease_until=lease_until, limit=limit - len(jobs)
        )
    return jobs


def _claim_due_tasks(
    session: Session,
    *,
    now: datetime,
    owner: str,
    lease_until: datetime,
    limit: int,
    grace: timedelta,
) -> list[Job]:
    """Advance due tasks and insert their occurrences; the first `limit` are leased to `owner`,
    any beyond (catch-up bursts) are left available for whoever has room."""
    if limit <= 0:
        return []
    query = (
        select(_TASKS)
        .where(_TASKS.c.next_run_at <= now, _TASKS.c.status == "active")
        .order_by(_TASKS.c.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    tasks = session.execute(query).all()
    rows: list[dict] = []
    by_id: dict[uuid.UUID, Any] = {}
    advanced: list[dict] = []
    for task in tasks:
        plan = plan_due(task, now=now, grace=grace)
        stopped = plan.stop_reason is not None
        advanced.append(
            {
                "_id": task.id,
                "_next_run_at": plan.next_run_at,
                "_status": "inactive" if stopped else task.status,
                "_status_reason": plan.stop_reason if stopped else task.status_reason,
            }
        )
        for firing in plan.firings:
            leased = len(rows) < limit
            occurrence_id = uuid.uuid4()
            by_id[occurrence_id] = task
            rows.append(
                {
                    "id": occurrence_id,
                    "task_id": task.id,
                    "scheduled_for": firing.scheduled_for,
                    "trigger": firing.trigger,
                    "attempt": 0,
                    "available_at": lease_until if leased else now,
                    "lease_owner": owner if leased else None,
                    "rate_limit_wait_seconds": 0.0,
                    "created_at": now,
                }
            )
    if advanced:
        session.execute(_ADVANCE_TASK, advanced)
    if not rows:
        return []
    inserted = _insert_new_occurrences(session, rows)
    return [
        _job(by_id[row["id"]], row["id"], row["scheduled_for"], row["trigger"], 0, lease_until)
        for row in rows
        if row["id"] in inserted and row["lease_owner"] == owner
    ]


def _insert_new_occurrences(session: Session, rows: list[dict]) -> set[uuid.UUID]:
    """Insert the rows, skipping any whose (task, scheduled_for) exists; the ids inserted."""
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    # One statement for any number of rows ("insertmanyvalues"): compiled once and cached,
    # where .values(rows) would compile a new statement for every batch.
    statement = (
        upsert(_OCCURRENCES)
        .on_conflict_do_nothing(index_elements=["task_id", "scheduled_for"])
        .returning(_OCCURRENCES.c.id)
    )
    return set(session.execute(statement, rows).scalars())


def _claim_available(
    session: Session, *, now: datetime, owner: str, lease_until: datetime, limit: int
) -> list[Job]:
    """Lease occurrences whose time has come. Scheduled ones of a task that has become inactive
    are finished instead: an inactive task sends nothing more on its schedule."""
    if limit <= 0:
        return []
    query = (
        select(Occurrence, Task)
        .join(Task, Task.id == Occurrence.task_id)
        .where(Occurrence.available_at <= now)
        .order_by(Occurrence.available_at)
        .limit(limit)
        .with_for_update(of=Occurrence, skip_locked=True)
        # Fresh rows even for tasks this session loaded before (claim_due's Core UPDATEs
        # bypass the identity map).
        .execution_options(populate_existing=True)
    )
    jobs = []
    for occurrence, task in session.execute(query).all():
        if task.status != "active" and occurrence.trigger != "manual":
            occurrence.available_at, occurrence.lease_owner = None, None
            occurrence.finished_at = now
            continue
        occurrence.available_at = lease_until
        occurrence.lease_owner = owner
        jobs.append(
            _job(
                task,
                occurrence.id,
                occurrence.scheduled_for,
                occurrence.trigger,
                occurrence.attempt,
                lease_until,
            )
        )
    session.flush()
    return jobs


def _job(
    task: Any,  # a Task, or a row of the tasks table
    occurrence_id: uuid.UUID,
    scheduled_for: datetime,
    trigger: str,
    attempt: int,
    lease_until: datetime,
) -> Job:
    return Job(
        occurrence_id=occurrence_id,
        task_id=task.id,
        scheduled_for=scheduled_for,
        trigger=trigger,
        attempt=attempt,
        webhook_url=task.webhook_url,
        payload=task.payload,
        max_retry=task.max_retry,
        task_name=task.name,
        task_version=task.updated_at,
        lease_expires_at=lease_until,
    )


@dataclass(frozen=True, kw_only=True)
class AttemptRules:
    """What the scheduler's settings say about the step after a failed attempt."""

    retry_at: Callable[[int, datetime], datetime]  # (retry number, now) -> when it is due
    max_rate_limit_wait_seconds: float


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """A finished delivery attempt waiting to be recorded (`started_at`: when it was sent)."""

    job: Job
    outcome: Outcome
    started_at: datetime


@dataclass(kw_only=True)
class _TaskState:
    """The task columns recording reads and writes (a locked row, changed in place)."""

    id: uuid.UUID
    schedule: str | None
    status: str
    status_reason: str | None
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_status: str | None
    updated_at: datetime


@dataclass(kw_only=True)
class _OccurrenceState:
    """The occurrence columns recording reads and writes (a locked row, changed in place)."""

    id: uuid.UUID
    attempt: int
    available_at: datetime | None
    lease_owner: str | None
    rate_limit_wait_seconds: float
    finished_at: datetime | None


_TASK_FIELDS = [f.name for f in fields(_TaskState)]
_OCCURRENCE_FIELDS = [f.name for f in fields(_OccurrenceState)]
# What recording may change; only these are written back (the rows are locked meanwhile).
_TASK_WRITES = ("status", "status_reason", "next_run_at", "last_run_at", "last_status")
_OCCURRENCE_WRITES = (
    "attempt",
    "available_at",
    "lease_owner",
    "rate_limit_wait_seconds",
    "finished_at",
)


def record_attempts(
    session: Session, *, attempts: list[Attempt], now: datetime, owner: str, rules: AttemptRules
) -> list[str]:
    """Write each attempt's log row and move its occurrence and task on, all in one transaction.

    Returns the step taken for each attempt: `finished`, `retry`, `rate_limited`, `deactivated`,
    or `lost` (the task is gone, or another scheduler holds the occurrence now: the log row is
    still written when the task exists). Rows are locked in id order so that concurrent
    recorders never deadlock. Plain Core statements, each run once for the whole batch: this
    is on every delivery's path.
    """
    task_ids = sorted({a.job.task_id for a in attempts})
    tasks = {
        row.id: _TaskState(**row._mapping)
        for row in session.execute(
            select(*(_TASKS.c[name] for name in _TASK_FIELDS))
            .where(_TASKS.c.id.in_(task_ids))
            .order_by(_TASKS.c.id)
            .with_for_update()
        )
    }
    occurrence_ids = sorted(a.job.occurrence_id for a in attempts)
    occurrences = {
        row.id: _OccurrenceState(**row._mapping)
        for row in session.execute(
            select(*(_OCCURRENCES.c[name] for name in _OCCURRENCE_FIELDS))
            .where(_OCCURRENCES.c.id.in_(occurrence_ids), _OCCURRENCES.c.lease_owner == owner)
            .order_by(_OCCURRENCES.c.id)
            .with_for_update()
        )
    }
    log_rows: list[dict] = []
    steps = [
        _record_one(
            attempt,
            tasks.get(attempt.job.task_id),
            occurrences.get(attempt.job.occurrence_id),
            log_rows=log_rows,
            now=now,
            rules=rules,
        )
        for attempt in attempts
    ]
    _write_back(session, _TASKS, _TASK_WRITES, tasks.values())
    _write_back(session, _OCCURRENCES, _OCCURRENCE_WRITES, occurrences.values())
    if log_rows:
        session.execute(insert(TaskLog.__table__), log_rows)
    stopped = [task_id for task_id, task in tasks.items() if task.status != "active"]
    if stopped:
        cancel_pending(session, task_ids=stopped, now=now)
    return steps


def _write_back(
    session: Session, table: Any, columns: tuple[str, ...], states: Iterable[Any]
) -> None:
    """Store these columns of the rows, by primary key: one executemany UPDATE for them all."""
    rows = [
        {"_id": state.id} | {f"_{name}": getattr(state, name) for name in columns}
        for state in states
    ]
    if not rows:
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({name: bindparam(f"_{name}") for name in columns})
    )
    session.execute(statement, rows)


def _record_one(
    attempt: Attempt,
    task: _TaskState | None,
    occurrence: _OccurrenceState | None,
    *,
    log_rows: list[dict],
    now: datetime,
    rules: AttemptRules,
) -> str:
    if task is None:
        return "lost"
    job, outcome = attempt.job, attempt.outcome
    if outcome.deferred:
        # Nothing was sent (pacing): no log row, no retry spent, just a later time.
        if occurrence is None:
            return "lost"
        occurrence.lease_owner = None
        occurrence.available_at = now + timedelta(seconds=outcome.retry_after or 1.0)
        return "deferred"
    backoff_time = rules.retry_at(job.attempt + 1, now)
    # A 429 asks for a wait (or, if it names none, we wait as for a retry).
    rate_wait = _rate_limit_wait(outcome, backoff_time - now)
    retry_time = max(backoff_time, now + timedelta(seconds=rate_wait or 0.0))
    step, message = _next_step(
        job,
        outcome,
        occurrence,
        task_inactive=task.status != "active",
        rate_wait=rate_wait,
        retry_time=retry_time,
        rules=rules,
    )
    status = "success" if outcome.success else "failed"
    log_rows.append(
        {
            "id": uuid.uuid4(),
            "task_id": job.task_id,
            "execution_time": attempt.started_at,
            "scheduled_for": job.scheduled_for,
            "status": status,
            "retry_count": job.attempt,
            "message": message,
            "http_status": outcome.http_status,
            "duration_ms": outcome.duration_ms,
            "response_body": outcome.response_body,
            "trigger": job.trigger,
            "created_at": now,
        }
    )
    if task.last_run_at is None or attempt.started_at >= task.last_run_at:
        task.last_run_at, task.last_status = attempt.started_at, status
    if occurrence is None:
        return "lost"
    occurrence.lease_owner = None
    if step == "retry":
        occurrence.attempt = job.attempt + 1
        occurrence.available_at = retry_time
    elif step == "rate_limited":
        wait = rate_wait or 0.0
        occurrence.rate_limit_wait_seconds += wait
        occurrence.available_at = now + timedelta(seconds=wait)
    else:
        occurrence.available_at = None
        occurrence.finished_at = now
        if task.updated_at == job.task_version:
            step = _finish_task(task, job, outcome, step=step, now=now)
        else:
            # The task was edited since this occurrence was claimed (rescheduled, URL fixed):
            # its outcome no longer decides the task's state.
            step = "finished"
    return step


def _rate_limit_wait(outcome: Outcome, backoff: timedelta) -> float | None:
    """Seconds a rate-limited answer asks us to wait; None for any other outcome."""
    if outcome.http_status != 429 and outcome.retry_after is None:
        return None
    if outcome.retry_after is not None:
        return outcome.retry_after
    return max(backoff.total_seconds(), 0.0)


def _next_step(
    job: Job,
    outcome: Outcome,
    occurrence: _OccurrenceState | None,
    *,
    task_inactive: bool,
    rate_wait: float | None,
    retry_time: datetime,
    rules: AttemptRules,
) -> tuple[str, str]:
    """The step after this attempt and the log message that explains it. A rate-limit wait
    spends no retry until the occurrence's waits add up to more than the allowed total; then
    the 429 counts as a failure, retried no sooner than the wait it asked for."""
    if outcome.success:
        return "finished", outcome.message
    if task_inactive and job.trigger != "manual":
        return "finished", f"{outcome.message}; not retried: the task is inactive"
    waited = occurrence.rate_limit_wait_seconds if occurrence is not None else 0.0
    if rate_wait is not None and waited + rate_wait <= rules.max_rate_limit_wait_seconds:
        return "rate_limited", (
            f"{outcome.message}; trying again in {rate_wait:g} s (not counted as a retry)"
        )
    if outcome.permanent:
        return "give_up", f"{outcome.message}; not retried"
    if job.attempt < job.max_retry:
        retry_number = job.attempt + 1
        at = retry_time.isoformat(timespec="seconds").replace("+00:00", "Z")
        return "retry", f"{outcome.message}; retry {retry_number} of {job.max_retry} at {at}"
    if job.max_retry == 0:
        return "give_up", f"{outcome.message}; no retries configured"
    return "give_up", f"{outcome.message}; retries exhausted"


def _finish_task(task: _TaskState, job: Job, outcome: Outcome, *, step: str, now: datetime) -> str:
    """After an occurrence's last attempt: stop a failed task, complete a one-time one."""
    if step == "give_up" and task.status == "active":
        attempts = job.attempt + 1
        noun = "attempt" if attempts == 1 else "attempts"
        task.status = "inactive"
        task.status_reason = f"deactivated after {attempts} failed {noun}: {outcome.message}"
        task.next_run_at = None
        return "deactivated"
    if task.schedule is None and job.trigger != "manual" and task.status == "active":
        task.status = "inactive"
        task.status_reason = f"completed: delivered at {now.isoformat(timespec='seconds')}"
        task.next_run_at = None
    return "finished" if step == "finished" else "deactivated"


def cancel_pending(session: Session, *, task_ids: list[uuid.UUID], now: datetime) -> None:
    """Finish the tasks' waiting scheduled occurrences (not manual runs, not ones in flight):
    an inactive task sends nothing more on its schedule."""
    session.execute(
        update(Occurrence)
        .where(
            Occurrence.task_id.in_(task_ids),
            Occurrence.finished_at.is_(None),
            Occurrence.lease_owner.is_(None),
            Occurrence.trigger != "manual",
        )
        .values(available_at=None, finished_at=now)
        .execution_options(synchronize_session=False)
    )


def next_wake_at(session: Session) -> datetime | None:
    """The earliest instant at which some task or occurrence becomes due (None: nothing)."""
    first_task = select(func.min(Task.next_run_at)).scalar_subquery()
    first_occurrence = select(func.min(Occurrence.available_at)).scalar_subquery()
    row = session.execute(select(first_task, first_occurrence)).one()
    candidates = [value for value in row if value is not None]
    return min(candidates) if candidates else None


def release(session: Session, *, occurrence_ids: list[uuid.UUID], owner: str, now: datetime) -> int:
    """Hand leased occurrences back so any scheduler can take them at once (shutdown)."""
    if not occurrence_ids:
        return 0
    result = session.execute(
        update(Occurrence)
        .where(Occurrence.id.in_(occurrence_ids), Occurrence.lease_owner == owner)
        .where(Occurrence.finished_at.is_(None))
        .values(available_at=now, lease_owner=None)
    )
    request_wake(session)
    return result.rowcount


def prune_finished(session: Session, *, now: datetime) -> int:
    """Delete finished occurrences older than the retention (their log rows stay)."""
    result = session.execute(
        delete(Occurrence).where(Occurrence.finished_at < now - FINISHED_RETENTION)
    )
    return result.rowcount


def prune_logs(session: Session, *, before: datetime, limit: int) -> int:
    """Delete up to `limit` log rows whose attempt started before `before` (oldest first, by
    the execution_time index), so that retention runs in short transactions."""
    oldest = (
        select(TaskLog.id)
        .where(TaskLog.execution_time < before)
        .order_by(TaskLog.execution_time)
        .limit(limit)
    )
    result = session.execute(
        delete(TaskLog)
        .where(TaskLog.id.in_(oldest.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
