"""Pacing Discord traffic so that it is spread out instead of rejected.

Discord limits each source address to about 50 requests per second across all webhooks (the
global limit), each webhook to a small bucket that its answers describe
(`X-RateLimit-Remaining`, `X-RateLimit-Reset-After`), and bans an address for a while after
10,000 invalid requests (401, 403, 429) in 10 minutes. `DiscordPacer` keeps, per process:

* a global schedule of send slots, `global_rate` per second;
* per webhook, the requests left in its bucket and when the bucket refills; when none are
  left, requests to it wait for the refill instead of drawing a 429;
* a pause of all Discord traffic after a 429 with `global: true`;
* a count of invalid answers in the last 10 minutes; past `INVALID_ALERT_LIMIT` all Discord
  traffic pauses for a minute, far from the ban threshold.

`wait_turn` waits for a request's turn; a caller facing a long wait reschedules the request
instead of holding a connection slot (see `Sender`). Pacing is per process: replicas on
different addresses have separate Discord limits anyway.
"""

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_GLOBAL_RATE = 45.0  # requests per second, under Discord's 50
INVALID_WINDOW_SECONDS = 600.0
INVALID_ALERT_LIMIT = 2500
INVALID_PAUSE_SECONDS = 60.0
MAX_BUCKETS = 10_000
# Waits a server asks for are believed up to a day; longer ones are taken as a day.
MAX_WAIT_SECONDS = 86_400.0


@dataclass
class _Bucket:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one request in flight at a time
    waiting: int = 0
    limit: int | None = None  # requests per refill, once an answer has said
    remaining: int | None = None  # None: unknown
    resets_at: float = 0.0
    window: float = 0.0  # the longest refill delay we were told


class DiscordPacer:
    """Send turns for Discord requests; all times are monotonic seconds."""

    def __init__(
        self, *, global_rate: float = DEFAULT_GLOBAL_RATE, clock: Callable[[], float] | None = None
    ) -> None:
        self._interval = 1.0 / global_rate
        self._clock = clock or time.monotonic
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._buckets: dict[str, _Bucket] = {}
        self._invalid: deque[float] = deque()

    async def wait_turn(self, webhook: str, *, max_wait: float) -> float | None:
        """Wait for this request's turn to go to `webhook`. None: send now, then call
        `finished`. A number: the turn is further away than `max_wait`; try again after that
        many seconds (nothing is held).

        Requests to one webhook go one at a time, each after the answer to the one before, so
        the bucket the answers describe is always known, as Discord's own libraries do.
        """
        if len(self._buckets) > MAX_BUCKETS:
            self._forget_idle_buckets()
        bucket = self._buckets.setdefault(webhook, _Bucket())
        started = self._clock()
        if bucket.lock.locked():
            bucket.waiting += 1
            try:
                await asyncio.wait_for(bucket.lock.acquire(), timeout=max_wait)
            except TimeoutError:
                return max(1.0, bucket.waiting * self._per_request(bucket))
            finally:
                bucket.waiting -= 1
        else:
            await bucket.lock.acquire()
        now = self._clock()
        delay = self._delay(bucket, now)
        if delay > max_wait - (now - started):
            bucket.lock.release()
            return max(delay, 0.1)
        self._next_slot = max(now + delay, self._next_slot) + self._interval
        if bucket.remaining is not None:
            bucket.remaining -= 1
        if delay > 0:
            try:
                await asyncio.sleep(delay)
            except BaseException:  # cancelled while waiting: the turn is given up
                bucket.lock.release()
                raise
        return None

    def finished(self, webhook: str) -> None:
        """The request whose turn it was has ended, answered or not."""
        bucket = self._buckets.get(webhook)
        if bucket is not None and bucket.lock.locked():
            bucket.lock.release()

    def _delay(self, bucket: _Bucket, now: float) -> float:
        """Seconds until the next request to this bucket may go."""
        if bucket.remaining is not None and bucket.resets_at <= now:
            bucket.remaining = bucket.limit  # refilled, as far as we know
        at = max(now, self._paused_until, self._next_slot)
        if bucket.remaining is not None and bucket.remaining <= 0:
            at = max(at, bucket.resets_at)
        return at - now

    def _forget_idle_buckets(self) -> None:
        now = self._clock()
        for key, bucket in list(self._buckets.items()):
            if not bucket.lock.locked() and not bucket.waiting and bucket.resets_at < now:
                del self._buckets[key]

    def _per_request(self, bucket: _Bucket) -> float:
        if bucket.limit and bucket.window:
            return bucket.window / bucket.limit
        return self._interval

    def observe(
        self, webhook: str, *, status: int, headers: Mapping[str, str], body: object
    ) -> None:
        """Learn from an answer: the webhook's bucket, global pauses, invalid-request count."""
        now = self._clock()
        bucket = self._buckets.setdefault(webhook, _Bucket())
        remaining = _number(headers.get("x-ratelimit-remaining"))
        reset_after = _number(headers.get("x-ratelimit-reset-after"))
        limit = _number(headers.get("x-ratelimit-limit"))
        if remaining is not None and reset_after is not None:
            bucket.remaining = int(remaining)
            bucket.resets_at = now + reset_after
            bucket.window = max(bucket.window, reset_after)
            bucket.limit = int(limit) if limit is not None else bucket.limit
        if status in (401, 403, 429):
            self._count_invalid(now)
        if status == 429:
            retry_after = retry_after_seconds(headers, body) or 1.0
            if isinstance(body, dict) and body.get("global") is True:
                self._paused_until = max(self._paused_until, now + retry_after)
            else:
                bucket.remaining = 0
                bucket.resets_at = max(bucket.resets_at, now + retry_after)

    def _count_invalid(self, now: float) -> None:
        self._invalid.append(now)
        while self._invalid and self._invalid[0] < now - INVALID_WINDOW_SECONDS:
            self._invalid.popleft()
        if len(self._invalid) >= INVALID_ALERT_LIMIT:
            self._paused_until = max(self._paused_until, now + INVALID_PAUSE_SECONDS)


def retry_after_seconds(
    headers: Mapping[str, str], body: object, *, now: datetime | None = None
) -> float | None:
    """How long a 429 asks us to wait: Discord's JSON `retry_after` (seconds, a float), else
    the `Retry-After` header in seconds or as an HTTP date; None when the answer does not say.
    At most a day."""
    if isinstance(body, dict):
        value = _number(body.get("retry_after"))
        if value is not None and value >= 0:
            return min(value, MAX_WAIT_SECONDS)
    header = headers.get("retry-after")
    value = _number(header)
    if value is None and header:
        value = _seconds_until(header, now or datetime.now(UTC))
    return min(value, MAX_WAIT_SECONDS) if value is not None and value >= 0 else None


def _seconds_until(http_date: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


def _number(value: object) -> float | None:
    """A finite float from a header or JSON value (clamped to a day), else None."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if number != number:  # NaN
        return None
    return max(-MAX_WAIT_SECONDS, min(number, MAX_WAIT_SECONDS))
