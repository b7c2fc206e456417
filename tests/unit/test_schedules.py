"""Schedule parsing and fire-time arithmetic; every expected instant below is worked by hand.

Reference calendar: 2026-01-01 is a Thursday. America/New_York 2026: DST starts 2026-03-08
(02:00 EST -> 03:00 EDT at 07:00Z) and ends 2026-11-01 (02:00 EDT -> 01:00 EST at 06:00Z).
Europe/Berlin 2026: starts 2026-03-29 (02:00 CET -> 03:00 CEST at 01:00Z) and ends
2026-10-25 (03:00 CEST -> 02:00 CET at 01:00Z).
"""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from app.scheduling.schedules import (
    CronSchedule,
    IntervalSchedule,
    ScheduleError,
    fire_times_between,
    iter_fire_times,
    localize_run_at,
    next_fire_time,
    next_fire_times,
    parse_schedule,
    parse_timezone,
)

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
PARIS = ZoneInfo("Europe/Paris")
ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)  # irrelevant to cron schedules


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def upcoming(text: str, after: datetime, count: int = 1, tz: ZoneInfo | None = None):
    schedule = parse_schedule(text)
    return next_fire_times(schedule, tz or ZoneInfo("UTC"), after=after, anchor=ANCHOR, count=count)


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_macros_expand_to_standard_cron(text: str, expression: str) -> None:
    assert parse_schedule(text) == CronSchedule(expression=expression, text=text)
    assert parse_schedule(f"  {text.upper()} ") == CronSchedule(expression=expression, text=text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Thursday 2026-01-15 10:20Z
        ("@hourly", utc(2026, 1, 15, 11, 0)),
        ("@daily", utc(2026, 1, 16)),
        ("@midnight", utc(2026, 1, 16)),
        ("@weekly", utc(2026, 1, 18)),  # the next Sunday
        ("@monthly", utc(2026, 2, 1)),
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
    ],
)
def test_macros_fire_at_their_standard_times(text: str, expected: datetime) -> None:
    assert upcoming(text, utc(2026, 1, 15, 10, 20)) == [expected]


def test_cron_text_is_normalised() -> None:
    schedule = parse_schedule("  */15   9-17 *\t* mon-fri \n")
    assert schedule == CronSchedule(
        expression="*/15 9-17 * * MON-FRI", text="*/15 9-17 * * MON-FRI"
    )


def test_weekday_names_limit_to_business_days() -> None:
    # Friday 2026-01-16 17:50Z: the last fire that day was 17:45, next is Monday 09:00.
    fires = upcoming("*/15 9-17 * * MON-FRI", utc(2026, 1, 16, 17, 50), count=2)
    assert fires == [utc(2026, 1, 19, 9, 0), utc(2026, 1, 19, 9, 15)]


def test_month_and_day_names_combine() -> None:
    # Weekdays in January only: after Friday 2026-01-30 the next is Friday 2027-01-01.
    fires = upcoming("0 9 * jan Mon-Fri", utc(2026, 1, 30, 12))
    assert fires == [utc(2027, 1, 1, 9)]


def test_day_range_ending_on_sunday_wraps() -> None:
    # After Monday 2026-01-19: Fri 23, Sat 24, Sun 25, Fri 30.
    fires = upcoming("0 0 * * FRI-SUN", utc(2026, 1, 19), count=4)
    assert fires == [utc(2026, 1, 23), utc(2026, 1, 24), utc(2026, 1, 25), utc(2026, 1, 30)]


def test_day_of_week_seven_is_sunday() -> None:
    assert upcoming("0 0 * * 7", utc(2026, 1, 15)) == [utc(2026, 1, 18)]


def test_restricted_day_of_month_and_week_match_either() -> None:
    # The 10th OR any Friday, from Sunday 2026-02-01: Fri 6, Tue 10, Fri 13.
    fires = upcoming("0 0 10 * FRI", utc(2026, 2, 1), count=3)
    assert fires == [utc(2026, 2, 6), utc(2026, 2, 10), utc(2026, 2, 13)]


