"""The health ladder: when a task switched off by transient failures is tried again.

After an occurrence's retries are spent on a transient cause (network error, timeout, 408, 5xx,
a 429 past its wait bound), a task with `auto_resume` is probed again `first` seconds later,
then twice as long after each consecutive failure, up to `max`; once it has been failing for
`give_up` seconds it is not tried again. Pure arithmetic on the ladder's state; the decisions
that use it are in `app.scheduling.attempts`.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, kw_only=True)
class ResumePolicy:
    """AUTO_RESUME_FIRST_SECONDS, AUTO_RESUME_MAX_SECONDS, AUTO_RESUME_GIVE_UP_SECONDS."""

    first_seconds: float = 300.0
    max_seconds: float = 21_600.0
    give_up_seconds: float = 7 * 86_400.0

    def delay(self, failures: int) -> timedelta:
        """The wait before the next probe after `failures` consecutive failures (>= 1):
        `min(max, first * 2**(failures-1))`."""
        exponent = min(max(failures, 1) - 1, 62)
        return timedelta(seconds=min(self.max_seconds, self.first_seconds * 2**exponent))


@dataclass(frozen=True, kw_only=True)
class Ladder:
    """Consecutive failures, since when, and when the next probe is due (None: none is)."""

    failures: int = 0
    failing_since: datetime | None = None
    resume_at: datetime | None = None


HEALTHY = Ladder()


def climb(ladder: Ladder, *, now: datetime, policy: ResumePolicy) -> Ladder:
    """One more consecutive failure: the next probe's time, or none once the failures have
    lasted `give_up_seconds`."""
    failures = ladder.failures + 1
    since = ladder.failing_since or now
    if (now - since).total_seconds() >= policy.give_up_seconds:
        return Ladder(failures=failures, failing_since=since, resume_at=None)
    return Ladder(failures=failures, failing_since=since, resume_at=now + policy.delay(failures))
