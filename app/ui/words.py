"""Plain words for the dashboard: a schedule as a sentence ("every weekday at 09:00
Europe/Paris"), an instant in a task's timezone, how far away it is ("in 3 h"), a duration.

Pure functions: whatever depends on the clock takes `now`. A cron expression that no sentence
here describes well (both day fields restricted, odd steps) is shown as it is, with its
timezone: a plain, correct answer beats a clever, wrong one.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.scheduling.schedules import IntervalSchedule, ScheduleError, parse_schedule

DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAY_TOKENS = {name[:3].upper(): i for i, name in enumerate(DAY_NAMES)}
_MONTH_TOKENS = {name[:3].upper(): i + 1 for i, name in enumerate(MONTH_NAMES)}
WEEKDAYS = (1, 2, 3, 4, 5)
# At most this many clock times are listed ("at 09:00, 12:00 and 17:00"); more read as noise.
MAX_LISTED_TIMES = 6
MAX_LISTED_DATES = 4
_INTERVAL_UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))
_ITEM = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")
RESUME_NOTE = "; trying again at "
# What quiet hours do to a run inside them, by mode.
QUIET_WORDS = {
    "skip": "is skipped",
    "defer": "waits for their end",
    "silent": "is sent without a notification (Discord)",
}
_DISCORD_MESSAGE = re.compile(r"Discord message (\d{5,25})")


@dataclass(frozen=True)
class _Days:
    """Which days a cron runs, said two ways: "every weekday" and "on weekdays"."""

    every: str
    on: str


def task_schedules(task: Any) -> list[str]:
    """A task's schedules: its several, its one, or none (a one-time task)."""
    return list(task.schedules or ([task.schedule] if task.schedule is not None else []))


def timing_in_words(schedules: list[str], *, run_at: datetime | None, timezone: str) -> str:
    """A task's timing as a sentence: each of its schedules (joined with "; "), or its one
    run."""
    if not schedules:
        return schedule_in_words(None, run_at=run_at, timezone=timezone)
    return "; ".join(
        schedule_in_words(schedule, run_at=None, timezone=timezone) for schedule in schedules
    )


def schedule_in_words(schedule: str | None, *, run_at: datetime | None, timezone: str) -> str:
    """A task's timing as a sentence; the schedule text itself when no sentence fits."""
    if schedule is None:
        if run_at is None:
            return "no schedule"
        return f"once, on {local_time(run_at, timezone, zone=False)} {timezone}"
    try:
        parsed = parse_schedule(schedule)
    except ScheduleError:
        return schedule
    if isinstance(parsed, IntervalSchedule):
        return interval_in_words(parsed.seconds)
    return cron_in_words(parsed.expression, timezone)


def interval_in_words(seconds: int) -> str:
    """`@every` as words: "every 30 seconds", "every hour", "every 1 hour 30 minutes"."""
    parts: list[tuple[int, str]] = []
    for size, unit in _INTERVAL_UNITS:
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append((amount, unit))
    if len(parts) == 1 and parts[0][0] == 1:
        return f"every {parts[0][1]}"
    return "every " + " ".join(f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in parts)


def cron_in_words(expression: str, timezone: str) -> str:
    """A 5-field cron expression (as `parse_schedule` normalises it) as a sentence."""
    fallback = f"cron {expression} ({timezone})"
    minute, hour, day_of_month, month, day_of_week = expression.split()
    days = _days(day_of_month, month, day_of_week)
    minutes, hours = _values(minute, 0, 59), _values(hour, 0, 23)
    if days is None or minutes is None or hours is None:
        return fallback
    if minutes and hours and len(minutes) * len(hours) <= MAX_LISTED_TIMES:
        clock = [f"{h:02}:{m:02}" for h in hours for m in minutes]
        return f"{days.every} at {_join(clock)} {timezone}"
    frequency = _frequency(minutes, hours)
    if frequency is None:
        return fallback
    text, local = frequency
    if days.on:
        text, local = f"{text} {days.on}", True
    return f"{text} ({timezone})" if local else text


def _frequency(minutes: list[int], hours: list[int]) -> tuple[str, bool] | None:
    """How often a cron fires within its days, and whether that depends on the timezone;
    [] stands for every value of a field. None when no plain phrase fits."""
    if len(minutes) == 1:
        at = "" if minutes[0] == 0 else f" at minute {minutes[0]}"
        if not hours:
            return f"every hour{at}", False
        step = _step(hours, 24)
        if step is not None:
            return f"every {step} hours{at}", True
        window = _window(hours)
        if window is None:
            return None
        first, last = window
        return f"every hour from {first:02}:{minutes[0]:02} to {last:02}:{minutes[0]:02}", True
    step = 1 if not minutes else _step(minutes, 60)
    if step is None:
        return None
    every = "every minute" if step == 1 else f"every {step} minutes"
    if not hours:
        return every, False
    window = _window(hours)
    if window is None:
        return None
    return f"{every} from {window[0]:02}:00 to {window[1]:02}:59", True


