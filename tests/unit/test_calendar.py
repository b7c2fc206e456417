"""A task's calendar: union of schedules, start/end, exclusions, quiet hours (no database).

Reference calendar: 2026-01-01 is a Thursday. America/New_York 2026: DST starts 2026-03-08
(02:00 EST -> 03:00 EDT at 07:00Z) and ends 2026-11-01 (02:00 EDT -> 01:00 EST at 06:00Z).
Europe/Berlin: DST starts 2026-03-29 and 2027-03-28 (02:00 CET -> 03:00 CEST at 01:00Z) and
ends 2026-10-25 (03:00 CEST -> 02:00 CET at 01:00Z). America/Santiago 2026: DST ends
2026-04-05 at 03:00Z (00:00 -> 23:00 the day before) and starts 2026-09-06 at 04:00Z
(00:00 -> 01:00). Australia/Lord_Howe shifts by 30 minutes.
"""

import contextlib
import itertools
import random
import string
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.scheduling.calendar import (
    MAX_EXCLUDE,
    Calendar,
    CalendarError,
    Fire,
    FireKind,
    QuietMode,
    parse_calendar,
)
from app.scheduling.schedules import (
    IntervalSchedule,
    fire_times_between,
    iter_fire_times,
    next_fire_time,
    parse_schedule,
)

N, S, D = FireKind.NORMAL, FireKind.SILENT, FireKind.DEFERRED
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def calendar(schedules, timezone: str = "UTC", **fields) -> Calendar:
    return parse_calendar(schedules, timezone, anchor=fields.pop("anchor", ANCHOR), **fields)


def quiet(start: str, end: str, mode: str) -> dict[str, str]:
    return {"from": start, "to": end, "mode": mode}


def runs(cal: Calendar, after: datetime, count: int) -> list[tuple[datetime, FireKind]]:
    return [(fire.at, fire.kind) for fire in cal.upcoming(after, count)]


# --- union --------------------------------------------------------------------------------


def test_union_fires_an_instant_named_twice_once() -> None:
    cal = calendar(["0 9 * * *", "0 9,17 * * *"])
    assert runs(cal, utc(2026, 1, 1), 4) == [
        (utc(2026, 1, 1, 9), N),
        (utc(2026, 1, 1, 17), N),
        (utc(2026, 1, 2, 9), N),
        (utc(2026, 1, 2, 17), N),
    ]


def test_equal_schedules_are_merged() -> None:
    cal = calendar(["@daily", "0 0 * * *", "@midnight"])
    assert cal.schedules == (parse_schedule("@daily"),)
    assert [f.at for f in cal.upcoming(utc(2026, 1, 1), 2)] == [utc(2026, 1, 2), utc(2026, 1, 3)]


def test_mondays_at_nine_and_fridays_at_five_in_one_task() -> None:
    cal = calendar(["0 9 * * MON", "0 17 * * FRI"], "Europe/Berlin")
    assert [f.at for f in cal.upcoming(utc(2026, 3, 1), 4)] == [
        utc(2026, 3, 2, 8),  # Monday 09:00 CET
        utc(2026, 3, 6, 16),  # Friday 17:00 CET
        utc(2026, 3, 9, 8),
        utc(2026, 3, 13, 16),
    ]
    # Across the spring-forward of Sunday 2026-03-29 the wall times stay put.
    assert [f.at for f in cal.upcoming(utc(2026, 3, 27), 2)] == [
        utc(2026, 3, 27, 16),
        utc(2026, 3, 30, 7),  # Monday 09:00 CEST
    ]


def test_interval_and_cron_meeting_fire_once() -> None:
    cal = calendar(["@every 30m", "@hourly"])
    assert [f.at for f in cal.upcoming(utc(2026, 1, 1), 3)] == [
        utc(2026, 1, 1, 0, 30),
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 1, 30),
    ]


@pytest.mark.parametrize(
    ("timezone", "schedules", "after", "expected"),
    [
        # New York spring-forward: 02:15 and 02:30 do not exist and fire at 03:00 EDT, with 03:00.
        (
            "America/New_York",
            ["30 2 * * *", "0 3 * * *", "15 2 * * *"],
            utc(2026, 3, 8, 5),
            [utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 15), utc(2026, 3, 9, 6, 30)],
        ),
        # Berlin spring-forward 2027: 02:30 CET does not exist; 03:00 CEST is 01:00Z.
        (
            "Europe/Berlin",
            ["30 2 * * *", "0 3 * * *"],
            utc(2027, 3, 27, 23),
            [utc(2027, 3, 28, 1), utc(2027, 3, 29, 0, 30), utc(2027, 3, 29, 1)],
        ),
        # Berlin fall-back: 02:00 and 02:30 fire once, in CEST; nothing in the second pass.
        (
            "Europe/Berlin",
            ["30 2 * * *", "0 * * * *"],
            utc(2026, 10, 24, 23),
            [utc(2026, 10, 25, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2)],
        ),
    ],
)
def test_union_at_dst_changes_fires_each_instant_once(
    timezone: str, schedules: list[str], after: datetime, expected: list[datetime]
) -> None:
    cal = calendar(schedules, timezone)
    assert [f.at for f in cal.upcoming(after, len(expected))] == expected


