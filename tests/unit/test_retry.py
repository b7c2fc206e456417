"""Backoff arithmetic."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.delivery.retry import backoff_seconds, retry_at


class Fixed(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def uniform(self, a: float, b: float) -> float:
        return self.value


@pytest.mark.parametrize(("n", "expected"), [(1, 2), (2, 4), (3, 8), (4, 16), (9, 512), (10, 600)])
def test_doubles_from_the_base_up_to_the_cap(n: int, expected: float):
    assert backoff_seconds(n, base=2, cap=600, rng=Fixed(0.0)) == expected


@pytest.mark.parametrize("jitter", [-0.1, 0.1])
def test_jitter_is_ten_percent_either_way(jitter: float):
    assert backoff_seconds(3, base=2, cap=600, rng=Fixed(jitter)) == pytest.approx(8 * (1 + jitter))


def test_jitter_stays_within_bounds():
    rng = random.Random(7)
    waits = [backoff_seconds(2, base=2, cap=600, rng=rng) for _ in range(1000)]
    assert min(waits) >= 3.6
    assert max(waits) <= 4.4
    assert max(waits) - min(waits) > 0.5  # it really varies


def test_huge_retry_numbers_do_not_overflow():
    assert backoff_seconds(10_000, base=2, cap=600, rng=Fixed(0.0)) == 600


def test_retry_numbers_start_at_one():
    with pytest.raises(ValueError):
        backoff_seconds(0, base=2, cap=600)


def test_retry_at_adds_the_wait():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_at(2, now=now, base=2, cap=600, rng=Fixed(0.0)) == now + timedelta(seconds=4)
