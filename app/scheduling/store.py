"""The engine's one gateway to the database: claims, records, leases, releases, pruning.

Every method runs in one short transaction of its own, never held across an HTTP request, and
reads "now" from the database's clock (one query per transaction), so replicas whose own clocks
are skewed agree on due times and leases. On PostgreSQL, due rows are locked with
`FOR UPDATE SKIP LOCKED`, so replicas claiming at the same moment take different rows instead
of waiting for each other; the unique key on (task_id, scheduled_for) makes a second claim of
one occurrence impossible. Statements that run for every delivery are cached Core statements
executed once per batch.
"""

import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db import transaction
from app.domain import DiscordMode, TaskStatus, Trigger
from app.models import Occurrence, Task, TaskLog
from app.scheduling.attempts import (
    Attempt,
    Decision,
    Job,
    OccurrenceState,
    RetryPolicy,
    Step,
    TaskChange,
    TaskState,
    decide,
    draw_jitter,
)
from app.scheduling.bulk import BulkWrite
from app.scheduling.ladder import Ladder
from app.scheduling.partitions import drop_partitions_before, ensure_partitions
from app.scheduling.planner import (
    DuePlan,
    Firing,
    end_reason,
    is_recurring,
    next_run_after,
    plan_due,
    upcoming_runs,
)
from app.scheduling.targets import TargetState, read_targets, target_url
from app.scheduling.wakeup import request_wake
from app.text import plain

logger = logging.getLogger(__name__)

FINISHED_RETENTION = timedelta(days=1)

_TASKS = Task.__table__
_OCCURRENCES = Occurrence.__table__
_LOGS = TaskLog.__table__


# A claimed task's new next run (and, for a task that stops, its end).
_ADVANCE_TASK = BulkWrite(
    _TASKS,
    ("next_run_at", "status", "status_reason", "status_changed_at", "runs"),
    by_id=True,
)
# What recording writes back to a task and to an occurrence (the rows are locked meanwhile).
_RECORD_TASK = BulkWrite(
    _TASKS,
    (
        "status",
        "status_reason",
        "next_run_at",
        "last_run_at",
        "last_status",
        "resume_at",
        "failures",
        "failing_since",
        "status_changed_at",
        "discord_message_id",
        "targets",
    ),
    by_id=True,
)
_RECORD_OCCURRENCE = BulkWrite(
    _OCCURRENCES,
    ("attempt", "available_at", "rate_limit_wait_seconds", "finished_at"),
    by_id=True,
    constants={"lease_owner": "NULL"},
)
# New occurrences; one that exists already (another claim made it) is skipped.
_INSERT_OCCURRENCES = BulkWrite(
    _OCCURRENCES,
    (
        "id",
        "task_id",
        "target",
        "scheduled_for",
        "trigger",
        "attempt",
        "lease_owner",
        "rate_limit_wait_seconds",
        "run_number",
        "message_id",
        "fire_kind",
        "available_at",
        "created_at",
    ),
    unique=("task_id", "target", "scheduled_for"),
)
_INSERT_LOGS = BulkWrite(
    _LOGS,
    (
        "id",
        "task_id",
        "execution_time",
        "scheduled_for",
        "status",
        "retry_count",
        "message",
        "http_status",
        "duration_ms",
        "response_body",
        "trigger",
        "created_at",
        "target",
    ),
)
_TASK_COLUMNS = ("id", "status", "status_reason", "schedule", "next_run_at", "updated_at")
_TASK_COLUMNS += ("last_run_at", "last_status", "auto_resume", "resume_at", "failures")
_TASK_COLUMNS += ("failing_since", "status_changed_at", "run_at", "timezone", "catchup")
_TASK_COLUMNS += ("created_at", "discord_message_id", "schedules", "start_at", "end_at")
_TASK_COLUMNS += ("exclude", "quiet_hours", "max_runs", "runs", "webhook_urls", "targets")
# The runs whose end can end a task (not manual runs, probes or deletions).
_SCHEDULED = (Trigger.SCHEDULE.value, Trigger.CATCHUP.value)