# --- start_at, end_at and the interval anchor ---------------------------------------------


def test_start_at_and_end_at_are_inclusive() -> None:
    cal = calendar(["@hourly"], start_at=utc(2026, 1, 1, 10), end_at=utc(2026, 1, 1, 13))
    expected = [utc(2026, 1, 1, hour) for hour in (10, 11, 12, 13)]
    assert [f.at for f in cal.upcoming(utc(2026, 1, 1), 10)] == expected
    assert cal.next_fire(utc(2026, 1, 1, 12, 30)) == Fire(utc(2026, 1, 1, 13))
    assert cal.next_fire(utc(2026, 1, 1, 13)) is None
    assert list(cal.iter_fires(utc(2026, 1, 1, 13))) == []
    # Across end_at: the range is cut there.
    assert [f.at for f in cal.fires_between(utc(2026, 1, 1, 11), utc(2026, 1, 2), 10)] == [
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 13),
    ]


def test_naive_start_and_end_are_wall_times_in_the_timezone() -> None:
    cal = calendar(
        ["@hourly"],
        "Europe/Berlin",
        start_at=datetime(2026, 1, 1, 10),
        end_at=datetime(2026, 1, 1, 11),
    )
    assert cal.start_at == utc(2026, 1, 1, 9)
    assert cal.end_at == utc(2026, 1, 1, 10)
    assert [f.at for f in cal.upcoming(utc(2026, 1, 1), 5)] == [
        utc(2026, 1, 1, 9),
        utc(2026, 1, 1, 10),
    ]


def test_end_at_equal_to_start_at_allows_one_fire() -> None:
    cal = calendar(["@hourly"], start_at=utc(2026, 1, 1, 10), end_at=utc(2026, 1, 1, 10))
    assert cal.upcoming(utc(2026, 1, 1), 5) == [Fire(utc(2026, 1, 1, 10))]


def test_interval_counts_from_the_anchor_without_start_at() -> None:
    cal = calendar(["@every 2h"], anchor=utc(2026, 1, 1, 0, 10))
    assert [f.at for f in cal.upcoming(utc(2026, 1, 1), 2)] == [
        utc(2026, 1, 1, 2, 10),
        utc(2026, 1, 1, 4, 10),
    ]


def test_interval_counts_from_start_at_which_fires_itself() -> None:
    cal = calendar(["@every 2h"], anchor=utc(2026, 1, 1, 0, 10), start_at=utc(2026, 1, 1, 9))
    expected = [utc(2026, 1, 1, 9), utc(2026, 1, 1, 11), utc(2026, 1, 1, 13)]
    assert [f.at for f in cal.upcoming(utc(2026, 1, 1), 3)] == expected
    assert cal.next_fire(utc(2026, 1, 1, 9)) == Fire(utc(2026, 1, 1, 11))
    assert cal.next_fire(utc(2026, 1, 1, 10)) == Fire(utc(2026, 1, 1, 11))


# --- exclusions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "expected_days"),
    [(2027, [(2, 28), (3, 1)]), (2028, [(2, 28), (3, 1)])],
)
def test_yearly_leap_day_is_excluded_only_when_it_exists(year, expected_days) -> None:
    cal = calendar(["0 12 * * *"], exclude=["--02-29"])
    fires = cal.upcoming(utc(year, 2, 27, 13), 2)
    assert [f.at for f in fires] == [utc(year, m, d, 12) for m, d in expected_days]
    assert cal.next_fire(utc(2028, 2, 28, 12)) == Fire(utc(2028, 3, 1, 12))
    # Without the exclusion 2028 does have its Feb 29; 2027 does not.
    plain = calendar(["0 12 * * *"], exclude=["--02-28"])
    assert plain.next_fire(utc(2028, 2, 27, 13)) == Fire(utc(2028, 2, 29, 12))
    assert plain.next_fire(utc(2027, 2, 27, 13)) == Fire(utc(2027, 3, 1, 12))


def test_leap_day_schedule_skips_to_the_next_leap_year() -> None:
    cal = calendar(["0 12 29 2 *"], exclude=["2028-02-29"])
    assert cal.next_fire(utc(2026, 1, 1)) == Fire(utc(2032, 2, 29, 12))


def test_exclusion_by_date_and_by_yearly_date() -> None:
    cal = calendar(["0 9 * * *"], exclude=["2026-12-24", "--12-25", "--12-25"])
    assert len(cal.exclude.yearly) == 1
    assert [f.at for f in cal.upcoming(utc(2026, 12, 23, 10), 2)] == [
        utc(2026, 12, 26, 9),
        utc(2026, 12, 27, 9),
    ]
    assert [f.at for f in cal.upcoming(utc(2027, 12, 23, 10), 2)] == [
        utc(2027, 12, 24, 9),  # the date exclusion was 2026's only
        utc(2027, 12, 26, 9),
    ]


