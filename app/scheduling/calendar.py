"""A task's calendar: its timing rules turned into fire times (pure functions, no I/O).

`parse_calendar` builds a `Calendar` from a task's raw fields and validates all of them; every
problem is a `CalendarError` (a ValueError) whose message starts with the field it is about,
e.g. ``exclude[2]: 2026-02-30 is not a date`` or ``quiet_hours.from: expected HH:MM``.

A calendar defines one set of fires, each an instant (UTC) with a kind (`FireKind`). Everything
reads that set through "the fires strictly after t": `Calendar.next_fire`, `iter_fires`,
`fires_between` and `upcoming` agree whatever `t` is. The rules, in the order they apply:

Schedules
    `schedules` is a list of 1 to 10 schedule strings (cron, macro or ``@every``; see
    `app.scheduling.schedules` for their syntax and DST rules). The one-schedule form is a list
    of one. The candidates are the union of their instants, each instant once however many
    schedules name it (two crons meeting at the end of a DST gap fire once).

Interval anchor
    Without `start_at` an ``@every`` schedule counts from `anchor` (the task's creation time),
    as a lone schedule always has: ``anchor + k * interval`` for ``k >= 1``. With `start_at` it
    counts from `start_at`, which itself fires: ``start_at + k * interval`` for ``k >= 0``
    ("every 2h from start_at"). Cron schedules ignore both.

Start and end
    No candidate before `start_at` or after `end_at` counts; both bounds are inclusive (an
    instant equal to `end_at` fires). Naive values are wall times in the task's timezone. Both
    must lie between 1970-01-01 and 9000-01-01 UTC, and `end_at` must not precede `start_at`.

Exclusions
    `exclude` lists at most 100 entries (duplicates are merged): dates ``YYYY-MM-DD`` and yearly
    dates ``--MM-DD`` (ISO 8601's recurring form). Nothing fires on an excluded date, read in the
    task's timezone: a candidate whose local date matches is dropped, not deferred, and a
    deferred fire whose local date matches is dropped as well. ``--02-29`` only ever matches the
    29th of February of leap years.

Quiet hours
    ``{"from": "HH:MM", "to": "HH:MM", "mode": "skip" | "silent" | "defer"}``, all three keys
    required, times ``00:00``-``23:59`` on the wall clock of the task's timezone. The window is
    [from, to) and spans midnight when from > to (22:00 -> 07:00); from == to is refused. A
    candidate inside the window is dropped (`skip`), kept and marked SILENT (`silent`), or moved
    to the window's end and marked DEFERRED (`defer`). The window's end is the first instant
    after the candidate at which the wall clock reads `to`: when `to` does not exist that day
    (spring-forward) the first instant after the gap; when it occurs twice (fall-back) its
    first occurrence, or the second if the candidate lies after the first. Deferred fires
    landing on the same instant are one fire (`deferred_from` is the earliest candidate it
    stands for); a deferred fire landing on a candidate of the schedules is that candidate's
    own fire, NORMAL, since it would have fired anyway. A deferred fire after `end_at` is
    dropped, and a deferred fire is not checked against the window again. A deferred fire
    belongs to the set even when its candidate lies before `t`: at 23:00 the next fire of a
    22:30 candidate deferred to 07:00 is that 07:00 fire.

Giving up
    Rules can leave nothing to fire (a cron inside a skipped window, an excluded yearly date).
    Iteration therefore stops (`next_fire` returns None, `iter_fires` ends) after 1,000
    candidates in a row have given no fire, a skipped window or an excluded day counting as
    one, or once it looks more than 100 years past its start: a calendar this sparse is treated
    as one that never fires again. `fires_between` covers its whole range and never gives up.

Cost
    A calendar of one schedule and no other rule is "plain": its methods call the functions of
    `app.scheduling.schedules` directly. Otherwise skipped windows and excluded days are jumped
    over rather than walked through, so a dense schedule costs a few steps per night.
"""