@pytest.mark.parametrize(
    ("text", "message_part"),
    [
        ("61 * * * *", "minute must be 0-59"),
        ("* 24 * * *", "hour must be 0-23"),
        ("* * 0 * *", "day of month must be 1-31"),
        ("* * * 13 *", "month must be 1-12"),
        ("* * * * 8", "day of week must be 0-7"),
        ("* * * FOO *", "unknown month name 'FOO'"),
        ("* * * * MONDAY", "unknown day of week name 'MONDAY'"),
        ("*/0 * * * *", "step must be at least 1"),
        ("30-10 * * * *", "runs backwards"),
        ("1,,2 * * * *", "invalid minute field item"),
        ("0 0 L * *", "day of month must be a number"),
        ("0 0 15W * *", "day of month must be a number"),
        ("0 0 * * 1#2", "invalid day of week field item"),
        ("* * * *", "expected 5 fields"),
        ("0 * * * * *", "expected 5 fields"),
        ("0 0 * * * * 2026", "expected 5 fields"),
        ("hello", "expected 5 fields"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("@reboot", "unsupported schedule '@reboot'"),
        ("@fortnightly", "unsupported schedule"),
        ("@daily 5", "unexpected text after '@daily'"),
        ("@every", "'@every' takes one duration"),
        ("@every 5m 3s", "'@every' takes one duration"),
        ("@every 5x", "invalid interval '5x'"),
        ("@every 1m1h", "invalid interval '1m1h'"),
        ("@every m", "invalid interval"),
        ("@every -5m", "invalid interval"),
        ("@every 0s", "at least 1 second"),
        ("@every 0h0m", "at least 1 second"),
        ("@every 4000d", "at most 3650 days"),
    ],
)
def test_invalid_schedules_are_rejected(text: str, message_part: str) -> None:
    with pytest.raises(ScheduleError) as excinfo:
        parse_schedule(text)
    assert message_part in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_cron_error_message_names_the_expression() -> None:
    with pytest.raises(ScheduleError, match=r"^invalid cron expression '61 \* \* \* \*': minute"):
        parse_schedule("61 * * * *")


@pytest.mark.parametrize(
    ("text", "seconds", "normalised"),
    [
        ("@every 30s", 30, "@every 30s"),
        ("@every 5m", 300, "@every 5m"),
        ("@every 1h30m", 5400, "@every 1h30m"),
        ("@every 1d", 86400, "@every 1d"),
        ("@every 1d2h3m4s", 93784, "@every 1d2h3m4s"),
        ("@every 90m", 5400, "@every 90m"),
        ("  @EVERY   1H0M5S ", 3605, "@every 1h5s"),
    ],
)
def test_interval_parsing(text: str, seconds: int, normalised: str) -> None:
    assert parse_schedule(text) == IntervalSchedule(seconds=seconds, text=normalised)


def test_leap_day_cron_is_valid() -> None:
    assert parse_schedule("0 12 29 2 *").expression == "0 12 29 2 *"


# --- intervals ----------------------------------------------------------------------------


def test_interval_fires_at_anchor_multiples() -> None:
    anchor = utc(2026, 1, 1, 0, 0, 7)
    fires = next_fire_times(
        parse_schedule("@every 1h"), NEW_YORK, after=utc(2026, 1, 1, 5, 30), anchor=anchor, count=2
    )
    assert fires == [utc(2026, 1, 1, 6, 0, 7), utc(2026, 1, 1, 7, 0, 7)]


def test_interval_is_strictly_after_and_never_the_anchor_itself() -> None:
    schedule = parse_schedule("@every 1h")
    anchor = utc(2026, 1, 1)
    on_a_fire = next_fire_time(schedule, BERLIN, after=utc(2026, 1, 1, 2), anchor=anchor)
    assert on_a_fire == utc(2026, 1, 1, 3)
    at_anchor = next_fire_time(schedule, BERLIN, after=anchor, anchor=anchor)
    assert at_anchor == utc(2026, 1, 1, 1)
    before_anchor = next_fire_time(schedule, BERLIN, after=utc(2025, 12, 1), anchor=anchor)
    assert before_anchor == utc(2026, 1, 1, 1)


def test_interval_is_absolute_across_dst() -> None:
    # Anchor at midnight EST on the spring-forward day; a day later is 01:00 EDT = 05:00Z.
    anchor = datetime(2026, 3, 8, 0, 0, tzinfo=NEW_YORK)
    fire = next_fire_time(parse_schedule("@every 1d"), NEW_YORK, after=anchor, anchor=anchor)
    assert fire == utc(2026, 3, 9, 5, 0)
    assert fire.tzinfo is UTC


def test_iter_fire_times_keeps_going() -> None:
    fires = iter_fire_times(
        parse_schedule("@every 30s"), UTC, after=utc(2026, 1, 1), anchor=utc(2026, 1, 1)
    )
    taken = [next(fires) for _ in range(5)]
    assert taken[0] == utc(2026, 1, 1, 0, 0, 30)
    assert taken[-1] == utc(2026, 1, 1, 0, 2, 30)


# --- cron in a timezone -------------------------------------------------------------------


def test_cron_in_paris_follows_local_time() -> None:
    schedule = parse_schedule("0 9 * * *")
    winter = next_fire_time(schedule, PARIS, after=utc(2026, 1, 15), anchor=ANCHOR)
    summer = next_fire_time(schedule, PARIS, after=utc(2026, 7, 15), anchor=ANCHOR)
    assert winter == utc(2026, 1, 15, 8, 0)
    assert summer == utc(2026, 7, 15, 7, 0)
    assert winter.tzinfo is UTC


def test_after_may_be_in_any_zone() -> None:
    after = datetime(2026, 1, 15, 8, 59, tzinfo=timezone(timedelta(hours=5)))  # 03:59Z
    assert upcoming("0 * * * *", after) == [utc(2026, 1, 15, 4, 0)]


def test_new_york_spring_forward_daily() -> None:
    # 02:30 does not exist on 03-08: it fires once at 03:00 EDT.
    fires = upcoming("30 2 * * *", utc(2026, 3, 7), count=3, tz=NEW_YORK)
    assert fires == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]