def test_exclusion_reads_the_local_date() -> None:
    # 03:00Z is 22:00 EST the day before.
    cal = calendar(
        ["@every 1d"], "America/New_York", anchor=utc(2026, 12, 1, 3), exclude=["--12-25"]
    )
    assert [f.at for f in cal.upcoming(utc(2026, 12, 24, 4), 3)] == [
        utc(2026, 12, 25, 3),  # Dec 24 22:00 local
        utc(2026, 12, 27, 3),  # Dec 26 22:00 local; Dec 25 22:00 was dropped
        utc(2026, 12, 28, 3),
    ]


def test_excluded_day_at_a_missing_midnight() -> None:
    # Santiago's 2026-09-06 starts at 01:00 (-03); every fire that day is dropped.
    cal = calendar(["*/30 * * * *"], "America/Santiago", exclude=["2026-09-05"])
    fires = cal.upcoming(utc(2026, 9, 5, 3, 45), 2)  # 23:45 -04 on Sep 4
    assert [f.at for f in fires] == [utc(2026, 9, 6, 4), utc(2026, 9, 6, 4, 30)]


def test_excluded_day_repeated_by_a_fall_back_at_midnight() -> None:
    # Santiago 2026-04-05 00:00 (-03) falls back to Apr 4 23:00 (-04): Apr 4 ends twice.
    cal = calendar(["*/30 * * * *"], "America/Santiago", exclude=["2026-04-04"])
    fires = cal.upcoming(utc(2026, 4, 4, 2), 2)  # Apr 3 23:00 -03
    assert [f.at for f in fires] == [utc(2026, 4, 4, 2, 30), utc(2026, 4, 5, 4)]


# --- quiet hours --------------------------------------------------------------------------


def test_quiet_hours_skip_across_midnight() -> None:
    cal = calendar(["0 */2 * * *"], quiet_hours=quiet("22:00", "07:00", "skip"))
    assert runs(cal, utc(2026, 1, 1, 19, 30), 3) == [
        (utc(2026, 1, 1, 20), N),
        (utc(2026, 1, 2, 8), N),
        (utc(2026, 1, 2, 10), N),
    ]


def test_quiet_hours_silent_across_midnight() -> None:
    cal = calendar(["0 */2 * * *"], quiet_hours=quiet("22:00", "07:00", "silent"))
    assert runs(cal, utc(2026, 1, 1, 19, 30), 7) == [
        (utc(2026, 1, 1, 20), N),
        (utc(2026, 1, 1, 22), S),  # the window includes its start
        (utc(2026, 1, 2, 0), S),
        (utc(2026, 1, 2, 2), S),
        (utc(2026, 1, 2, 4), S),
        (utc(2026, 1, 2, 6), S),
        (utc(2026, 1, 2, 8), N),
    ]


def test_quiet_hours_defer_across_midnight_collapses_the_night() -> None:
    cal = calendar(["0 */2 * * *"], quiet_hours=quiet("22:00", "07:00", "defer"))
    assert cal.upcoming(utc(2026, 1, 1, 19, 30), 3) == [
        Fire(utc(2026, 1, 1, 20)),
        Fire(utc(2026, 1, 2, 7), D, deferred_from=utc(2026, 1, 1, 22)),
        Fire(utc(2026, 1, 2, 8)),
    ]


def test_deferred_fire_is_found_from_inside_the_window() -> None:
    cal = calendar(["30 22 * * *"], quiet_hours=quiet("22:00", "07:00", "defer"))
    deferred = Fire(utc(2026, 1, 2, 7), D, deferred_from=utc(2026, 1, 1, 22, 30))
    for after in (utc(2026, 1, 1, 22, 30), utc(2026, 1, 1, 23), utc(2026, 1, 2, 6, 59)):
        assert cal.next_fire(after) == deferred
    assert cal.next_fire(utc(2026, 1, 2, 7)) == Fire(
        utc(2026, 1, 3, 7), D, deferred_from=utc(2026, 1, 2, 22, 30)
    )


def test_window_end_is_outside_the_window_and_a_deferral_there_is_normal() -> None:
    cal = calendar(["@hourly"], quiet_hours=quiet("22:00", "07:00", "defer"))
    assert runs(cal, utc(2026, 1, 1, 21, 30), 3) == [
        (utc(2026, 1, 2, 7), N),  # the night's fires stand in the 07:00 one
        (utc(2026, 1, 2, 8), N),
        (utc(2026, 1, 2, 9), N),
    ]


def test_window_within_a_day() -> None:
    cal = calendar(["*/20 * * * *"], quiet_hours=quiet("12:00", "13:00", "defer"))
    assert cal.upcoming(utc(2026, 1, 1, 11, 30), 3) == [
        Fire(utc(2026, 1, 1, 11, 40)),
        Fire(utc(2026, 1, 1, 13)),
        Fire(utc(2026, 1, 1, 13, 20)),
    ]
    odd = calendar(["7,27,47 * * * *"], quiet_hours=quiet("12:00", "13:00", "defer"))
    assert odd.upcoming(utc(2026, 1, 1, 11, 30), 3) == [
        Fire(utc(2026, 1, 1, 11, 47)),
        Fire(utc(2026, 1, 1, 13), D, deferred_from=utc(2026, 1, 1, 12, 7)),
        Fire(utc(2026, 1, 1, 13, 7)),
    ]