import heapq
import itertools
import re
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from app.scheduling.schedules import (
    IntervalSchedule,
    Schedule,
    ScheduleError,
    fire_times_between,
    iter_fire_times,
    localize_run_at,
    offset_change_between,
    parse_schedule,
    parse_timezone,
)

__all__ = [
    "Calendar",
    "CalendarError",
    "Exclusions",
    "Fire",
    "FireKind",
    "QuietHours",
    "QuietMode",
    "parse_calendar",
    "parse_exclude",
    "parse_quiet_hours",
]

MAX_SCHEDULES = 10
MAX_SCHEDULE_LENGTH = 200
MAX_TIMEZONE_LENGTH = 64
MAX_EXCLUDE = 100
MAX_DROPPED = 1000
HORIZON = timedelta(days=36525)  # 100 years
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

_TICK = timedelta(microseconds=1)
_NEVER = datetime.max.replace(tzinfo=UTC)
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_YEARLY_RE = re.compile(r"--([0-9]{2})-([0-9]{2})")
_CLOCK_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_QUIET_KEYS = ("from", "to", "mode")


class CalendarError(ScheduleError):
    """A timing field is invalid; str() is ``"<field>: <reason>"``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        """The field, then what is wrong with it."""
        return f"{self.field}: {self.reason}"


class FireKind(StrEnum):
    """How a fire goes out: as scheduled, without notification, or late after quiet hours."""

    NORMAL = "normal"
    SILENT = "silent"
    DEFERRED = "deferred"


class QuietMode(StrEnum):
    """What quiet hours do to a candidate inside the window."""

    SKIP = "skip"
    SILENT = "silent"
    DEFER = "defer"


_MODES = frozenset(mode.value for mode in QuietMode)


@dataclass(frozen=True)
class Fire:
    """One fire at `at` (UTC); a deferred one names the earliest candidate it stands for."""

    at: datetime
    kind: FireKind = FireKind.NORMAL
    deferred_from: datetime | None = None


@dataclass(frozen=True)
class Exclusions:
    """Excluded local dates: exact `dates` and `yearly` (month, day) pairs."""

    dates: frozenset[date] = frozenset()
    yearly: frozenset[tuple[int, int]] = frozenset()

    def __bool__(self) -> bool:
        """True when anything is excluded."""
        return bool(self.dates or self.yearly)

    def matches(self, day: date) -> bool:
        """Whether nothing may fire on the local date `day`."""
        return day in self.dates or (day.month, day.day) in self.yearly


@dataclass(frozen=True)
class QuietHours:
    """The wall-clock window [start, end) (spanning midnight if start > end) and its mode."""

    start: time
    end: time
    mode: QuietMode

    def contains(self, wall: time) -> bool:
        """Whether the wall-clock time `wall` lies inside the window."""
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@dataclass(frozen=True)
class Calendar:
    """A task's validated timing rules; build it with `parse_calendar`. Datetimes are UTC."""

    schedules: tuple[Schedule, ...]
    tz: tzinfo
    anchor: datetime
    start_at: datetime | None = None
    end_at: datetime | None = None
    exclude: Exclusions = field(default_factory=Exclusions)
    quiet: QuietHours | None = None
    _anchors: tuple[datetime, ...] = field(init=False, repr=False, compare=False)
    _plain: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Precompute each schedule's anchor and whether the calendar is plain."""
        anchors = tuple(self._anchor_for(schedule) for schedule in self.schedules)
        object.__setattr__(self, "_anchors", anchors)
        plain = len(self.schedules) == 1 and self.start_at is None and self.end_at is None
        object.__setattr__(self, "_plain", plain and not self.exclude and self.quiet is None)

    def _anchor_for(self, schedule: Schedule) -> datetime:
        """The anchor handed to the schedule functions (start_at itself fires for intervals)."""
        if isinstance(schedule, IntervalSchedule) and self.start_at is not None:
            return self.start_at - timedelta(seconds=schedule.seconds)
        return self.anchor

    # --- reading the fires ------------------------------------------------------------------

    def next_fire(self, after: datetime) -> Fire | None:
        """The first fire strictly after `after`, or None when none is left."""
        if self._plain:
            instants = iter_fire_times(self.schedules[0], self.tz, after=after, anchor=self.anchor)
            instant = next(instants, None)
            return None if instant is None else Fire(instant)
        return next(self.iter_fires(after), None)

    def iter_fires(self, after: datetime) -> Iterator[Fire]:
        """Yield the fires strictly after `after`, increasing, until none are left."""
        if self._plain:
            schedule, anchor = self.schedules[0], self.anchor
            return map(Fire, iter_fire_times(schedule, self.tz, after=after, anchor=anchor))
        after = _utc("after", after)
        start = self._scan_start(after)
        last = _NEVER if self.end_at is None else self.end_at
        fires = self._walk(start, min(last, _far(start)), bounded=True)
        return (fire for fire in fires if fire.at > after)

    def fires_between(self, after: datetime, until: datetime, limit: int) -> list[Fire]:
        """The latest `limit` fires f with after < f.at <= until, in increasing order."""
        if limit < 0:
            raise ValueError("limit must not be negative")
        if self._plain:
            schedule, anchor = self.schedules[0], self.anchor
            found = fire_times_between(
                schedule, self.tz, after=after, until=until, anchor=anchor, limit=limit
            )
            return [Fire(instant) for instant in found]
        after, until = _utc("after", after), _utc("until", until)
        if self.end_at is not None:
            until = min(until, self.end_at)
        if limit == 0 or until <= after:
            return []
        lower = self._tail_guess(after, until, limit)
        while True:
            fires = deque(self._fires_in(lower, until), maxlen=limit)
            if len(fires) == limit or lower <= after:
                return list(fires)
            span = (until - lower) * 2
            lower = after if span >= until - after else until - span

    def upcoming(
        self, after: datetime, count: int, *, runs_done: int = 0, max_runs: int | None = None
    ) -> list[Fire]:
        """The next `count` fires after `after`, at most `max_runs - runs_done` of them."""
        if count < 0 or runs_done < 0:
            raise ValueError("count and runs_done must not be negative")
        if max_runs is not None:
            count = min(count, max(0, max_runs - runs_done))
        return list(itertools.islice(self.iter_fires(after), count))

    # --- the walk -----------------------------------------------------------------------------

    def _union(self, after: datetime) -> Iterator[datetime]:
        """The schedules' instants strictly after `after`, increasing, each once."""
        streams = [
            iter_fire_times(schedule, self.tz, after=after, anchor=anchor)
            for schedule, anchor in zip(self.schedules, self._anchors, strict=True)
        ]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        previous = None
        for instant in merged:
            if instant != previous:
                previous = instant
                yield instant

    def _scan_start(self, after: datetime) -> datetime:
        """Where candidates are read from so that every fire after `after` is found."""
        start, quiet = after, self.quiet
        if quiet is not None and quiet.mode is QuietMode.DEFER:
            local = after.astimezone(self.tz)
            if quiet.contains(local.time()):  # deferrals from earlier in the window land later
                start = min(start, _window_start(quiet, local) - _TICK)
        if self.start_at is not None:
            start = max(start, self.start_at - _TICK)
        return start

    def _fires_in(self, lower: datetime, until: datetime) -> Iterator[Fire]:
        """Every fire f with lower < f.at <= until, increasing."""
        fires = self._walk(self._scan_start(lower), until, bounded=False)
        return (fire for fire in fires if lower < fire.at <= until)

    def _tail_guess(self, after: datetime, until: datetime, limit: int) -> datetime:
        """A lower bound above which the schedules alone name `limit` instants, or `after`."""
        low = after if self.start_at is None else max(after, self.start_at - _TICK)
        instants: set[datetime] = set()
        for schedule, anchor in zip(self.schedules, self._anchors, strict=True):
            instants.update(
                fire_times_between(
                    schedule, self.tz, after=low, until=until, anchor=anchor, limit=limit
                )
            )
        if len(instants) < limit:
            return after
        return sorted(instants)[-limit] - _TICK

    def _walk(self, start: datetime, last: datetime, *, bounded: bool) -> Iterator[Fire]:
        """The fires made by candidates in (start, last], increasing (see 'Giving up')."""
        cursor = _Cursor(self, start)
        pending: dict[datetime, Fire] = {}
        dropped = 0
        while not bounded or dropped < MAX_DROPPED:
            instant = cursor.advance()
            if instant is None or instant > last:
                break
            released = _release(pending, before=instant)
            fire = self._place(instant, cursor, pending)
            if fire is not None:
                pending.pop(fire.at, None)  # a deferral landing on a candidate is that candidate
                released.append(fire)
            dropped = 0 if released else dropped + 1
            yield from released
        yield from _release(pending, before=None)

    def _place(
        self, instant: datetime, cursor: "_Cursor", pending: dict[datetime, Fire]
    ) -> Fire | None:
        """The fire `instant` makes now, or None when dropped or deferred into `pending`."""
        local = instant.astimezone(self.tz)
        if self.exclude.matches(local.date()):
            cursor.skip_to(_wall_instant(local.date() + timedelta(days=1), time(0), self.tz))
            return None
        quiet = self.quiet
        if quiet is None or not quiet.contains(local.time()):
            return Fire(instant)
        if quiet.mode is QuietMode.SILENT:
            return Fire(instant, FireKind.SILENT)
        end = _window_end(quiet, instant, local)
        cursor.skip_to(_stretch_end(quiet, instant, local, end))
        if quiet.mode is QuietMode.DEFER and self._may_fire_at(end):
            pending.setdefault(end, Fire(end, FireKind.DEFERRED, deferred_from=instant))
        return None

    def _may_fire_at(self, instant: datetime) -> bool:
        """Whether a deferred fire at `instant` is within end_at and off the excluded dates."""
        if self.end_at is not None and instant > self.end_at:
            return False
        return not self.exclude.matches(instant.astimezone(self.tz).date())