def _days(day_of_month: str, month: str, day_of_week: str) -> _Days | None:
    """The days a cron runs on, or None when no plain phrase fits."""
    dates, months = _values(day_of_month, 1, 31), _values(month, 1, 12, _MONTH_TOKENS)
    weekdays = _values(day_of_week, 0, 6, _DAY_TOKENS)
    if dates is None or months is None or weekdays is None:
        return None
    weekdays = sorted({0 if day == 7 else day for day in weekdays})
    if dates and weekdays:
        return None  # cron's either-or rule: honest words would be a paragraph
    if weekdays:
        return None if months else _weekdays(weekdays)
    if not dates:
        return None if months else _Days("every day", "")
    if not months:
        ordinals = _join([_ordinal(day) for day in dates])
        return _Days(f"on the {ordinals} of every month", f"on the {ordinals} of each month")
    if len(dates) * len(months) > MAX_LISTED_DATES:
        return None
    listed = _join([f"{day} {MONTH_NAMES[m - 1]}" for m in months for day in dates])
    return _Days(f"every year on {listed}", f"on {listed}")


def _weekdays(days: list[int]) -> _Days:
    """Days of the week (0 = Sunday) as words, Monday first."""
    if tuple(days) == WEEKDAYS:
        return _Days("every weekday", "on weekdays")
    names = [DAY_NAMES[day] for day in sorted(days, key=lambda day: (day == 0, day))]
    return _Days(f"every {_join(names)}", f"on {_join([name + 's' for name in names])}")


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> list | None:
    """The sorted values a cron field allows: [] for `*` (all of them), None when it cannot be
    read here (the service's parser has accepted it; this is only for words). `high` is where
    `*` and `a/n` end (day of week: 6, though 7 may be written for Sunday)."""
    if field == "*":
        return []
    found: set[int] = set()
    for item in field.split(","):
        match = _ITEM.match(item)
        if match is None:
            return None
        start, end, step = match.groups()
        first = low if start == "*" else _number(start, names)
        last = high if start == "*" or (step and not end) else _number(end or start, names)
        if first is None or last is None or first > last:
            return None
        found.update(range(first, last + 1, int(step or 1)))
    return sorted(found)


def _number(token: str, names: dict[str, int] | None) -> int | None:
    """A field's number, written as digits or as a day or month name."""
    if token.isdigit():
        return int(token)
    return (names or {}).get(token.upper())


def _step(values: list[int], size: int) -> int | None:
    """k when `values` is 0, k, 2k, ... up to the field's end (`*/k`), else None."""
    if len(values) < 2 or values[0] != 0:
        return None
    step = values[1]
    # */7 on minutes fires at :56 and again at :00; "every 7 minutes" would be wrong.
    if size % step or values != list(range(0, size, step)):
        return None
    return step


def _window(values: list[int]) -> tuple[int, int] | None:
    """(first, last) when `values` are consecutive, else None."""
    if values != list(range(values[0], values[-1] + 1)):
        return None
    return values[0], values[-1]


def _ordinal(day: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st, 22nd, 23rd, ... 31st."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _join(items: list[str]) -> str:
    """Items as prose: `a`, `a and b`, `a, b and c`."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def local_time(at: datetime, timezone: str, *, zone: bool = True) -> str:
    """An instant on the wall clock of `timezone`: "Mon 1 Dec 2026 09:00 CET" (without the
    zone's abbreviation when `zone` is false)."""
    local = at.astimezone(ZoneInfo(timezone))
    text = f"{local:%a} {local.day} {local:%b %Y %H:%M}"
    return f"{text} {local:%Z}" if zone else text


def reason_in_words(reason: str | None) -> str:
    """A task's status reason without the "; trying again at <UTC time>" the service appends
    to it (the dashboard shows `resume_at` in the task's timezone instead)."""
    return (reason or "").partition(RESUME_NOTE)[0]


def relative_time(at: datetime, *, now: datetime) -> str:
    """How far `at` is from `now`, roughly: "in 3 h", "5 min ago", "now"."""
    seconds = (at - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    amount = _rough(abs(seconds))
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _rough(seconds: float) -> str:
    """A length of time in its largest sensible unit, rounded down."""
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3_600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86_400:
        return f"{int(seconds // 3_600)} h"
    return f"{int(seconds // 86_400)} d"


def duration_text(milliseconds: int | None) -> str:
    """143 ms, 2.4 s; an empty string for no value."""
    if milliseconds is None:
        return ""
    if milliseconds < 1000:
        return f"{milliseconds} ms"
    return f"{milliseconds / 1000:.1f} s"


def discord_message_id(message: str | None) -> str:
    """The Discord message a log row's message names ("..., Discord message 1300...") or ""."""
    found = _DISCORD_MESSAGE.search(message or "")
    return found.group(1) if found else ""