@pytest.mark.parametrize(
    ("timezone", "schedule", "window", "after", "expected"),
    [
        # Berlin 2027-03-28: 02:30 does not exist; the window ends at 03:00 CEST (01:00Z).
        (
            "Europe/Berlin",
            "0 23 * * *",
            ("22:00", "02:30"),
            utc(2027, 3, 27, 12),
            [
                Fire(utc(2027, 3, 28, 1), D, deferred_from=utc(2027, 3, 27, 22)),
                Fire(utc(2027, 3, 29, 0, 30), D, deferred_from=utc(2027, 3, 28, 21)),
            ],
        ),
        # New York 2026-03-08: the window 01:00-02:30 ends at 03:00 EDT (07:00Z).
        (
            "America/New_York",
            "30 1 * * *",
            ("01:00", "02:30"),
            utc(2026, 3, 8),
            [
                Fire(utc(2026, 3, 8, 7), D, deferred_from=utc(2026, 3, 8, 6, 30)),
                Fire(utc(2026, 3, 9, 6, 30), D, deferred_from=utc(2026, 3, 9, 5, 30)),
            ],
        ),
        # New York 2026-11-01: 01:30 happens twice; the window ends at the first (05:30Z).
        (
            "America/New_York",
            "0 23 * * *",
            ("22:00", "01:30"),
            utc(2026, 10, 31, 12),
            [
                Fire(utc(2026, 11, 1, 5, 30), D, deferred_from=utc(2026, 11, 1, 3)),
                Fire(utc(2026, 11, 2, 6, 30), D, deferred_from=utc(2026, 11, 2, 4)),
            ],
        ),
    ],
)
def test_deferral_onto_a_dst_change(timezone, schedule, window, after, expected) -> None:
    cal = calendar([schedule], timezone, quiet_hours=quiet(*window, "defer"))
    assert cal.upcoming(after, len(expected)) == expected


def test_deferral_in_the_repeated_hour_goes_to_the_matching_pass() -> None:
    # Every 20 min from 23:40 EDT; window 00:00-01:30. After 01:40 EDT the clock shows 01:00
    # EST again: 01:00 and 01:20 EST are in the window once more and go to 01:30 EST.
    cal = calendar(
        ["@every 20m"],
        "America/New_York",
        anchor=utc(2026, 11, 1, 3, 40),
        quiet_hours=quiet("00:00", "01:30", "defer"),
    )
    assert cal.upcoming(utc(2026, 11, 1, 3, 50), 5) == [
        Fire(utc(2026, 11, 1, 5, 30), D, deferred_from=utc(2026, 11, 1, 4)),  # 01:30 EDT
        Fire(utc(2026, 11, 1, 5, 40)),  # 01:40 EDT
        Fire(utc(2026, 11, 1, 6, 30), D, deferred_from=utc(2026, 11, 1, 6)),  # 01:30 EST
        Fire(utc(2026, 11, 1, 6, 40)),  # 01:40 EST
        Fire(utc(2026, 11, 1, 7)),
    ]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # 01:20 EDT, then 01:00 and 01:10 EST (outside 01:30-03:00 again), then 03:00 EST.
        ("skip", [Fire(utc(2026, 11, 1, 5, 20)), Fire(utc(2026, 11, 1, 6, 10))]),
        (
            "defer",
            [
                Fire(utc(2026, 11, 1, 5, 20)),
                Fire(utc(2026, 11, 1, 6, 10)),
                Fire(utc(2026, 11, 1, 8), D, deferred_from=utc(2026, 11, 1, 5, 45)),
                Fire(utc(2026, 11, 1, 8, 15)),
            ],
        ),
    ],
)
def test_window_left_by_a_fall_back_is_not_jumped_over(mode, expected) -> None:
    cal = calendar(
        ["@every 25m"],
        "America/New_York",
        anchor=utc(2026, 11, 1, 3, 40),
        quiet_hours=quiet("01:30", "03:00", mode),
    )
    assert cal.upcoming(utc(2026, 11, 1, 5), len(expected)) == expected


def test_deferred_fire_after_end_at_is_dropped() -> None:
    window = quiet("22:00", "07:00", "defer")
    cut = calendar(["0 23 * * *"], quiet_hours=window, end_at=utc(2026, 1, 2, 6, 59))
    assert cut.next_fire(utc(2026, 1, 1, 12)) is None
    kept = calendar(["0 23 * * *"], quiet_hours=window, end_at=utc(2026, 1, 2, 7))
    assert kept.upcoming(utc(2026, 1, 1, 12), 5) == [
        Fire(utc(2026, 1, 2, 7), D, deferred_from=utc(2026, 1, 1, 23))
    ]


