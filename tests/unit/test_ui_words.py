"""The dashboard's words: schedules as sentences, local and relative times, durations."""

from datetime import UTC, datetime, timedelta

import pytest

from app.ui.words import (
    discord_message_id,
    duration_text,
    interval_in_words,
    local_time,
    reason_in_words,
    relative_time,
    schedule_in_words,
    timing_in_words,
)

PARIS = "Europe/Paris"

SENTENCES = [
    ("0 9 * * MON-FRI", "every weekday at 09:00 Europe/Paris"),
    ("0 9 * * 1-5", "every weekday at 09:00 Europe/Paris"),
    ("@daily", "every day at 00:00 Europe/Paris"),
    ("@midnight", "every day at 00:00 Europe/Paris"),
    ("@weekly", "every Sunday at 00:00 Europe/Paris"),
    ("@monthly", "on the 1st of every month at 00:00 Europe/Paris"),
    ("@yearly", "every year on 1 January at 00:00 Europe/Paris"),
    ("@hourly", "every hour"),
    ("30 * * * *", "every hour at minute 30"),
    ("* * * * *", "every minute"),
    ("*/15 * * * *", "every 15 minutes"),
    ("0,30 * * * *", "every 30 minutes"),
    ("*/15 9-17 * * MON-FRI", "every 15 minutes from 09:00 to 17:59 on weekdays (Europe/Paris)"),
    ("0 */2 * * *", "every 2 hours (Europe/Paris)"),
    ("0 8-18 * * *", "every hour from 08:00 to 18:00 (Europe/Paris)"),
    ("0 9,17 * * *", "every day at 09:00 and 17:00 Europe/Paris"),
    ("0 */5 * * *", "every day at 00:00, 05:00, 10:00, 15:00 and 20:00 Europe/Paris"),
    ("30 8,12,18 * * SAT", "every Saturday at 08:30, 12:30 and 18:30 Europe/Paris"),
    ("0 12 * * 1,3,5", "every Monday, Wednesday and Friday at 12:00 Europe/Paris"),
    ("0 9 * * SAT,SUN", "every Saturday and Sunday at 09:00 Europe/Paris"),
    ("0 9 * * SUN,MON", "every Monday and Sunday at 09:00 Europe/Paris"),
    ("0 9 * * 7", "every Sunday at 09:00 Europe/Paris"),
    ("5 4 * * sun", "every Sunday at 04:05 Europe/Paris"),
    ("0 0 1,15 * *", "on the 1st and 15th of every month at 00:00 Europe/Paris"),
    ("0 0 22 * *", "on the 22nd of every month at 00:00 Europe/Paris"),
    ("0 0 13 * *", "on the 13th of every month at 00:00 Europe/Paris"),
    ("0 9 25 DEC *", "every year on 25 December at 09:00 Europe/Paris"),
    ("0 9 1 1,7 *", "every year on 1 January and 1 July at 09:00 Europe/Paris"),
    ("0 9 * * MON-FRI", "every weekday at 09:00 Europe/Paris"),
    ("*/10 * * * MON", "every 10 minutes on Mondays (Europe/Paris)"),
    ("0 * * * SAT,SUN", "every hour on Saturdays and Sundays (Europe/Paris)"),
    ("@every 30s", "every 30 seconds"),
    ("@every 1m", "every minute"),
    ("@every 1h30m", "every 1 hour 30 minutes"),
    ("@every 2d", "every 2 days"),
]

# Shown as cron with the zone: no short sentence would be both plain and right.
AS_CRON = [
    "0 9 1 * MON",  # day of month OR day of week
    "*/7 * * * *",  # fires at :56 and again at :00
    "15,45 * * * *",
    "0 9 * 1-3 *",
    "*/20 */5 * * *",
    "0 0 1,2,3 1,2 *",
    "1-5/2 * * * *",
]


@pytest.mark.parametrize(("schedule", "sentence"), SENTENCES)
def test_schedules_read_as_sentences(schedule: str, sentence: str):
    assert schedule_in_words(schedule, run_at=None, timezone=PARIS) == sentence


@pytest.mark.parametrize("schedule", AS_CRON)
def test_schedules_without_a_plain_sentence_stay_cron(schedule: str):
    words = schedule_in_words(schedule, run_at=None, timezone=PARIS)
    assert words.startswith("cron ") and words.endswith(f"({PARIS})")


def test_a_one_time_task_reads_in_its_timezone():
    at = datetime(2027, 1, 15, 15, 0, tzinfo=UTC)
    words = schedule_in_words(None, run_at=at, timezone="America/New_York")
    assert words == "once, on Fri 15 Jan 2027 10:00 America/New_York"


def test_several_schedules_read_one_after_another():
    words = timing_in_words(["0 9 * * MON-FRI", "@daily"], run_at=None, timezone=PARIS)
    first = schedule_in_words("0 9 * * MON-FRI", run_at=None, timezone=PARIS)
    assert words == first + "; " + schedule_in_words("@daily", run_at=None, timezone=PARIS)
    assert timing_in_words([], run_at=None, timezone=PARIS) == "no schedule"


def test_a_schedule_the_parser_refuses_is_shown_as_written():
    assert schedule_in_words("not a schedule", run_at=None, timezone="UTC") == "not a schedule"


def test_interval_units_add_up():
    assert interval_in_words(86_400 + 3_600 + 61) == "every 1 day 1 hour 1 minute 1 second"


def test_local_time_follows_the_zone_across_daylight_saving():
    winter = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert local_time(winter, PARIS) == "Tue 1 Dec 2026 09:00 CET"
    assert local_time(summer, PARIS) == "Wed 1 Jul 2026 09:00 CEST"
    assert local_time(summer, PARIS, zone=False) == "Wed 1 Jul 2026 09:00"


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("delta", "words"),
    [
        (timedelta(0), "now"),
        (timedelta(milliseconds=400), "now"),
        (timedelta(seconds=20), "in 20 s"),
        (timedelta(seconds=-20), "20 s ago"),
        (timedelta(minutes=5, seconds=59), "in 5 min"),
        (timedelta(hours=3, minutes=20), "in 3 h"),
        (timedelta(hours=-47), "47 h ago"),
        (timedelta(days=2), "in 2 d"),
        (timedelta(days=-40), "40 d ago"),
    ],
)
def test_relative_times_round_down_to_one_unit(delta: timedelta, words: str):
    assert relative_time(NOW + delta, now=NOW) == words


@pytest.mark.parametrize(
    ("milliseconds", "text"), [(None, ""), (0, "0 ms"), (143, "143 ms"), (2_450, "2.5 s")]
)
def test_durations(milliseconds: int | None, text: str):
    assert duration_text(milliseconds) == text


def test_the_discord_message_id_comes_from_the_log_message():
    message = "Delivered (HTTP 200, Discord message 1300000000000000001)"
    assert discord_message_id(message) == "1300000000000000001"
    assert discord_message_id("Delivered (HTTP 204)") == ""
    assert discord_message_id(None) == ""


def test_the_resume_note_leaves_the_reason():
    reason = "deactivated after 4 failed attempts: HTTP 500; trying again at 2026-11-30T12:05:00Z"
    assert reason_in_words(reason) == "deactivated after 4 failed attempts: HTTP 500"
    assert reason_in_words("paused through the API") == "paused through the API"
    assert reason_in_words(None) == ""