def test_new_york_spring_forward_quarter_hours() -> None:
    # After 01:40 EST: 01:45 EST, one fire for the whole gap at 03:00 EDT, then 03:15 EDT.
    fires = upcoming("*/15 * * * *", utc(2026, 3, 8, 6, 40), count=4, tz=NEW_YORK)
    assert fires == [
        utc(2026, 3, 8, 6, 45),
        utc(2026, 3, 8, 7, 0),
        utc(2026, 3, 8, 7, 15),
        utc(2026, 3, 8, 7, 30),
    ]


def test_new_york_fall_back_daily() -> None:
    # 01:30 happens twice on 11-01; it fires at the first, EDT one.
    fires = upcoming("30 1 * * *", utc(2026, 10, 31), count=3, tz=NEW_YORK)
    assert fires == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_new_york_fall_back_half_hours() -> None:
    # 00:30, 01:00, 01:30 EDT, then nothing during the repeated 01:xx EST, then 02:00 EST.
    fires = upcoming("*/30 * * * *", utc(2026, 11, 1, 4, 15), count=5, tz=NEW_YORK)
    assert fires == [
        utc(2026, 11, 1, 4, 30),
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 7, 0),
        utc(2026, 11, 1, 7, 30),
    ]


def test_new_york_after_inside_the_repeated_hour() -> None:
    # After 01:10 EST (second pass), 01:30 already fired in the first pass; next is 02:00 EST.
    fires = upcoming("*/30 * * * *", utc(2026, 11, 1, 6, 10), count=2, tz=NEW_YORK)
    assert fires == [utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 7, 30)]


def test_new_york_hourly_across_fall_back() -> None:
    fires = upcoming("@hourly", utc(2026, 11, 1, 3, 30), count=4, tz=NEW_YORK)
    assert fires == [
        utc(2026, 11, 1, 4, 0),  # 00:00 EDT
        utc(2026, 11, 1, 5, 0),  # 01:00 EDT (not again at 01:00 EST)
        utc(2026, 11, 1, 7, 0),  # 02:00 EST
        utc(2026, 11, 1, 8, 0),
    ]


def test_berlin_spring_forward_daily() -> None:
    fires = upcoming("30 2 * * *", utc(2026, 3, 28), count=3, tz=BERLIN)
    assert fires == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_berlin_spring_forward_quarter_hours() -> None:
    # After 01:30 CET: 01:45 CET, then 03:00 CEST once for 02:00-02:45, then 03:15 CEST.
    fires = upcoming("*/15 * * * *", utc(2026, 3, 29, 0, 30), count=4, tz=BERLIN)
    assert fires == [
        utc(2026, 3, 29, 0, 45),
        utc(2026, 3, 29, 1, 0),
        utc(2026, 3, 29, 1, 15),
        utc(2026, 3, 29, 1, 30),
    ]


def test_berlin_fall_back_daily() -> None:
    fires = upcoming("30 2 * * *", utc(2026, 10, 24), count=3, tz=BERLIN)
    assert fires == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_berlin_fall_back_half_hours() -> None:
    # After 01:45 CEST: 02:00 and 02:30 CEST, none in the repeated 02:xx CET, 03:00 CET.
    fires = upcoming("*/30 * * * *", utc(2026, 10, 24, 23, 45), count=4, tz=BERLIN)
    assert fires == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 2, 0),
        utc(2026, 10, 25, 2, 30),
    ]