def test_excluded_day_is_dropped_not_deferred_nor_deferred_into() -> None:
    cal = calendar(
        ["0 23 * * *"], exclude=["--12-25"], quiet_hours=quiet("22:00", "07:00", "defer")
    )
    # Dec 24 23:00 would land on Dec 25 07:00 (excluded); Dec 25 23:00 is excluded itself.
    assert cal.next_fire(utc(2026, 12, 24, 12)) == Fire(
        utc(2026, 12, 27, 7), D, deferred_from=utc(2026, 12, 26, 23)
    )


def test_quiet_hours_with_a_union() -> None:
    cal = calendar(
        ["0 6 * * *", "30 6 * * *", "0 8 * * *"], quiet_hours=quiet("05:00", "07:00", "defer")
    )
    assert cal.upcoming(utc(2026, 1, 1), 2) == [
        Fire(utc(2026, 1, 1, 7), D, deferred_from=utc(2026, 1, 1, 6)),
        Fire(utc(2026, 1, 1, 8)),
    ]


# --- giving up ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"schedules": ["30 23 * * *"], "quiet_hours": quiet("23:00", "23:45", "skip")},
        {"schedules": ["* 23 * * *"], "quiet_hours": quiet("23:00", "00:00", "skip")},
        {"schedules": ["0 9 25 12 *"], "exclude": ["--12-25"]},
        {"schedules": ["0 12 29 2 *"], "exclude": ["--02-29"]},
        {
            "schedules": ["@every 1d"],
            "anchor": utc(2026, 1, 1, 23, 30),
            "quiet_hours": quiet("23:00", "00:00", "skip"),
        },
        {
            "schedules": ["0 23 24 12 *"],
            "exclude": ["--12-25"],
            "quiet_hours": quiet("22:00", "07:00", "defer"),
        },
    ],
)
def test_a_calendar_that_never_fires_ends(fields) -> None:
    cal = calendar(fields.pop("schedules"), **fields)
    assert cal.next_fire(utc(2026, 1, 1)) is None
    assert list(cal.iter_fires(utc(2026, 1, 1))) == []
    assert cal.upcoming(utc(2026, 1, 1), 10) == []
    assert cal.fires_between(utc(2026, 1, 1), utc(2027, 1, 1), 10) == []


# --- fires_between and upcoming -----------------------------------------------------------


def test_fires_between_returns_the_latest_fires() -> None:
    cal = calendar(["@hourly"], quiet_hours=quiet("22:00", "07:00", "skip"))
    assert [f.at for f in cal.fires_between(utc(2026, 1, 1), utc(2026, 1, 3, 6, 30), 3)] == [
        utc(2026, 1, 2, 19),
        utc(2026, 1, 2, 20),
        utc(2026, 1, 2, 21),
    ]
    assert cal.fires_between(utc(2026, 1, 1), utc(2026, 1, 3), 0) == []
    assert cal.fires_between(utc(2026, 1, 3), utc(2026, 1, 3), 5) == []
    with pytest.raises(ValueError, match="limit"):
        cal.fires_between(utc(2026, 1, 1), utc(2026, 1, 3), -1)


def test_dense_fires_between_stays_cheap() -> None:
    cal = calendar(["@every 1s", "@hourly"], quiet_hours=quiet("22:00", "07:00", "skip"))
    fires = cal.fires_between(utc(2026, 1, 1), utc(2026, 1, 3, 6), 2)
    assert [f.at for f in fires] == [utc(2026, 1, 2, 21, 59, 58), utc(2026, 1, 2, 21, 59, 59)]


@pytest.mark.parametrize(
    ("count", "runs_done", "max_runs", "expected"),
    [
        (5, 0, None, 5),
        (5, 3, 5, 2),
        (5, 5, 5, 0),
        (5, 7, 5, 0),
        (2, 0, 10, 2),
        (0, 0, 10, 0),
    ],
)
def test_upcoming_stops_after_the_remaining_runs(count, runs_done, max_runs, expected) -> None:
    cal = calendar(["@hourly", "30 * * * *"])
    fires = cal.upcoming(utc(2026, 1, 1), count, runs_done=runs_done, max_runs=max_runs)
    assert [f.at for f in fires] == [
        utc(2026, 1, 1) + timedelta(minutes=30 * k) for k in range(1, expected + 1)
    ]


def test_upcoming_refuses_negative_counts() -> None:
    cal = calendar(["@hourly"])
    with pytest.raises(ValueError):
        cal.upcoming(utc(2026, 1, 1), -1)
    with pytest.raises(ValueError):
        cal.upcoming(utc(2026, 1, 1), 1, runs_done=-1)


