"""Parse task schedules and compute their fire times (pure functions, no I/O).

A schedule is one of:

* a 5-field cron expression ``minute hour day-of-month month day-of-week``. Fields take
  ``*``, numbers, ranges ``a-b``, steps ``*/n``, ``a-b/n`` and ``a/n`` (``a`` to the field's
  maximum), and comma lists of these. Month (JAN-DEC) and day (SUN-SAT) names are accepted in
  any case; day-of-week 7 means Sunday, and a day range ending on Sunday may wrap
  (``FRI-SUN``). As in classic cron, when both day-of-month and day-of-week are restricted a
  day matches if EITHER matches; otherwise both must. Cron extensions (``L``, ``W``, ``#``,
  ``?``, ``H``) and 6/7-field forms with seconds or years are rejected;
* a macro: ``@hourly @daily @midnight @weekly @monthly @yearly @annually``;
* an interval ``@every <duration>``, with ``<int><unit>`` parts in the order ``d h m s``.

Cron runs on the wall clock of the task's IANA timezone, with these DST rules:

* spring-forward: a wall time that does not exist fires once, at the first instant after the
  gap (02:30 on a 02:00->03:00 day fires at 03:00 new time), and several missing wall times
  collapse into that one fire;
* fall-back: a repeated wall time fires once, at its first occurrence (``fold=0``); nothing
  fires during the second pass over the repeated hour.

Intervals are absolute durations: fire times are ``anchor + k * interval`` for ``k >= 1``,
whatever the timezone. Every datetime returned is aware and in UTC.
"""

import itertools
import math
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import cache, lru_cache

from croniter import CroniterBadDateError, croniter

__all__ = [
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "ScheduleError",
    "fire_times_between",
    "iter_fire_times",
    "localize_run_at",
    "next_fire_time",
    "next_fire_times",
    "offset_change_between",
    "parse_schedule",
    "parse_timezone",
]


class ScheduleError(ValueError):
    """A schedule or timezone the user supplied is invalid; str() is a short message."""


@dataclass(frozen=True)
class CronSchedule:
    """A cron schedule: `expression` is the 5-field form, `text` what the user wrote."""

    expression: str
    text: str


@dataclass(frozen=True)
class IntervalSchedule:
    """A fixed interval of `seconds`, counted from the anchor."""

    seconds: int
    text: str


Schedule = CronSchedule | IntervalSchedule

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

MAX_INTERVAL_SECONDS = 3650 * 86400
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_RE = re.compile(r"(?:(\d{1,9})d)?(?:(\d{1,9})h)?(?:(\d{1,9})m)?(?:(\d{1,9})s)?")
_ITEM_RE = re.compile(r"(?:(\*)|([0-9A-Z]+)(?:-([0-9A-Z]+))?)(?:/([0-9]{1,4}))?")
# System aliases that zoneinfo can load but that are not IANA zone names.
_NOT_IANA_ZONES = frozenset({"localtime", "posixrules"})


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int  # largest value accepted when written out (day-of-week allows 7 = Sunday)
    top: int  # largest distinct value ('*' spans low..top)
    names: dict[str, int]


_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELDS = (
    _Field("minute", 0, 59, 59, {}),
    _Field("hour", 0, 23, 23, {}),
    _Field("day of month", 1, 31, 31, {}),
    _Field("month", 1, 12, 12, {n: i + 1 for i, n in enumerate(_MONTH_NAMES)}),
    _Field("day of week", 0, 7, 6, {n: i for i, n in enumerate(_DAY_NAMES)}),
)


# --- parsing ------------------------------------------------------------------------------


