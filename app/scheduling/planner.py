"""When a task fires: the bridge between a stored task and the pure schedule math.

`plan_due` decides what a due task fires now. An occurrence is *missed* when it is more than the
grace period late at the moment it is claimed (it fell due while no scheduler was running, or
the scheduler was stalled); the task's `catchup` policy says what becomes of missed ones:

* `latest`: the most recent missed occurrence runs once, standing for all of them;
* `none`: missed occurrences are skipped;
* `all`: every missed occurrence runs, the latest `CATCHUP_LIMIT` of them.

Occurrences within the grace period are not missed and always run. Catch-up runs carry the
trigger `catchup`, on-time runs `schedule`.

A recurring task's fire times come from its calendar (`app.scheduling.calendar`: several
schedules, start and end, excluded dates, quiet hours); `max_runs` caps how many occurrences it
fires in all (the task's `runs` counts them). A task whose last occurrence is planned keeps no
next run and stays active until that occurrence is finished, so that its retries still happen;
recording it then ends the task with `end_reason`.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from app.scheduling.calendar import Calendar, Fire, FireKind, parse_calendar

CATCHUP_LIMIT = 100
# Occurrences due within the grace period all run; this bounds one claim's work for a
# very short interval after a stall (the rest are then missed and follow the policy).
ON_TIME_LIMIT = 100
_TICK = timedelta(microseconds=1)


class TaskTiming(Protocol):
    """What planning reads of a task: a `Task`, or a row of the tasks table."""

    @property
    def schedule(self) -> str | None: ...
    @property
    def schedules(self) -> list[str] | None: ...
    @property
    def run_at(self) -> datetime | None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def catchup(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def next_run_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def start_at(self) -> datetime | None: ...
    @property
    def end_at(self) -> datetime | None: ...
    @property
    def exclude(self) -> list[str] | None: ...
    @property
    def quiet_hours(self) -> dict[str, str] | None: ...
    @property
    def max_runs(self) -> int | None: ...
    @property
    def runs(self) -> int: ...


@dataclass(frozen=True)
class Firing:
    """One occurrence to run now; `kind` says a quiet-hours run is silent or deferred."""

    scheduled_for: datetime
    trigger: str
    kind: FireKind = FireKind.NORMAL


@dataclass(frozen=True)
class DuePlan:
    """What a due task fires now, its next fire time, and why it stops if it does."""

    firings: list[Firing] = field(default_factory=list)
    next_run_at: datetime | None = None
    stop_reason: str | None = None


def is_recurring(task: TaskTiming) -> bool:
    """Whether the task fires on a schedule (else once, at `run_at`)."""
    return task.schedule is not None or bool(task.schedules)


def task_calendar(task: TaskTiming) -> Calendar:
    """The calendar of a recurring task (CalendarError if its fields are invalid)."""
    quiet = task.quiet_hours
    return _calendar(
        tuple(task.schedules or [task.schedule]),
        task.timezone,
        task.created_at,
        task.start_at,
        task.end_at,
        tuple(task.exclude or ()),
        tuple(sorted(quiet.items())) if isinstance(quiet, dict) else quiet,
    )


@lru_cache(maxsize=16_384)
def _calendar(
    schedules: tuple[str, ...],
    timezone: str,
    anchor: datetime,
    start_at: datetime | None,
    end_at: datetime | None,
    exclude: tuple[str, ...],
    quiet: Any,
) -> Calendar:
    """Remembered: a claim plans the same tasks again and again."""
    return parse_calendar(
        list(schedules),
        timezone,
        anchor=anchor,
        start_at=start_at,
        end_at=end_at,
        exclude=list(exclude),
        quiet_hours=dict(quiet) if isinstance(quiet, tuple) else quiet,
    )


def runs_left(task: TaskTiming) -> int | None:
    """How many more occurrences `max_runs` allows (None: no limit)."""
    if task.max_runs is None:
        return None
    return max(0, task.max_runs - (task.runs or 0))


def end_reason(task: TaskTiming) -> str:
    """Why a recurring task that will not fire again has ended (its status_reason)."""
    if task.max_runs is not None and (task.runs or 0) >= task.max_runs:
        return f"completed {task.max_runs} runs"
    if task.end_at is not None:
        return f"ended: its end_at ({task.end_at.isoformat(timespec='seconds')}) has passed"
    return "ended: its schedule has no more runs"


def next_run_after(task: TaskTiming, *, after: datetime) -> datetime | None:
    """The task's first fire time strictly after `after`, or None when it will not fire.

    An active one-time task fires at `run_at`, or at once if `run_at` has passed (a client whose
    clock is a little behind should not lose its run); an inactive task never fires, nor one
    whose `max_runs` are spent.
    """
    if task.status != "active":
        return None
    if not is_recurring(task):
        return task.run_at if task.run_at is not None and task.run_at > after else after
    if runs_left(task) == 0:
        return None
    fire = task_calendar(task).next_fire(after)
    return None if fire is None else fire.at


def upcoming_runs(task: TaskTiming, *, after: datetime, count: int) -> list[Fire]:
    """The next `count` fires after `after` (at most the runs `max_runs` leaves), whatever the
    task's status; each says whether quiet hours make it silent or deferred."""
    if not is_recurring(task):
        return [Fire(task.run_at)] if task.run_at is not None and task.run_at > after else []
    calendar = task_calendar(task)
    return calendar.upcoming(after, count, runs_done=task.runs or 0, max_runs=task.max_runs)


def plan_due(task: TaskTiming, *, now: datetime, grace: timedelta) -> DuePlan:
    """Firings for a task whose `next_run_at` is at or before `now`, and its new next_run_at.
    A recurring task whose last run this is keeps no next run (and no stop reason): it ends
    once that run is finished."""
    first = task.next_run_at
    assert first is not None and first <= now, "plan_due is for due tasks"
    missed, on_time = _due_fires(task, first=first, cutoff=now - grace, now=now)
    if task.catchup == "none":
        missed = []
    elif task.catchup != "all":
        missed = missed[-1:]
    firings = [Firing(f.at, "catchup", f.kind) for f in missed[-CATCHUP_LIMIT:]]
    firings += [Firing(f.at, "schedule", f.kind) for f in on_time]
    if not is_recurring(task):
        stop_reason = None if firings else "skipped: its run time passed while no scheduler ran"
        return DuePlan(firings=firings, next_run_at=None, stop_reason=stop_reason)
    left = runs_left(task)
    if left is not None:
        firings = firings[:left]
    following = None
    if left is None or left > len(firings):
        following = next_run_after(task, after=now)
    if following is None and not firings:
        return DuePlan(stop_reason=end_reason(task))  # nothing left to run, now or later
    return DuePlan(firings=firings, next_run_at=following)


def _due_fires(
    task: TaskTiming, *, first: datetime, cutoff: datetime, now: datetime
) -> tuple[list[Fire], list[Fire]]:
    """Due fires from `first` to `now`, split into missed (<= cutoff) and on time."""
    if not is_recurring(task):
        return ([Fire(first)], []) if first <= cutoff else ([], [Fire(first)])
    calendar = task_calendar(task)
    start = first - _TICK  # `first` is itself one of the calendar's fires
    if first > cutoff:
        return [], calendar.fires_between(start, now, ON_TIME_LIMIT)
    missed = calendar.fires_between(start, cutoff, CATCHUP_LIMIT)
    return missed, calendar.fires_between(max(cutoff, start), now, ON_TIME_LIMIT)