@pytest.mark.parametrize("schedule", ["*/15 9-17 * * MON-FRI", "@every 1h30m", "@monthly"])
def test_plain_calendar_is_the_schedule(schedule: str) -> None:
    tz = ZoneInfo("America/New_York")
    cal = calendar([schedule], "America/New_York", anchor=utc(2026, 1, 1, 0, 7))
    parsed = parse_schedule(schedule)
    after, anchor = utc(2026, 3, 7, 12), utc(2026, 1, 1, 0, 7)
    assert cal.next_fire(after) == Fire(next_fire_time(parsed, tz, after=after, anchor=anchor))
    expected = list(itertools.islice(iter_fire_times(parsed, tz, after=after, anchor=anchor), 6))
    assert [f.at for f in itertools.islice(cal.iter_fires(after), 6)] == expected
    until = after + timedelta(days=40)
    between = fire_times_between(parsed, tz, after=after, until=until, anchor=anchor, limit=4)
    assert [f.at for f in cal.fires_between(after, until, 4)] == between


def test_naive_after_is_refused() -> None:
    for cal in (calendar(["@hourly"]), calendar(["@hourly", "@daily"])):
        with pytest.raises(ValueError, match="timezone-aware"):
            cal.next_fire(datetime(2026, 1, 1))


# --- validation ---------------------------------------------------------------------------

GOOD = {
    "schedules": ["0 9 * * *"],
    "timezone": "UTC",
    "anchor": ANCHOR,
    "start_at": None,
    "end_at": None,
    "exclude": None,
    "quiet_hours": None,
}


def build(**changes) -> Calendar:
    fields = GOOD | changes
    return parse_calendar(fields.pop("schedules"), fields.pop("timezone"), **fields)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedules": ["0 9 * * *\x00"]}, "schedules[0]: contains a control character"),
        ({"schedules": ["0 9 * * *", "0 25 * * *"]}, "schedules[1]: invalid cron expression"),
        ({"schedules": ["@every 0s"]}, "schedules[0]: interval must be at least 1 second"),
        ({"schedules": [f"@every {i}m" for i in range(1, 12)]}, "schedules: at most 10"),
        ({"schedules": []}, "schedules: expected at least one schedule"),
        ({"schedules": "0 9 * * *"}, "schedules: expected a list of schedule strings"),
        ({"schedules": None}, "schedules: expected a list of schedule strings"),
        ({"schedules": ["0 9 * * *", 9]}, "schedules[1]: expected a string, got int"),
        ({"schedules": [["0 9 * * *"]]}, "schedules[0]: expected a string, got list"),
        ({"schedules": ["1 " * 101]}, "schedules[0]: longer than 200 characters"),
        ({"schedules": ["\ud800"]}, "schedules[0]: contains a control character"),
        ({"timezone": "Mars/Olympus"}, "timezone: unknown timezone 'Mars/Olympus'"),
        ({"timezone": "UTC\x00"}, "timezone: unknown timezone 'UTC\\x00'"),
        ({"timezone": "A" * 1000}, "timezone: unknown timezone 'AAAA"),
        ({"timezone": None}, "timezone: expected a string, got NoneType"),
        ({"anchor": datetime(2026, 1, 1)}, "anchor: expected a timezone-aware datetime"),
        ({"start_at": "2026-01-01"}, "start_at: expected a datetime, got str"),
        ({"start_at": date(2026, 1, 1)}, "start_at: expected a datetime, got date"),
        ({"start_at": datetime(1, 1, 1, tzinfo=UTC)}, "start_at: must lie between"),
        ({"end_at": datetime(9999, 12, 31, 23, 59)}, "end_at: must lie between"),
        (
            {"start_at": utc(2026, 2, 1), "end_at": utc(2026, 1, 1)},
            "end_at: must not be before start_at",
        ),
        ({"exclude": ["2026-02-30"]}, "exclude[0]: 2026-02-30 is not a date"),
        ({"exclude": ["2026-12-25", "--13-01"]}, "exclude[1]: --13-01 is not a date"),
        ({"exclude": ["--02-30"]}, "exclude[0]: --02-30 is not a date"),
        ({"exclude": ["0000-01-01"]}, "exclude[0]: 0000-01-01 is not a date"),
        ({"exclude": ["2026-1-1"]}, "exclude[0]: expected YYYY-MM-DD or --MM-DD, got '2026-1-1'"),
        ({"exclude": ["2026-01-01\n"]}, "exclude[0]: expected YYYY-MM-DD or --MM-DD"),
        ({"exclude": ["\uff12026-01-01"]}, "exclude[0]: expected YYYY-MM-DD or --MM-DD"),
        ({"exclude": ["12-25"]}, "exclude[0]: expected YYYY-MM-DD or --MM-DD"),
        ({"exclude": ["2026-12-25\x00"]}, "exclude[0]: expected YYYY-MM-DD or --MM-DD"),
        ({"exclude": [20261225]}, "exclude[0]: expected a string, got int"),
        ({"exclude": [None]}, "exclude[0]: expected a string, got NoneType"),
        ({"exclude": "2026-12-25"}, "exclude: expected a list of dates"),
        ({"exclude": ["--12-25"] * (MAX_EXCLUDE + 1)}, "exclude: at most 100 dates, got 101"),
        (
            {"quiet_hours": quiet("25:00", "07:00", "skip")},
            "quiet_hours.from: expected HH:MM (00:00 to 23:59), got '25:00'",
        ),
        ({"quiet_hours": quiet("22:00", "24:00", "skip")}, "quiet_hours.to: expected HH:MM"),
        ({"quiet_hours": quiet("22:00", "7:00", "skip")}, "quiet_hours.to: expected HH:MM"),
        ({"quiet_hours": quiet("22:00\x00", "07:00", "skip")}, "quiet_hours.from: expected"),
        ({"quiet_hours": quiet("22:00", "22:00", "skip")}, "quiet_hours: from and to must differ"),
        (
            {"quiet_hours": quiet("22:00", "07:00", "mute")},
            "quiet_hours.mode: expected one of skip, silent, defer, got 'mute'",
        ),
        ({"quiet_hours": quiet("22:00", "07:00", "SKIP")}, "quiet_hours.mode: expected one of"),
        ({"quiet_hours": {"from": "22:00", "to": "07:00"}}, "quiet_hours.mode: required"),
        (
            {"quiet_hours": quiet("22:00", "07:00", "skip") | {"until": "x"}},
            "quiet_hours: unknown key 'until'",
        ),
        ({"quiet_hours": {1: "x"}}, "quiet_hours: unknown key 1"),
        ({"quiet_hours": "22:00-07:00"}, "quiet_hours: expected an object with from, to and mode"),
        (
            {"quiet_hours": {"from": 2200, "to": "07:00", "mode": "skip"}},
            "quiet_hours.from: expected HH:MM (00:00 to 23:59), got 2200",
        ),
        ({"quiet_hours": {"from": None, "to": "07:00", "mode": 1}}, "quiet_hours.from: expected"),
    ],
)
def test_invalid_fields_are_named(changes, message) -> None:
    with pytest.raises(CalendarError) as caught:
        build(**changes)
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(message), str(caught.value)
    assert caught.value.field == message.split(":")[0]
    assert len(str(caught.value)) < 200