def test_thirty_first_skips_short_months() -> None:
    fires = upcoming("0 0 31 * *", utc(2026, 1, 31), count=4)
    assert fires == [utc(2026, 3, 31), utc(2026, 5, 31), utc(2026, 7, 31), utc(2026, 8, 31)]


def test_leap_day() -> None:
    fires = upcoming("0 12 29 2 *", utc(2026, 1, 1), count=2)
    assert fires == [utc(2028, 2, 29, 12), utc(2032, 2, 29, 12)]


def test_monthly_in_a_zone() -> None:
    # Midnight on the 1st in New York: EST (-5) in Feb and Mar, EDT (-4) in April.
    fires = upcoming("@monthly", utc(2026, 1, 15), count=3, tz=NEW_YORK)
    assert fires == [utc(2026, 2, 1, 5), utc(2026, 3, 1, 5), utc(2026, 4, 1, 4)]


# --- next_fire_times / fire_times_between -------------------------------------------------


def test_next_fire_times_count() -> None:
    assert upcoming("0 */6 * * *", utc(2026, 1, 1, 1), count=3) == [
        utc(2026, 1, 1, 6),
        utc(2026, 1, 1, 12),
        utc(2026, 1, 1, 18),
    ]
    assert upcoming("0 */6 * * *", utc(2026, 1, 1, 1), count=0) == []
    with pytest.raises(ValueError):
        upcoming("0 */6 * * *", utc(2026, 1, 1, 1), count=-1)


def between(text: str, tz, after: datetime, until: datetime, limit: int, anchor=ANCHOR):
    return fire_times_between(
        parse_schedule(text), tz, after=after, until=until, anchor=anchor, limit=limit
    )


def test_between_interval_returns_latest_in_order() -> None:
    anchor = utc(2026, 1, 1)
    after, until = utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 3)
    assert between("@every 1h", UTC, after, until, 100, anchor) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 2),
        utc(2026, 1, 1, 3),  # `until` is inclusive
    ]
    assert between("@every 1h", UTC, after, until, 2, anchor) == [
        utc(2026, 1, 1, 2),
        utc(2026, 1, 1, 3),
    ]
    assert between("@every 1h", UTC, utc(2026, 1, 1, 1), until, 100, anchor) == [
        utc(2026, 1, 1, 2),  # `after` is exclusive
        utc(2026, 1, 1, 3),
    ]


def test_between_interval_over_a_huge_range() -> None:
    anchor = utc(2026, 1, 1)
    until = utc(2026, 1, 31)  # 2,592,000 one-second fires in range
    fires = between("@every 1s", UTC, anchor, until, 100, anchor)
    assert len(fires) == 100
    assert fires[0] == utc(2026, 1, 30, 23, 58, 21)
    assert fires[-1] == until
    assert fires == [fires[0] + timedelta(seconds=i) for i in range(100)]


def test_between_empty_cases() -> None:
    anchor = utc(2026, 1, 1)
    assert between("@every 1h", UTC, utc(2026, 1, 1, 5), utc(2026, 1, 1, 1), 10, anchor) == []
    assert between("@every 1h", UTC, utc(2026, 1, 1, 1), utc(2026, 1, 1, 5), 0, anchor) == []
    assert between("@every 1h", UTC, utc(2026, 1, 1, 1, 5), utc(2026, 1, 1, 1, 55), 5, anchor) == []
    assert between("@every 1h", UTC, utc(2025, 1, 1), utc(2026, 1, 1), 5, anchor) == []
    assert between("0 0 * * *", UTC, utc(2026, 1, 1, 1), utc(2026, 1, 1, 23), 5) == []
    with pytest.raises(ValueError):
        between("@every 1h", UTC, utc(2026, 1, 1), utc(2026, 1, 2), -1, anchor)


def test_between_cron_latest_in_order() -> None:
    fires = between("0 9 * * *", PARIS, utc(2026, 1, 1), utc(2026, 1, 5, 12), 3)
    assert fires == [utc(2026, 1, 3, 8), utc(2026, 1, 4, 8), utc(2026, 1, 5, 8)]
    fires = between("0 9 * * *", PARIS, utc(2026, 1, 3, 8), utc(2026, 1, 5, 8), 10)
    assert fires == [utc(2026, 1, 4, 8), utc(2026, 1, 5, 8)]


def test_between_minute_cron_over_a_year() -> None:
    fires = between("* * * * *", BERLIN, utc(2025, 1, 1), utc(2026, 1, 1, 0, 0, 30), 3)
    assert fires == [utc(2025, 12, 31, 23, 58), utc(2025, 12, 31, 23, 59), utc(2026, 1, 1)]


