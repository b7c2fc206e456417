"""Retry timing: exponential backoff with jitter, as a small pure function."""

import random
from datetime import datetime, timedelta

JITTER_FRACTION = 0.10


def backoff_seconds(
    retry_number: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Wait before retry n (n >= 1): `min(cap, base * 2**(n-1))`, then ±10 % jitter.

    The jitter spreads retries of many tasks that failed together (a webhook host that went
    down) so they do not all come back at the same instant.
    """
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    # Cap the exponent first: 2**(n-1) for a large n would be a huge float for nothing.
    wait = min(cap, base * 2 ** min(retry_number - 1, 62))
    jitter = (rng or random).uniform(-JITTER_FRACTION, JITTER_FRACTION)
    return wait * (1 + jitter)


def retry_at(
    retry_number: int, *, now: datetime, base: float, cap: float, rng: random.Random | None = None
) -> datetime:
    """The instant retry n is due when the attempt before it ended at `now`."""
    return now + timedelta(seconds=backoff_seconds(retry_number, base=base, cap=cap, rng=rng))