def test_valid_fields_are_normalised() -> None:
    cal = build(
        schedules=["*/15  9-17 * * mon-fri", "@EVERY 90m"],
        timezone="Europe/Berlin",
        start_at=datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")),
        exclude=("2026-12-24", "--12-25", "--02-29"),
        quiet_hours={"from": "00:00", "to": "23:59", "mode": "silent"},
    )
    assert [s.text for s in cal.schedules] == ["*/15 9-17 * * MON-FRI", "@every 90m"]
    assert cal.schedules[1] == IntervalSchedule(seconds=5400, text="@every 90m")
    assert cal.start_at == utc(2025, 12, 31, 15)
    assert cal.exclude.dates == {date(2026, 12, 24)}
    assert cal.exclude.yearly == {(12, 25), (2, 29)}
    assert cal.quiet is not None
    assert (cal.quiet.start, cal.quiet.end) == (time(0), time(23, 59))
    assert cal.quiet.mode is QuietMode.SILENT


def _junk(rng: random.Random, depth: int = 0) -> object:
    choices = [
        lambda: None,
        lambda: rng.randint(-(10**20), 10**20),
        lambda: rng.random() * 1e300,
        lambda: float("nan"),
        lambda: True,
        lambda: "".join(rng.choice(string.printable + "\x00\ud800é٣") for _ in range(8)),
        lambda: rng.choice(["--02-29", "2026-12-25", "22:00", "skip", "@every 1s", "* * * * *"]),
        lambda: "9" * rng.randint(1, 400),
        lambda: datetime(rng.randint(1, 9999), 1, 1, tzinfo=rng.choice([None, UTC])),
        lambda: b"bytes",
    ]
    if depth < 2:
        choices.append(lambda: [_junk(rng, depth + 1) for _ in range(rng.randint(0, 12))])
        choices.append(
            lambda: {rng.choice(["from", "to", "mode", "x"]): _junk(rng, depth + 1) for _ in "abc"}
        )
    return rng.choice(choices)()


def test_hostile_inputs_only_raise_calendar_errors() -> None:
    rng = random.Random(20260101)
    fields = ["schedules", "timezone", "start_at", "end_at", "exclude", "quiet_hours"]
    for _ in range(3000):
        changes = {name: _junk(rng) for name in rng.sample(fields, rng.randint(1, 3))}
        with contextlib.suppress(CalendarError):
            build(**changes)


# --- cross-check against a direct reading of the rules -------------------------------------