def parse_schedule(text: str) -> Schedule:
    """Parse and normalise a cron expression, macro or `@every` interval; raise ScheduleError."""
    if not isinstance(text, str):
        raise ScheduleError("schedule must be a string")
    parts = text.split()
    if not parts:
        raise ScheduleError("schedule must not be empty")
    head = parts[0].lower()
    if head == "@every":
        return _parse_interval(parts[1:])
    if head in MACROS:
        if len(parts) > 1:
            raise ScheduleError(f"unexpected text after '{head}'")
        return CronSchedule(expression=MACROS[head], text=head)
    if head.startswith("@"):
        raise ScheduleError(f"unsupported schedule '{parts[0]}'")
    normalised = " ".join(parts).upper()
    _compile_cron(normalised)
    return CronSchedule(expression=normalised, text=normalised)


def _parse_interval(parts: list[str]) -> IntervalSchedule:
    """Parse the duration after `@every` into an IntervalSchedule; raise ScheduleError."""
    if len(parts) != 1:
        raise ScheduleError("'@every' takes one duration, e.g. '@every 5m' or '@every 1h30m'")
    duration = parts[0].lower()
    match = _DURATION_RE.fullmatch(duration)
    if not duration or match is None:
        raise ScheduleError(
            f"invalid interval '{parts[0]}': use <number><unit> parts with units d, h, m, s "
            "in that order, e.g. '1h30m'"
        )
    amounts = [(int(v), u) for v, u in zip(match.groups(), "dhms", strict=True) if v]
    seconds = sum(value * _UNIT_SECONDS[unit] for value, unit in amounts)
    if seconds < 1:
        raise ScheduleError("interval must be at least 1 second")
    if seconds > MAX_INTERVAL_SECONDS:
        raise ScheduleError(f"interval must be at most {MAX_INTERVAL_SECONDS // 86400} days")
    text = "@every " + "".join(f"{value}{unit}" for value, unit in amounts if value)
    return IntervalSchedule(seconds=seconds, text=text)


