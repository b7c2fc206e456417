"""When a task fires: the bridge between a stored task and the pure schedule math.

`plan_due` decides what a due task fires now. An occurrence is *missed* when it is more than the
grace period late at the moment it is claimed (it fell due while no scheduler was running, or
the scheduler was stalled); the task's `catchup` policy says what becomes of missed ones:

* `latest`: the most recent missed occurrence runs once, standing for all of them;
* `none`: missed occurrences are skipped;
* `all`: every missed occurrence runs, the latest `CATCHUP_LIMIT` of them.

Occurrences within the grace period are not missed and always run. Catch-up runs carry the
trigger `catchup`, on-time runs `schedule`.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from app.scheduling.schedules import (
    fire_times_between,
    next_fire_time,
    next_fire_times,
    parse_schedule,
    parse_timezone,
)

CATCHUP_LIMIT = 100
# Occurrences due within the grace period all run; this bounds one claim's work for a
# very short interval after a stall (the rest are then missed and follow the policy).
ON_TIME_LIMIT = 100


class TaskTiming(Protocol):
    """What planning reads of a task: a `Task`, or a row of the tasks table."""

    @property
    def schedule(self) -> str | None: ...
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


@dataclass(frozen=True)
class Firing:
    """One occurrence to run now."""

    scheduled_for: datetime
    trigger: str


@dataclass(frozen=True)
class DuePlan:
    """What a due task fires now, its next fire time, and why it stops if it does."""

    firings: list[Firing] = field(default_factory=list)
    next_run_at: datetime | None = None
    stop_reason: str | None = None


def next_run_after(task: TaskTiming, *, after: datetime) -> datetime | None:
    """The task's first fire time strictly after `after`, or None when it will not fire.

    An active one-time task fires at `run_at`, or at once if `run_at` has passed (a client whose
    clock is a little behind should not lose its run); an inactive task never fires.
    """
    if task.status != "active":
        return None
    if task.schedule is None:
        return task.run_at if task.run_at is not None and task.run_at > after else after
    schedule = parse_schedule(task.schedule)
    tz = parse_timezone(task.timezone)
    return next_fire_time(schedule, tz, after=after, anchor=task.created_at)


def upcoming_runs(task: TaskTiming, *, after: datetime, count: int) -> list[datetime]:
    """The next `count` fire times after `after`, whatever the task's status."""
    if task.schedule is None:
        return [task.run_at] if task.run_at is not None and task.run_at > after else []
    schedule = parse_schedule(task.schedule)
    tz = parse_timezone(task.timezone)
    return next_fire_times(schedule, tz, after=after, anchor=task.created_at, count=count)


def plan_due(task: TaskTiming, *, now: datetime, grace: timedelta) -> DuePlan:
    """Firings for a task whose `next_run_at` is at or before `now`, and its new next_run_at."""
    first = task.next_run_at
    assert first is not None and first <= now, "plan_due is for due tasks"
    cutoff = now - grace
    missed, on_time = _due_times(task, first=first, cutoff=cutoff, now=now)
    if task.catchup == "none":
        chosen_missed: list[datetime] = []
    elif task.catchup == "all":
        chosen_missed = missed[-CATCHUP_LIMIT:]
    else:
        chosen_missed = missed[-1:]
    firings = [Firing(t, "catchup") for t in chosen_missed] + [
        Firing(t, "schedule") for t in on_time
    ]
    if task.schedule is not None:
        return DuePlan(firings=firings, next_run_at=next_run_after(task, after=now))
    stop_reason = None if firings else "skipped: its run time passed while no scheduler ran"
    return DuePlan(firings=firings, next_run_at=None, stop_reason=stop_reason)


def _due_times(
    task: TaskTiming, *, first: datetime, cutoff: datetime, now: datetime
) -> tuple[list[datetime], list[datetime]]:
    """Due fire times from `first` to `now`, split into missed (<= cutoff) and on time."""
    if task.schedule is None:
        return ([first], []) if first <= cutoff else ([], [first])
    schedule = parse_schedule(task.schedule)
    tz = parse_timezone(task.timezone)

    def between(after: datetime, until: datetime, limit: int) -> list[datetime]:
        return fire_times_between(
            schedule, tz, after=after, until=until, anchor=task.created_at, limit=limit
        )

    if first > cutoff:
        return [], [first, *between(first, now, ON_TIME_LIMIT)][-ON_TIME_LIMIT:]
    missed = [first, *between(first, cutoff, CATCHUP_LIMIT)][-CATCHUP_LIMIT:]
    return missed, between(cutoff, now, ON_TIME_LIMIT)