class _Cursor:
    """The union of a calendar's schedule instants, read in order, able to jump ahead."""

    def __init__(self, calendar: Calendar, after: datetime) -> None:
        """Start reading the instants strictly after `after`."""
        self._calendar = calendar
        self._restart(after)

    def _restart(self, after: datetime) -> None:
        """Read the instants strictly after `after` from now on."""
        self._instants = self._calendar._union(after)
        self._held: datetime | None = None
        self.position = after

    def advance(self) -> datetime | None:
        """The next instant, or None when there is none."""
        instant, self._held = self._held, None
        if instant is None:
            instant = next(self._instants, None)
        if instant is not None:
            self.position = instant
        return instant

    def skip_to(self, instant: datetime) -> None:
        """Make the following instants those at or after `instant`; never moves back."""
        floor = instant - _TICK
        if floor <= self.position:
            return
        if self._held is None:
            self._held = next(self._instants, None)
        if self._held is not None and self._held <= floor:
            self._restart(floor)  # cheaper than walking through a dense schedule


def _release(pending: dict[datetime, Fire], *, before: datetime | None) -> list[Fire]:
    """Remove and return, in order, the pending fires earlier than `before` (all if None)."""
    due = sorted(at for at in pending if before is None or at < before)
    return [pending.pop(at) for at in due]