# Occurrences that run for an inactive task: manual runs, and the ladder's probes.
_FOR_INACTIVE_TASKS = frozenset({Trigger.MANUAL.value, Trigger.PROBE.value, Trigger.DELETE.value})
# What pausing a task does not cancel: a run asked for by hand, a message's deletion.
_NOT_CANCELLED = frozenset({Trigger.MANUAL, Trigger.DELETE})


@dataclass(frozen=True)
class Claim:
    """What one claim leased, and the database's "now" it was made at."""

    jobs: list[Job]
    now: datetime

    def found_only_held_work(self, first_due: datetime | None) -> bool:
        """Whether work was due when this claim ran (`first_due`: the earliest due instant,
        read after it) and the claim took none: another scheduler holds it. Work that became
        due only after the claim read the clock is not that; it is for the next claim, at
        once (a scheduler woken a hair early used to wait out the busy pause for it)."""
        return not self.jobs and first_due is not None and first_due <= self.now


@dataclass
class _TaskRow:
    """A locked task row during recording: its state for `decide`, and what to write back."""

    state: TaskState
    row: Any  # the columns as read, for what `decide` does not need
    status_reason: str | None
    last_status: str | None
    status_changed_at: datetime | None
    changed: bool = False
    stopped: bool = False  # made inactive by this batch: its waiting occurrences are finished
    probes: list[tuple[int, datetime]] = field(default_factory=list)  # (target, due) to create
    discord_message_id: str | None = None
    targets: list[TargetState] | None = None  # a fan-out task's webhooks
    stopped_targets: list[int] = field(default_factory=list)  # switched off by this batch