def _reference(fields: dict, after: datetime, until: datetime) -> list[Fire]:
    """Every fire in (after, until], from every candidate, without shortcuts."""
    tz = ZoneInfo(fields["timezone"])
    start_at, end_at, window = fields.get("start_at"), fields.get("end_at"), fields.get("quiet")
    dates, yearly = fields.get("dates", set()), fields.get("yearly", set())
    candidates: set[datetime] = set()
    for text in fields["schedules"]:
        schedule = parse_schedule(text)
        anchor = fields["anchor"]
        if isinstance(schedule, IntervalSchedule) and start_at is not None:
            anchor = start_at - timedelta(seconds=schedule.seconds)
        candidates.update(
            fire_times_between(
                schedule,
                tz,
                after=after - timedelta(days=2),
                until=until,
                anchor=anchor,
                limit=10**6,
            )
        )

    def excluded(instant: datetime) -> bool:
        day = instant.astimezone(tz).date()
        return day in dates or (day.month, day.day) in yearly

    fires: dict[datetime, Fire] = {}
    for instant in sorted(candidates):
        if (start_at and instant < start_at) or (end_at and instant > end_at) or excluded(instant):
            continue
        local = instant.astimezone(tz)
        inside = window is not None and _inside(window, local.time())
        if not inside:
            fires[instant] = Fire(instant)
        elif window[2] == "silent":
            fires[instant] = Fire(instant, S)
        elif window[2] == "defer":
            end = _brute_window_end(window, instant, tz)
            if (end_at is None or end <= end_at) and not excluded(end) and end not in fires:
                fires[end] = Fire(end, D, deferred_from=instant)
    return [fires[at] for at in sorted(fires) if after < at <= until]


def _inside(window: tuple[time, time, str], wall: time) -> bool:
    start, end, _ = window
    return start <= wall < end if start < end else (wall >= start or wall < end)


def _brute_window_end(window, instant: datetime, tz: ZoneInfo) -> datetime:
    """Walk minute by minute to the first wall time `to` (or the first after a gap)."""
    start, end, _ = window
    local = instant.astimezone(tz)
    day = local.date() + timedelta(days=1 if start > end and local.time() >= start else 0)
    target = datetime.combine(day, end)
    minute = instant.replace(second=0, microsecond=0)
    previous = local.replace(tzinfo=None)
    while True:
        minute += timedelta(minutes=1)
        wall = minute.astimezone(tz).replace(tzinfo=None)
        if wall == target or previous < target < wall:
            return minute
        previous = wall


ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago"]
MOMENTS = [
    utc(2026, 3, 7, 12),
    utc(2026, 3, 28, 12),
    utc(2026, 4, 4, 0),
    utc(2026, 9, 5, 12),
    utc(2026, 10, 3, 0),
    utc(2026, 10, 24, 12),
    utc(2026, 10, 31, 12),
    utc(2027, 3, 27, 12),
]
POOL = [
    "*/15 * * * *",
    "0 * * * *",
    "30 1,2,3 * * *",
    "0 0 * * *",
    "45 23 * * *",
    "10 2 * * *",
    "0 9 * * MON-FRI",
    "@every 7m",
    "@every 50m",
    "@every 2h",
]


def _random_case(rng: random.Random) -> tuple[dict, datetime, datetime]:
    after = rng.choice(MOMENTS) + timedelta(minutes=10 * rng.randint(0, 200))
    minutes = lambda low, high: timedelta(minutes=rng.randint(low, high))  # noqa: E731
    fields: dict = {
        "timezone": rng.choice(ZONES),
        "schedules": rng.sample(POOL, rng.randint(1, 3)),
        "anchor": after - minutes(0, 600),
    }
    if rng.random() < 0.3:
        fields["start_at"] = after + minutes(-600, 1200)
    if rng.random() < 0.3:
        fields["end_at"] = after + minutes(0, 3000)
    if fields.get("start_at") and fields.get("end_at"):
        fields["end_at"] = max(fields["end_at"], fields["start_at"])
    days = [(after + timedelta(days=k)).date() for k in range(-1, 3)]
    fields["dates"] = {d for d in days if rng.random() < 0.2}
    fields["yearly"] = {(d.month, d.day) for d in days if rng.random() < 0.1}
    if rng.random() < 0.8:
        start, end = sorted(rng.sample(range(0, 24 * 60, 10), 2), key=lambda _: rng.random())
        mode = rng.choice(["skip", "silent", "defer"])
        fields["quiet"] = (time(start // 60, start % 60), time(end // 60, end % 60), mode)
    return fields, after, after + minutes(360, 3600)


def _build_case(fields: dict) -> Calendar:
    window = fields.get("quiet")
    return parse_calendar(
        fields["schedules"],
        fields["timezone"],
        anchor=fields["anchor"],
        start_at=fields.get("start_at"),
        end_at=fields.get("end_at"),
        exclude=[d.isoformat() for d in fields["dates"]]
        + [f"--{m:02d}-{d:02d}" for m, d in fields["yearly"]],
        quiet_hours=None
        if window is None
        else {
            "from": window[0].strftime("%H:%M"),
            "to": window[1].strftime("%H:%M"),
            "mode": window[2],
        },
    )


def test_matches_a_direct_reading_of_the_rules() -> None:
    rng = random.Random(7)
    for _ in range(150):
        fields, after, until = _random_case(rng)
        cal = _build_case(fields)
        expected = _reference(fields, after, until)
        walked = [f for f in itertools.islice(cal.iter_fires(after), len(expected) + 1)]
        walked = [f for f in walked if f.at <= until]
        assert walked == expected, (fields, after, until)
        assert cal.fires_between(after, until, 10**6) == expected, (fields, after, until)
        assert cal.fires_between(after, until, 3) == expected[-3:], (fields, after, until)
        if expected:
            assert cal.next_fire(after) == expected[0]
