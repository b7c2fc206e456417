"""When an empty claim means "another scheduler holds what is due" (pause briefly) and when it
only means "it became due just after the claim read the clock" (claim again at once)."""

from datetime import UTC, datetime, timedelta

from app.scheduling.store import Claim

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def test_work_due_at_the_claim_yet_not_taken_is_held_elsewhere():
    assert Claim(jobs=[], now=NOW).found_only_held_work(NOW - 5 * MS)
    assert Claim(jobs=[], now=NOW).found_only_held_work(NOW)


def test_work_that_became_due_after_the_claim_read_the_clock_is_not_held():
    # The scheduler woke a hair before the due instant: the claim saw nothing due, the query
    # after it sees the task due. It is claimed at once, not after the busy pause.
    assert not Claim(jobs=[], now=NOW).found_only_held_work(NOW + MS)


def test_nothing_due_or_something_claimed_is_not_held_elsewhere():
    assert not Claim(jobs=[], now=NOW).found_only_held_work(None)
    assert not Claim(jobs=[object()], now=NOW).found_only_held_work(NOW - MS)  # type: ignore[list-item]