@lru_cache(maxsize=1024)
def _compile_cron(expression: str) -> str:
    """Validate a 5-field cron text; return the numeric form handed to croniter."""
    fields = expression.upper().split()
    if len(fields) != 5:
        raise ScheduleError(
            f"invalid cron expression '{expression}': expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    try:
        compiled = " ".join(
            _compile_field(f, spec) for f, spec in zip(fields, _FIELDS, strict=True)
        )
    except ValueError as exc:
        raise ScheduleError(f"invalid cron expression '{expression}': {exc}") from None
    try:
        croniter(compiled, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ScheduleError(f"cron expression '{expression}' never fires") from None
    return compiled


def _compile_field(text: str, spec: _Field) -> str:
    """Expand one cron field to '*' (every value) or a sorted comma list; ValueError if bad."""
    values: set[int] = set()
    for item in text.split(","):
        values.update(_expand_item(item, spec))
    if values == set(range(spec.low, spec.top + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


def _expand_item(item: str, spec: _Field) -> range | list[int]:
    """Expand one list item (`*`, `a`, `a-b`, with optional `/step`) of a cron field."""
    match = _ITEM_RE.fullmatch(item)
    if match is None:
        raise ValueError(f"invalid {spec.name} field item '{item}'")
    star, first, last, step_text = match.groups()
    step = 1 if step_text is None else int(step_text)
    if step < 1:
        raise ValueError(f"{spec.name} step must be at least 1")
    if star:
        low, high = spec.low, spec.top
    else:
        low = _field_value(first, spec)
        if last is not None:
            high = _field_value(last, spec)
        else:
            high = spec.top if step_text is not None else low
        if spec.name == "day of week" and high == 0 and low > 0:
            high = 7  # a range ending on Sunday, e.g. FRI-SUN
        if low > high:
            raise ValueError(f"{spec.name} range '{item}' runs backwards")
    # Day-of-week 7 is another spelling of Sunday (0).
    return sorted({v % 7 if spec.name == "day of week" else v for v in range(low, high + 1, step)})


def _field_value(token: str, spec: _Field) -> int:
    """Read a number or a (month/day) name within the field's bounds; ValueError if bad."""
    if token.isdigit():
        value = int(token) if len(token) <= 4 else spec.high + 1
    elif token in spec.names:
        return spec.names[token]
    elif spec.names:
        raise ValueError(f"unknown {spec.name} name '{token}'")
    else:
        raise ValueError(f"{spec.name} must be a number, got '{token}'")
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{spec.name} must be {spec.low}-{spec.high}")
    return value


def parse_timezone(name: str) -> zoneinfo.ZoneInfo:
    """Return the ZoneInfo for an exact IANA name; raise ScheduleError if unknown or invalid."""
    if not isinstance(name, str) or name in _NOT_IANA_ZONES or name not in _known_zones():
        raise ScheduleError(f"unknown timezone {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):
        raise ScheduleError(f"unknown timezone {name!r}") from None


@cache
def _known_zones() -> frozenset[str]:
    """The zone names installed on this system or in the tzdata package (computed once)."""
    return frozenset(zoneinfo.available_timezones())


# --- wall clock -> UTC --------------------------------------------------------------------


def localize_run_at(run_at: datetime, tz: tzinfo) -> datetime:
    """Return run_at in UTC; naive is wall time in tz (missing -> gap end, repeated -> first)."""
    if run_at.utcoffset() is not None:
        return run_at.astimezone(UTC)
    return _wall_to_utc(run_at, tz)


def _wall_to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """Map a naive wall time in `tz` to UTC: first occurrence if repeated, gap end if missing.

    This map is non-decreasing in `wall`, which the cron iteration below relies on.
    """
    wall = wall.replace(tzinfo=None)
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    if first <= second:
        return first  # unambiguous (equal), or repeated: fold=0 is the earlier pass
    # A missing wall time: PEP 495 reads fold=0 with the pre-gap offset, which lands AFTER the
    # gap's end (02:30 EST = 03:30 EDT), and fold=1 with the post-gap offset, which lands
    # before the transition. The transition instant, the first one after the gap, lies between.
    return offset_change_between(second, first, tz)


def offset_change_between(before: datetime, after: datetime, tz: tzinfo) -> datetime:
    """Binary-search the first whole second in (before, after] whose UTC offset in tz differs."""
    low, high = math.floor(before.timestamp()), math.ceil(after.timestamp())
    old_offset = datetime.fromtimestamp(low, tz).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == old_offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


# --- fire times ---------------------------------------------------------------------------


def iter_fire_times(
    schedule: Schedule, tz: tzinfo, *, after: datetime, anchor: datetime
) -> Iterator[datetime]:
    """Yield the schedule's fire instants (UTC) strictly after `after`, increasing, forever."""
    after, anchor = _aware("after", after), _aware("anchor", anchor)
    if isinstance(schedule, IntervalSchedule):
        return _iter_interval(schedule.seconds, after=after, anchor=anchor)
    if isinstance(schedule, CronSchedule):
        return _iter_cron(schedule.expression, tz, after=after)
    raise TypeError(f"not a schedule: {schedule!r}")


def next_fire_time(
    schedule: Schedule, tz: tzinfo, *, after: datetime, anchor: datetime
) -> datetime:
    """Return the first fire instant (UTC) strictly after `after`."""
    return next(iter_fire_times(schedule, tz, after=after, anchor=anchor))


def next_fire_times(
    schedule: Schedule, tz: tzinfo, *, after: datetime, anchor: datetime, count: int
) -> list[datetime]:
    """Return the first `count` fire instants (UTC) strictly after `after`."""
    if count < 0:
        raise ValueError("count must not be negative")
    fires = iter_fire_times(schedule, tz, after=after, anchor=anchor)
    return list(itertools.islice(fires, count))


def fire_times_between(
    schedule: Schedule,
    tz: tzinfo,
    *,
    after: datetime,
    until: datetime,
    anchor: datetime,
    limit: int,
) -> list[datetime]:
    """Return the latest `limit` fire instants t with after < t <= until, in increasing order."""
    after, anchor = _aware("after", after), _aware("anchor", anchor)
    until = _aware("until", until)
    if limit < 0:
        raise ValueError("limit must not be negative")
    if limit == 0 or until <= after:
        return []
    if isinstance(schedule, IntervalSchedule):
        return _interval_tail(
            schedule.seconds, after=after, until=until, anchor=anchor, limit=limit
        )
    if isinstance(schedule, CronSchedule):
        return _cron_tail(schedule.expression, tz, after=after, until=until, limit=limit)
    raise TypeError(f"not a schedule: {schedule!r}")


def _aware(name: str, value: datetime) -> datetime:
    """Return `value` converted to UTC; raise ValueError if it is naive."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _first_index(seconds: int, *, after: datetime, anchor: datetime) -> int:
    """Smallest k >= 1 with anchor + k*seconds > after (both in UTC)."""
    return max(1, (after - anchor) // timedelta(seconds=seconds) + 1)


def _iter_interval(seconds: int, *, after: datetime, anchor: datetime) -> Iterator[datetime]:
    """Yield anchor + k*seconds for k >= 1, strictly after `after`."""
    # Both are in UTC: adding a timedelta to a datetime in a DST zone would add wall-clock
    # time, not elapsed time.
    step = timedelta(seconds=seconds)
    for k in itertools.count(_first_index(seconds, after=after, anchor=anchor)):
        try:
            yield anchor + k * step
        except OverflowError:
            return


def _interval_tail(
    seconds: int, *, after: datetime, until: datetime, anchor: datetime, limit: int
) -> list[datetime]:
    """The latest `limit` interval fires in (after, until], computed arithmetically."""
    step = timedelta(seconds=seconds)
    last = (until - anchor) // step
    first = max(_first_index(seconds, after=after, anchor=anchor), last - limit + 1)
    return [anchor + k * step for k in range(first, last + 1)]


def _iter_cron(expression: str, tz: tzinfo, *, after: datetime) -> Iterator[datetime]:
    """Yield the cron's fire instants strictly after `after`, walking wall times in `tz`."""
    # Walk naive wall times and map each to UTC. Since that map is non-decreasing, no wall time
    # at or before after's own wall time can map past `after`, so starting there misses nothing;
    # wall times mapping at or before the last fire (gap duplicates, or the first pass of a
    # fold when `after` lies in its second pass) are skipped.
    start = after.astimezone(tz).replace(tzinfo=None)
    cron = croniter(_compile_cron(expression), start)
    last = after
    while True:
        try:
            wall = cron.get_next(datetime)
        except (CroniterBadDateError, OverflowError):
            return
        instant = _wall_to_utc(wall, tz)
        if instant > last:
            last = instant
            yield instant


def _cron_tail(
    expression: str, tz: tzinfo, *, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The latest `limit` cron fires in (after, until], found by walking wall times backwards."""
    local_until = until.astimezone(tz)
    start = local_until.replace(tzinfo=None)
    if local_until.fold:
        # `until` is in the second pass of a fall-back, so wall times later than its own up
        # to the end of the repeated span already fired (first pass) before `until`.
        start += local_until.replace(fold=0).utcoffset() - local_until.utcoffset()
    # get_prev returns wall times strictly before its start; overshooting is harmless
    # because instants after `until` are filtered out.
    cron = croniter(_compile_cron(expression), start + timedelta(minutes=1))
    found: list[datetime] = []
    while len(found) < limit:
        try:
            wall = cron.get_prev(datetime)
        except (CroniterBadDateError, OverflowError):
            break
        instant = _wall_to_utc(wall, tz)
        if instant <= after:
            break  # the map is non-decreasing, so every earlier wall time is earlier still
        if instant <= until and (not found or instant < found[-1]):
            found.append(instant)
    found.reverse()
    return found