# --- wall clock -------------------------------------------------------------------------------


def _wall_instant(day: date, wall: time, tz: tzinfo) -> datetime:
    """The instant (UTC) the wall clock reads `wall` on `day`: gap end, or first occurrence."""
    return localize_run_at(datetime.combine(day, wall), tz)


def _window_start(quiet: QuietHours, local: datetime) -> datetime:
    """Where the quiet window holding the aware `local` (inside it) began."""
    day = local.date()
    if quiet.start > quiet.end and local.time() < quiet.end:
        day -= timedelta(days=1)
    return _wall_instant(day, quiet.start, local.tzinfo)


def _window_end(quiet: QuietHours, instant: datetime, local: datetime) -> datetime:
    """The first instant after `instant` (inside the window) at which the wall reads `to`."""
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)
    first = _wall_instant(day, quiet.end, local.tzinfo)
    if first > instant:
        return first
    # `to` is repeated and `instant` lies after its first occurrence: the second one.
    wall = datetime.combine(day, quiet.end, tzinfo=local.tzinfo).replace(fold=1)
    return wall.astimezone(UTC)


def _stretch_end(quiet: QuietHours, instant: datetime, local: datetime, end: datetime) -> datetime:
    """Where the wall clock first leaves the window after `instant`: `end`, or a fall-back."""
    tz = local.tzinfo
    if end.astimezone(tz).utcoffset() == local.utcoffset():
        return end  # no offset change in between: zones do not change twice within a day
    change = offset_change_between(instant, end, tz)
    return end if quiet.contains(change.astimezone(tz).time()) else change