def database_now(session: Session) -> datetime:
    """The database's current time, aware UTC: the time every replica agrees on. PostgreSQL's
    server clock; an SQLite file has no server, and every process using it runs on this
    machine, so its time is this machine's (to the microsecond, where SQLite's own `now` has
    milliseconds)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(text("SELECT statement_timestamp()")).scalar_one().astimezone(UTC)
    return datetime.now(UTC)


def is_connection_trouble(exc: BaseException) -> bool:
    """Whether `exc` says the database is unreachable or busy (worth retrying as it is)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class OccurrenceStore:
    """Claims, records, leases and pruning for the scheduler (see the module docstring)."""

    def __init__(
        self, factory: sessionmaker[Session], *, jitter: Callable[[], float] = draw_jitter
    ) -> None:
        self._factory = factory
        self._jitter = jitter

    def now(self) -> datetime:
        """The database's clock."""
        with transaction(self._factory) as session:
            return database_now(session)

    # -- claiming --------------------------------------------------------------------------------

    def claim(self, *, owner: str, limit: int, lease: timedelta, grace: timedelta) -> Claim:
        """Lease up to `limit` occurrences to `owner`: available ones (retries, manual runs, work
        whose holder's lease ran out) and new ones from due tasks, each kind getting at least
        half of the room so that neither can starve the other."""
        with transaction(self._factory) as session:
            now = database_now(session)
            until = now + lease
            jobs = _claim_available(
                session, now=now, owner=owner, until=until, limit=max(1, limit // 2)
            )
            jobs += _claim_due_tasks(
                session, now=now, owner=owner, until=until, limit=limit - len(jobs), grace=grace
            )
            if len(jobs) < limit:
                jobs += _claim_available(
                    session, now=now, owner=owner, until=until, limit=limit - len(jobs)
                )
            return Claim(jobs=jobs, now=now)

    def release(self, occurrence_ids: list[uuid.UUID], *, owner: str) -> int:
        """Hand leased occurrences back so any scheduler can take them at once (shutdown)."""
        if not occurrence_ids:
            return 0
        with transaction(self._factory) as session:
            result = session.execute(
                update(Occurrence)
                .where(Occurrence.id.in_(occurrence_ids), Occurrence.lease_owner == owner)
                .where(Occurrence.finished_at.is_(None))
                .values(available_at=database_now(session), lease_owner=None)
            )
            request_wake(session)
            return result.rowcount

    def next_wake(self) -> tuple[datetime | None, datetime]:
        """The earliest instant at which some task or occurrence becomes due (None: nothing),
        and the database's now."""
        first_task = select(func.min(Task.next_run_at)).scalar_subquery()
        first_occurrence = select(func.min(Occurrence.available_at)).scalar_subquery()
        with transaction(self._factory) as session:
            now = database_now(session)
            row = session.execute(select(first_task, first_occurrence)).one()
        candidates = [value for value in row if value is not None]
        return (min(candidates) if candidates else None), now

    # -- recording -------------------------------------------------------------------------------

    def record(self, attempts: list[Attempt], *, owner: str, policy: RetryPolicy) -> list[Decision]:
        """Decide and write each attempt's log row, occurrence and task, in one transaction.

        A batch that cannot be written for any reason but the database's reachability (which
        raises, for the caller to retry) is written again with the answers' text reduced to
        plain ASCII, then one attempt at a time: a record never fails in a way that would send
        an attempt again."""
        try:
            return self._record(attempts, owner=owner, policy=policy, stripped=False)
        except Exception as exc:
            if is_connection_trouble(exc):
                raise
            logger.warning(
                "recording failed; writing the batch again without the answers' text",
                extra={"count": len(attempts), "error": type(exc).__name__},
            )
        try:
            return self._record(attempts, owner=owner, policy=policy, stripped=True)
        except Exception as exc:
            if is_connection_trouble(exc):
                raise
            logger.error("recording failed again; recording one attempt at a time")
        return [self._record_alone(attempt, owner=owner, policy=policy) for attempt in attempts]

    def _record_alone(self, attempt: Attempt, *, owner: str, policy: RetryPolicy) -> Decision:
        """The last resort: this attempt alone, stripped; failing that, its occurrence finished
        without a log row, so that it is never sent again."""
        try:
            return self._record([attempt], owner=owner, policy=policy, stripped=True)[0]
        except Exception as exc:
            if is_connection_trouble(exc):
                raise
            logger.exception("an attempt could not be recorded; finishing its occurrence")
        with transaction(self._factory) as session:
            session.execute(
                update(_OCCURRENCES)
                .where(
                    _OCCURRENCES.c.id == attempt.job.occurrence_id,
                    _OCCURRENCES.c.lease_owner == owner,
                )
                .values(available_at=None, lease_owner=None, finished_at=database_now(session))
            )
        return Decision(step=Step.DROPPED)

    def _record(
        self, attempts: list[Attempt], *, owner: str, policy: RetryPolicy, stripped: bool
    ) -> list[Decision]:
        with transaction(self._factory) as session:
            now = database_now(session)
            tasks = _lock_tasks(session, sorted({a.job.task_id for a in attempts}))
            occurrences = _lock_occurrences(
                session, sorted(a.job.occurrence_id for a in attempts), owner=owner
            )
            decisions = []
            for attempt in attempts:
                row = tasks.get(attempt.job.task_id)
                decision = decide(
                    attempt,
                    _state_for(row, attempt.job.target) if row is not None else None,
                    occurrences.get(attempt.job.occurrence_id),
                    now=now,
                    policy=policy,
                    jitter=self._jitter(),
                )
                if row is not None:
                    _fold(row, attempt, decision, now=now)
                decisions.append(decision)
            _write(session, attempts, decisions, tasks, now=now, stripped=stripped)
            return decisions

    # -- housekeeping ----------------------------------------------------------------------------

    def prune_finished(self) -> int:
        """Delete finished occurrences older than the retention (their log rows stay)."""
        with transaction(self._factory) as session:
            cutoff = database_now(session) - FINISHED_RETENTION
            return session.execute(
                delete(Occurrence).where(Occurrence.finished_at < cutoff)
            ).rowcount

    def maintain_log_partitions(
        self, *, retention: timedelta | None
    ) -> tuple[list[str], list[str]]:
        """On PostgreSQL, where task_logs is partitioned by month: create the coming months'
        partitions where missing, and drop the months that lie wholly before `retention` (None:
        keep them all); the names created and dropped. Each in a short transaction of its own;
        on SQLite nothing."""
        with transaction(self._factory) as session:
            if session.get_bind().dialect.name != "postgresql":
                return [], []
            created = ensure_partitions(session, database_now(session))
        if retention is None:
            return created, []
        with transaction(self._factory) as session:
            dropped = drop_partitions_before(session, database_now(session) - retention)
        return created, dropped

    def prune_logs(self, *, retention: timedelta, limit: int) -> int:
        """Delete up to `limit` log rows whose attempt started more than `retention` ago
        (oldest first, by the execution_time index), so that retention runs in short
        transactions. On PostgreSQL, where `maintain_log_partitions` drops whole old months
        first, these are the few left in the oldest month kept (and the default partition);
        the time condition on the DELETE itself lets PostgreSQL skip the other months."""
        with transaction(self._factory) as session:
            before = database_now(session) - retention
            oldest = (
                select(TaskLog.id)
                .where(TaskLog.execution_time < before)
                .order_by(TaskLog.execution_time)
                .limit(limit)
            )
            result = session.execute(
                delete(TaskLog)
                .where(TaskLog.execution_time < before)
                .where(TaskLog.id.in_(oldest.scalar_subquery()))
                .execution_options(synchronize_session=False)
            )
            return result.rowcount


def cancel_pending(
    session: Session,
    *,
    task_ids: list[uuid.UUID],
    now: datetime,
    triggers: Collection[Trigger] | None = None,
    target: int | None = None,
) -> None:
    """Finish the tasks' waiting occurrences (not manual runs or message deletions, not ones in
    flight; only those of `triggers`, or of one webhook `target`, when given): an inactive task
    (or webhook) sends nothing more on its schedule."""
    kinds = triggers or [trigger for trigger in Trigger if trigger not in _NOT_CANCELLED]
    query = update(Occurrence).where(
        Occurrence.task_id.in_(task_ids),
        Occurrence.finished_at.is_(None),
        Occurrence.lease_owner.is_(None),
        Occurrence.trigger.in_([kind.value for kind in kinds]),
    )
    if target is not None:
        query = query.where(Occurrence.target == target)
    session.execute(
        query.values(available_at=None, finished_at=now).execution_options(
            synchronize_session=False
        )
    )


# -- claiming, in the claim's transaction --------------------------------------------------------


def _claim_due_tasks(
    session: Session, *, now: datetime, owner: str, until: datetime, limit: int, grace: timedelta
) -> list[Job]:
    """Advance due tasks and insert their occurrences; the first `limit` are leased to `owner`,
    any beyond (catch-up bursts) are left available for whoever has room."""
    if limit <= 0:
        return []
    query = (
        select(_TASKS)
        .where(_TASKS.c.next_run_at <= now, _TASKS.c.status == TaskStatus.ACTIVE.value)
        .order_by(_TASKS.c.next_run_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows: list[dict] = []
    by_id: dict[uuid.UUID, Any] = {}
    advanced: list[dict] = []
    for task in session.execute(query).all():
        plan = _plan(task, now=now, grace=grace)
        advanced.append(_advance(task, plan, now=now))
        targets = _active_targets(task)
        for number, firing in enumerate(plan.firings, start=task.runs + 1):
            for target in targets:
                leased_to = owner if len(rows) < limit else None
                row = _occurrence(task.id, firing, leased_to=leased_to, target=target)
                row |= {"available_at": until if leased_to else now, "created_at": now}
                row["run_number"] = number
                by_id[row["id"]] = task
                rows.append(row)
    _ADVANCE_TASK.execute(session, advanced)
    if not rows:
        return []
    inserted = _insert_new_occurrences(session, rows)
    return [
        _job(by_id[row["id"]], SimpleNamespace(**row), until)
        for row in rows
        if row["id"] in inserted and row["lease_owner"] == owner
    ]


def _active_targets(task: Any) -> list[int]:
    """The webhooks a new occurrence of the task goes to: each of a fan-out task's that is on;
    the one webhook (0) of any other task."""
    states = read_targets(task.targets)
    if not states:
        return [0]
    return [index for index, state in enumerate(states) if state.active]


def _occurrence(
    task_id: uuid.UUID, firing: Firing, *, leased_to: str | None, target: int = 0
) -> dict:
    """A new occurrence row (its times are the claim's to fill in)."""
    return {
        "id": uuid.uuid4(),
        "task_id": task_id,
        "target": target,
        "scheduled_for": firing.scheduled_for,
        "trigger": firing.trigger,
        "attempt": 0,
        "lease_owner": leased_to,
        "rate_limit_wait_seconds": 0.0,
        "run_number": None,
        "message_id": None,
        "fire_kind": None if firing.kind == "normal" else firing.kind.value,
    }


def _plan(task: Any, *, now: datetime, grace: timedelta) -> DuePlan:
    """The task's plan; a task whose schedule cannot be evaluated here (a timezone this
    replica's tzdata lacks, a corrupt row) stops with the reason, and only that task."""
    try:
        return plan_due(task, now=now, grace=grace)
    except Exception as exc:
        logger.warning(
            "task stopped: its schedule cannot be evaluated",
            extra={"task_id": str(task.id), "error": str(exc)},
        )
        return DuePlan(stop_reason=f"schedule cannot be evaluated: {plain(str(exc))}")


def _advance(task: Any, plan: DuePlan, *, now: datetime) -> dict:
    """The claimed task's new next run, or its end, and its count of runs (_ADVANCE_TASK)."""
    stopped = plan.stop_reason is not None
    return {
        "id": task.id,
        "next_run_at": None if stopped else plan.next_run_at,
        "status": TaskStatus.INACTIVE.value if stopped else task.status,
        "status_reason": plan.stop_reason if stopped else task.status_reason,
        "status_changed_at": now if stopped else task.status_changed_at,
        "runs": task.runs + len(plan.firings),
    }


def _insert_new_occurrences(session: Session, rows: list[dict]) -> set[uuid.UUID]:
    """Insert the rows, skipping any whose (task, target, scheduled_for) exists; the ids
    inserted."""
    return set(_INSERT_OCCURRENCES.execute(session, rows))


def _claim_available(
    session: Session, *, now: datetime, owner: str, until: datetime, limit: int
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
        # Fresh rows even for tasks this session loaded before (the Core UPDATEs of a claim
        # bypass the identity map).
        .execution_options(populate_existing=True)
    )
    jobs = []
    for occurrence, task in session.execute(query).all():
        if task.status != TaskStatus.ACTIVE and occurrence.trigger not in _FOR_INACTIVE_TASKS:
            occurrence.available_at, occurrence.lease_owner = None, None
            occurrence.finished_at = now
            continue
        occurrence.available_at = until
        occurrence.lease_owner = owner
        jobs.append(_job(task, occurrence, until))
    session.flush()
    return jobs


def _job(task: Any, occurrence: Any, until: datetime) -> Job:
    """The job for a leased occurrence (an Occurrence, or a row being inserted) of a task (a
    Task, or a row of the tasks table)."""
    target = occurrence.target or 0
    fan_out = read_targets(task.targets)
    message_id = task.discord_message_id
    if fan_out:
        message_id = fan_out[target].discord_message_id if target < len(fan_out) else None
    return Job(
        occurrence_id=occurrence.id,
        task_id=task.id,
        scheduled_for=occurrence.scheduled_for,
        trigger=Trigger(occurrence.trigger),
        attempt=occurrence.attempt,
        webhook_url=target_url(task.webhook_url, task.webhook_urls, target),
        target=target,
        fire_kind=occurrence.fire_kind,
        payload=task.payload,
        max_retry=task.max_retry,
        task_name=task.name,
        task_version=task.updated_at,
        lease_expires_at=until,
        timezone=task.timezone,
        template=task.template,
        run_number=occurrence.run_number,
        next_run_at=_following(task, occurrence.scheduled_for) if task.template else None,
        discord_mode=DiscordMode(task.discord_mode),
        discord_message_id=message_id,
        delete_after_seconds=task.delete_after_seconds,
        message_id=occurrence.message_id,
        signing_secret=task.signing_secret,
        previous_signing_secret=task.previous_signing_secret,
        signing_rotated_at=task.signing_rotated_at,
    )


def _following(task: Any, scheduled_for: datetime) -> datetime | None:
    """The schedule's fire time after `scheduled_for` (a template's `next_run_at`): the same
    for every attempt of the occurrence."""
    try:
        following = upcoming_runs(task, after=scheduled_for, count=1)
    except Exception:
        return None
    return following[0].at if following else None


# -- recording, in the record's transaction ------------------------------------------------------


def _lock_tasks(session: Session, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, _TaskRow]:
    """The tasks' rows, locked in id order (so concurrent recorders never deadlock)."""
    query = (
        select(*(_TASKS.c[name] for name in _TASK_COLUMNS))
        .where(_TASKS.c.id.in_(task_ids))
        .order_by(_TASKS.c.id)
        .with_for_update()
    )
    rows = list(session.execute(query))
    ending = [row.id for row in rows if _may_have_other_open_runs(row)]
    open_runs = _open_runs(session, ending) if ending else {}
    return {row.id: _task_row_from(row, open_runs.get(row.id, 1)) for row in rows}


def _may_have_other_open_runs(row: Any) -> bool:
    """Whether an active task that fires no more may have scheduled runs open besides the one
    being recorded: a recurring task's, or a one-time task's to its other webhooks. (A one-time
    task with one webhook has one run.)"""
    if row.next_run_at is not None or row.status != TaskStatus.ACTIVE.value:
        return False
    return is_recurring(row) or bool(row.webhook_urls)


def _open_runs(session: Session, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many scheduled runs of each task are not finished yet (for tasks that fire no more,
    whose last run ends them)."""
    query = (
        select(_OCCURRENCES.c.task_id, func.count())
        .where(
            _OCCURRENCES.c.task_id.in_(task_ids),
            _OCCURRENCES.c.finished_at.is_(None),
            _OCCURRENCES.c.trigger.in_(_SCHEDULED),
        )
        .group_by(_OCCURRENCES.c.task_id)
    )
    return {task_id: count for task_id, count in session.execute(query)}


def _task_row_from(row: Any, open_runs: int) -> _TaskRow:
    ladder = Ladder(failures=row.failures, failing_since=row.failing_since, resume_at=row.resume_at)
    recurring = is_recurring(row)
    ended = recurring and row.next_run_at is None and row.status == "active"
    state = TaskState(
        status=TaskStatus(row.status),
        schedule=row.schedule or (row.schedules[0] if recurring else None),
        next_run_at=row.next_run_at,
        updated_at=row.updated_at,
        last_run_at=row.last_run_at,
        auto_resume=row.auto_resume,
        ladder=ladder,
        end_reason=end_reason(row) if ended else None,
        open_runs=open_runs,
    )
    return _TaskRow(
        state=state,
        row=row,
        status_reason=row.status_reason,
        last_status=row.last_status,
        status_changed_at=row.status_changed_at,
        discord_message_id=row.discord_message_id,
        targets=read_targets(row.targets) or None,
    )


def _state_for(row: _TaskRow, target: int) -> TaskState:
    """What `decide` sees of the task for one of its webhooks: a fan-out target's own status
    (off while the task is) and health ladder; the task itself for a one-webhook task."""
    if row.targets is None or not 0 <= target < len(row.targets):
        return row.state
    own = row.targets[target]
    on = row.state.status is TaskStatus.ACTIVE and own.active
    return replace(
        row.state, status=TaskStatus.ACTIVE if on else TaskStatus.INACTIVE, ladder=own.ladder
    )


def _lock_occurrences(
    session: Session, occurrence_ids: list[uuid.UUID], *, owner: str
) -> dict[uuid.UUID, OccurrenceState]:
    """The occurrences this scheduler still holds, locked in id order."""
    query = (
        select(_OCCURRENCES.c.id, _OCCURRENCES.c.attempt, _OCCURRENCES.c.rate_limit_wait_seconds)
        .where(_OCCURRENCES.c.id.in_(occurrence_ids), _OCCURRENCES.c.lease_owner == owner)
        .order_by(_OCCURRENCES.c.id)
        .with_for_update()
    )
    return {
        row.id: OccurrenceState(
            attempt=row.attempt, rate_limit_wait_seconds=row.rate_limit_wait_seconds
        )
        for row in session.execute(query)
    }


def _fold(row: _TaskRow, attempt: Attempt, decision: Decision, *, now: datetime) -> None:
    """Carry a decision into the task row (and its target's state), so the next attempt of the
    batch sees it."""
    if decision.last_run and decision.log is not None:
        row.state = replace(row.state, last_run_at=attempt.started_at)
        row.last_status = decision.log.status.value
        row.changed = True
    change = decision.occurrence
    if change is not None and change.finished and attempt.job.trigger.value in _SCHEDULED:
        row.state = replace(row.state, open_runs=row.state.open_runs - 1)
    if decision.task is None:
        return
    row.changed = True
    if row.targets is None or decision.task.ends_task:
        _fold_task(row, decision.task, target=attempt.job.target, now=now)
    if row.targets is not None:
        _fold_target(row, attempt.job.target, decision.task, now=now)


def _fold_task(row: _TaskRow, change: TaskChange, *, target: int, now: datetime) -> None:
    """A decision's change to the task itself."""
    if change.status_reason is not None or change.status is not None:
        row.status_reason = change.status_reason
    if change.ladder is not None and row.targets is None:
        row.state = replace(row.state, ladder=change.ladder)
        if change.ladder.resume_at:
            row.probes.append((target, change.ladder.resume_at))
    if change.status is not None and change.status is not row.state.status:
        _set_task_status(row, change.status, now=now)
    if change.reschedule:
        row.state = replace(row.state, next_run_at=_next_run(row, now=now))
    if change.discord_message_id is not None and row.targets is None:
        row.discord_message_id = change.discord_message_id


def _set_task_status(row: _TaskRow, status: TaskStatus, *, now: datetime) -> None:
    row.status_changed_at = now
    row.stopped = status is TaskStatus.INACTIVE
    row.state = replace(row.state, status=status, next_run_at=None)


def _fold_target(row: _TaskRow, target: int, change: TaskChange, *, now: datetime) -> None:
    """A decision's change to one webhook of a fan-out task; the task goes off when its last
    webhook does, and on again when one comes back while it was off."""
    assert row.targets is not None
    if not 0 <= target < len(row.targets):
        return
    own = row.targets[target]
    if change.ends_task:  # the task's own end: the webhook keeps its status
        change = replace(change, status=None, status_reason=None)
    if change.status is not None and change.status is not own.status:
        own = replace(own, status=change.status, status_changed_at=now)
        if change.status is TaskStatus.INACTIVE:
            row.stopped_targets.append(target)
    if change.status_reason is not None or change.status is not None:
        own = replace(own, status_reason=change.status_reason)
    if change.ladder is not None:
        own = replace(own, ladder=change.ladder)
        if change.ladder.resume_at:
            row.probes.append((target, change.ladder.resume_at))
    if change.discord_message_id is not None:
        own = replace(own, discord_message_id=change.discord_message_id)
    row.targets[target] = own
    if change.status is not None:
        _settle_fan_out(row, change, now=now)


def _settle_fan_out(row: _TaskRow, change: TaskChange, *, now: datetime) -> None:
    """The task's own status after one of its webhooks changed."""
    assert row.targets is not None
    any_on = any(state.active for state in row.targets)
    if row.state.status is TaskStatus.ACTIVE and not any_on:
        row.status_reason = f"every webhook is switched off; the last: {change.status_reason}"
        _set_task_status(row, TaskStatus.INACTIVE, now=now)
    elif row.state.status is TaskStatus.INACTIVE and any_on and change.reschedule:
        row.status_reason = None
        row.status_changed_at = now
        row.state = replace(row.state, status=TaskStatus.ACTIVE)
        row.state = replace(row.state, next_run_at=_next_run(row, now=now))


def _next_run(row: _TaskRow, *, now: datetime) -> datetime | None:
    """A resumed task's next run from now (None, and the reason, if it cannot be planned)."""
    timing = SimpleNamespace(**(dict(row.row._mapping) | {"status": row.state.status.value}))
    try:
        following = next_run_after(timing, after=now)
    except Exception as exc:
        row.state = replace(row.state, status=TaskStatus.INACTIVE)
        row.status_reason = f"schedule cannot be evaluated: {plain(str(exc))}"
        return None
    if following is None and is_recurring(timing):  # nothing left to run: it has ended
        row.state = replace(row.state, status=TaskStatus.INACTIVE)
        row.status_reason = end_reason(timing)
    return following


def _write(
    session: Session,
    attempts: list[Attempt],
    decisions: list[Decision],
    tasks: dict[uuid.UUID, _TaskRow],
    *,
    now: datetime,
    stripped: bool,
) -> None:
    """Apply the decisions: one executemany statement per table."""
    logs = [
        _log_row(attempt, decision, now=now, stripped=stripped)
        for attempt, decision in zip(attempts, decisions, strict=True)
        if decision.log is not None
    ]
    occurrences = [
        _occurrence_row(attempt.job.occurrence_id, decision, now=now)
        for attempt, decision in zip(attempts, decisions, strict=True)
        if decision.occurrence is not None
    ]
    changed = [(task_id, row) for task_id, row in tasks.items() if row.changed]
    _RECORD_TASK.execute(session, [_task_row(i, row, stripped) for i, row in changed])
    _RECORD_OCCURRENCE.execute(session, occurrences)
    _INSERT_LOGS.execute(session, logs)
    _write_stops_and_follow_ups(session, attempts, decisions, changed, now=now)


def _write_stops_and_follow_ups(
    session: Session,
    attempts: list[Attempt],
    decisions: list[Decision],
    changed: list[tuple[uuid.UUID, _TaskRow]],
    *,
    now: datetime,
) -> None:
    """Finish what stopped tasks and webhooks were waiting to send, then add the probes and
    message deletions the batch asked for (after the cancellation, which must not finish them)."""
    stopped = [i for i, row in changed if row.stopped]
    if stopped:
        cancel_pending(session, task_ids=stopped, now=now)
    for task_id, row in changed:
        for target in row.stopped_targets:
            cancel_pending(session, task_ids=[task_id], now=now, target=target)
    probes = [
        _probe_row(i, at, now=now, target=target) for i, row in changed for target, at in row.probes
    ]
    deletions = [
        _deletion_row(attempt, decision, now=now)
        for attempt, decision in zip(attempts, decisions, strict=True)
        if decision.delete_message_at is not None
    ]
    if probes or deletions:
        _insert_new_occurrences(session, probes + deletions)


def _deletion_row(attempt: Attempt, decision: Decision, *, now: datetime) -> dict:
    """The occurrence that deletes the Discord message this attempt posted."""
    at = decision.delete_message_at
    assert at is not None
    firing = Firing(scheduled_for=at, trigger=Trigger.DELETE.value)
    row = _occurrence(attempt.job.task_id, firing, leased_to=None, target=attempt.job.target)
    return row | {
        "available_at": at,
        "created_at": now,
        "message_id": attempt.outcome.message_id,
    }


def _probe_row(task_id: uuid.UUID, at: datetime, *, now: datetime, target: int) -> dict:
    """A probe of one of the task's webhooks, due at `at`, available to any scheduler then."""
    firing = Firing(scheduled_for=at, trigger=Trigger.PROBE.value)
    row = _occurrence(task_id, firing, leased_to=None, target=target)
    return row | {"available_at": at, "created_at": now}


def _log_row(attempt: Attempt, decision: Decision, *, now: datetime, stripped: bool) -> dict:
    job, outcome, log = attempt.job, attempt.outcome, decision.log
    assert log is not None
    return {
        "id": uuid.uuid4(),
        "task_id": job.task_id,
        "execution_time": attempt.started_at,
        "scheduled_for": job.scheduled_for,
        "status": log.status.value,
        "retry_count": job.attempt,
        "message": plain(log.message) if stripped else log.message,
        "http_status": outcome.http_status,
        "duration_ms": outcome.duration_ms,
        "response_body": None if stripped else outcome.response_body,
        "trigger": job.trigger.value,
        "created_at": now,
        "target": job.target,
    }


def _occurrence_row(occurrence_id: uuid.UUID, decision: Decision, *, now: datetime) -> dict:
    change = decision.occurrence
    assert change is not None
    return {
        "id": occurrence_id,
        "attempt": change.attempt,
        "available_at": change.available_at,
        "rate_limit_wait_seconds": change.rate_limit_wait_seconds,
        "finished_at": now if change.finished else None,
    }


def _task_row(task_id: uuid.UUID, row: _TaskRow, stripped: bool) -> dict:
    state = row.state
    return {
        "id": task_id,
        "status": state.status.value,
        "status_reason": plain(row.status_reason) if stripped else row.status_reason,
        "next_run_at": state.next_run_at,
        "last_run_at": state.last_run_at,
        "last_status": row.last_status,
        "resume_at": state.ladder.resume_at,
        "failures": state.ladder.failures,
        "failing_since": state.ladder.failing_since,
        "status_changed_at": row.status_changed_at,
        "discord_message_id": row.discord_message_id,
        "targets": None if row.targets is None else [state.to_json() for state in row.targets],
    }
