"""When a task fires next: the bridge between a stored task and the pure schedule math."""

from datetime import datetime

from app.models import Task
from app.scheduling.schedules import next_fire_time, parse_schedule, parse_timezone


def next_run_after(task: Task, *, after: datetime) -> datetime | None:
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