def test_between_cron_across_spring_forward() -> None:
    fires = between("*/15 * * * *", NEW_YORK, utc(2026, 3, 8), utc(2026, 3, 8, 7, 0), 3)
    assert fires == [utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 7, 0)]


def test_between_cron_across_fall_back() -> None:
    after, until = utc(2026, 11, 1, 4), utc(2026, 11, 1, 7, 30)
    assert between("*/30 * * * *", NEW_YORK, after, until, 100) == [
        utc(2026, 11, 1, 4, 30),
        utc(2026, 11, 1, 5, 0),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 7, 0),
        utc(2026, 11, 1, 7, 30),
    ]
    assert between("*/30 * * * *", NEW_YORK, after, until, 3) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 7, 0),
        utc(2026, 11, 1, 7, 30),
    ]


def test_between_cron_until_inside_the_repeated_hour() -> None:
    # Until 01:10 EST: the 01:30 wall time already fired at 01:30 EDT, before `until`.
    fires = between("*/30 * * * *", NEW_YORK, utc(2026, 11, 1, 4), utc(2026, 11, 1, 6, 10), 2)
    assert fires == [utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30)]
    fires = between("*/30 * * * *", BERLIN, utc(2026, 10, 24, 23), utc(2026, 10, 25, 1, 10), 2)
    assert fires == [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30)]


# --- aware inputs -------------------------------------------------------------------------


def test_naive_inputs_raise_value_error() -> None:
    schedule = parse_schedule("@hourly")
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="after"):
        next_fire_time(schedule, UTC, after=naive, anchor=ANCHOR)
    with pytest.raises(ValueError, match="anchor"):
        next_fire_time(parse_schedule("@every 1h"), UTC, after=utc(2026, 1, 1), anchor=naive)
    with pytest.raises(ValueError, match="after"):
        iter_fire_times(schedule, UTC, after=naive, anchor=ANCHOR)
    with pytest.raises(ValueError, match="until"):
        fire_times_between(
            schedule, UTC, after=utc(2026, 1, 1), until=naive, anchor=ANCHOR, limit=5
        )


# --- localize_run_at ----------------------------------------------------------------------


def test_localize_naive_run_at() -> None:
    assert localize_run_at(datetime(2026, 7, 1, 12, 0), BERLIN) == utc(2026, 7, 1, 10, 0)
    assert localize_run_at(datetime(2026, 1, 1, 12, 0, 30, 500), BERLIN) == datetime(
        2026, 1, 1, 11, 0, 30, 500, tzinfo=UTC
    )


def test_localize_aware_run_at() -> None:
    run_at = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    result = localize_run_at(run_at, BERLIN)
    assert result == utc(2026, 7, 1, 6, 30)
    assert result.tzinfo is UTC


def test_localize_nonexistent_run_at_moves_to_gap_end() -> None:
    assert localize_run_at(datetime(2026, 3, 8, 2, 30), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert localize_run_at(datetime(2026, 3, 8, 2, 0), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert localize_run_at(datetime(2026, 3, 8, 2, 59, 59), NEW_YORK) == utc(2026, 3, 8, 7, 0)
    assert localize_run_at(datetime(2026, 3, 29, 2, 15), BERLIN) == utc(2026, 3, 29, 1, 0)


def test_localize_ambiguous_run_at_takes_first_occurrence() -> None:
    assert localize_run_at(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)
    # fold=1 on a naive value is ignored: the rule is always the first occurrence.
    ambiguous = datetime(2026, 11, 1, 1, 30, fold=1)
    assert localize_run_at(ambiguous, NEW_YORK) == utc(2026, 11, 1, 5, 30)
    assert localize_run_at(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)


# --- parse_timezone -----------------------------------------------------------------------


def test_parse_timezone_accepts_iana_names() -> None:
    assert parse_timezone("Europe/Paris") == ZoneInfo("Europe/Paris")
    assert parse_timezone("UTC").key == "UTC"


@pytest.mark.parametrize(
    "name", ["Mars/Base", "", "../etc", "/etc/passwd", "europe/paris", " UTC", "localtime"]
)
def test_parse_timezone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ScheduleError, match="unknown timezone"):
        parse_timezone(name)


def test_parse_timezone_message() -> None:
    with pytest.raises(ScheduleError) as excinfo:
        parse_timezone("Mars/Base")
    assert str(excinfo.value) == "unknown timezone 'Mars/Base'"