def _far(start: datetime) -> datetime:
    """The instant HORIZON after `start`, or the end of time."""
    try:
        return start + HORIZON
    except OverflowError:
        return _NEVER


def _utc(name: str, value: object) -> datetime:
    """An aware datetime converted to UTC; CalendarError naming `name` otherwise."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise CalendarError(name, "expected a timezone-aware datetime")
    return value.astimezone(UTC)


# --- parsing ----------------------------------------------------------------------------------


def parse_calendar(
    schedules: object,
    timezone: object,
    *,
    anchor: datetime,
    start_at: object = None,
    end_at: object = None,
    exclude: object = None,
    quiet_hours: object = None,
) -> Calendar:
    """Validate a task's raw timing fields into a Calendar; raise CalendarError naming the field."""
    tz = _parse_timezone(timezone)
    start = _parse_bound("start_at", start_at, tz)
    end = _parse_bound("end_at", end_at, tz)
    if start is not None and end is not None and end < start:
        raise CalendarError("end_at", "must not be before start_at")
    return Calendar(
        schedules=_parse_schedules(schedules),
        tz=tz,
        anchor=_utc("anchor", anchor),
        start_at=start,
        end_at=end,
        exclude=parse_exclude(exclude),
        quiet=parse_quiet_hours(quiet_hours),
    )


def _show(value: object) -> str:
    """A short printable rendering of a bad value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _parse_timezone(name: object) -> tzinfo:
    """The IANA zone `name`; CalendarError on `timezone` otherwise."""
    if not isinstance(name, str):
        raise CalendarError("timezone", f"expected a string, got {type(name).__name__}")
    if len(name) > MAX_TIMEZONE_LENGTH:
        raise CalendarError("timezone", f"unknown timezone {_show(name)}")
    try:
        return parse_timezone(name)
    except ScheduleError:
        raise CalendarError("timezone", f"unknown timezone {_show(name)}") from None


def _parse_bound(name: str, value: object, tz: tzinfo) -> datetime | None:
    """start_at or end_at in UTC (naive is wall time in tz); CalendarError naming it."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise CalendarError(name, f"expected a datetime, got {type(value).__name__}")
    try:
        instant = localize_run_at(value, tz)
    except OverflowError:
        instant = None
    if instant is None or not EARLIEST <= instant <= LATEST:
        raise CalendarError(name, "must lie between 1970-01-01 and 9000-01-01")
    return instant


def _parse_schedules(value: object) -> tuple[Schedule, ...]:
    """1 to MAX_SCHEDULES schedule strings, parsed; ones firing alike are kept once."""
    if not isinstance(value, list | tuple):
        raise CalendarError("schedules", "expected a list of schedule strings")
    if not value:
        raise CalendarError("schedules", "expected at least one schedule")
    if len(value) > MAX_SCHEDULES:
        raise CalendarError("schedules", f"at most {MAX_SCHEDULES} schedules, got {len(value)}")
    distinct: dict[object, Schedule] = {}
    for index, text in enumerate(value):
        schedule = _parse_one_schedule(f"schedules[{index}]", text)
        key = schedule.seconds if isinstance(schedule, IntervalSchedule) else schedule.expression
        distinct.setdefault(key, schedule)
    return tuple(distinct.values())


def _parse_one_schedule(name: str, text: object) -> Schedule:
    """One schedule string; CalendarError naming its position."""
    if not isinstance(text, str):
        raise CalendarError(name, f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_SCHEDULE_LENGTH:
        raise CalendarError(name, f"longer than {MAX_SCHEDULE_LENGTH} characters")
    if not text.isprintable() and not all(c.isprintable() or c in " \t\r\n" for c in text):
        raise CalendarError(name, "contains a control character")
    try:
        return parse_schedule(text)
    except ScheduleError as exc:
        raise CalendarError(name, str(exc)) from None


def parse_exclude(value: object) -> Exclusions:
    """At most MAX_EXCLUDE ``YYYY-MM-DD`` / ``--MM-DD`` strings; CalendarError naming the entry."""
    if value is None:
        return Exclusions()
    if not isinstance(value, list | tuple):
        raise CalendarError("exclude", "expected a list of dates")
    if len(value) > MAX_EXCLUDE:
        raise CalendarError("exclude", f"at most {MAX_EXCLUDE} dates, got {len(value)}")
    dates: set[date] = set()
    yearly: set[tuple[int, int]] = set()
    for index, entry in enumerate(value):
        parsed = _parse_excluded(f"exclude[{index}]", entry)
        if isinstance(parsed, date):
            dates.add(parsed)
        else:
            yearly.add(parsed)
    return Exclusions(frozenset(dates), frozenset(yearly))


def _parse_excluded(name: str, entry: object) -> date | tuple[int, int]:
    """One exclusion: a date, or a yearly (month, day); CalendarError naming it."""
    if not isinstance(entry, str):
        raise CalendarError(name, f"expected a string, got {type(entry).__name__}")
    if match := _DATE_RE.fullmatch(entry):
        year: int | None = int(match[1])
        month, day = int(match[2]), int(match[3])
    elif match := _YEARLY_RE.fullmatch(entry):
        year, month, day = None, int(match[1]), int(match[2])
    else:
        raise CalendarError(name, f"expected YYYY-MM-DD or --MM-DD, got {_show(entry)}")
    try:
        found = date(2000 if year is None else year, month, day)  # 2000 has a Feb 29
    except ValueError:
        raise CalendarError(name, f"{entry} is not a date") from None
    return (month, day) if year is None else found


def parse_quiet_hours(value: object) -> QuietHours | None:
    """``{"from": "HH:MM", "to": "HH:MM", "mode": ...}`` or None; CalendarError naming the key."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise CalendarError("quiet_hours", "expected an object with from, to and mode")
    for key in value:
        if key not in _QUIET_KEYS:
            raise CalendarError("quiet_hours", f"unknown key {_show(key)}")
    for key in _QUIET_KEYS:
        if key not in value:
            raise CalendarError(f"quiet_hours.{key}", "required")
    start = _parse_clock("quiet_hours.from", value["from"])
    end = _parse_clock("quiet_hours.to", value["to"])
    if start == end:
        raise CalendarError("quiet_hours", "from and to must differ")
    return QuietHours(start, end, _parse_mode(value["mode"]))


def _parse_clock(name: str, value: object) -> time:
    """A wall-clock ``HH:MM`` (00:00 to 23:59); CalendarError naming the key."""
    match = _CLOCK_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarError(name, f"expected HH:MM (00:00 to 23:59), got {_show(value)}")
    return time(int(match[1]), int(match[2]))


def _parse_mode(value: object) -> QuietMode:
    """A quiet-hours mode name; CalendarError on `quiet_hours.mode` otherwise."""
    if isinstance(value, str) and value in _MODES:
        return QuietMode(value)
    choices = ", ".join(mode.value for mode in QuietMode)
    raise CalendarError("quiet_hours.mode", f"expected one of {choices}, got {_show(value)}")
