"""What came of one delivery attempt: the sender's answer to the engine.

OutcomeKind
├── SUCCESS             2xx
├── TRANSIENT_FAILURE   network errors, timeouts, 408, 5xx: retry with backoff
├── PERMANENT_FAILURE   other 4xx, redirects, refused targets: never retried
├── RATE_LIMITED        429: wait as told; does not spend a retry (up to a bound)
└── DEFERRED            nothing was sent: Discord pacing asked for a long wait
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class OutcomeKind(StrEnum):
    """The kinds of outcome; each value is also the `outcome` label of the metrics."""

    SUCCESS = "success"
    TRANSIENT_FAILURE = "transient_failure"
    PERMANENT_FAILURE = "permanent_failure"
    RATE_LIMITED = "rate_limited"
    DEFERRED = "deferred"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One attempt's result. `retry_after`: the wait a 429 or pacing asked for (seconds);
    `message_id`: the Discord message created; `sent_at`: when the request left (None:
    nothing was sent)."""

    kind: OutcomeKind
    message: str
    duration_ms: int = 0
    http_status: int | None = None
    response_body: str | None = None
    retry_after: float | None = None
    message_id: str | None = None
    sent_at: datetime | None = None

    @property
    def success(self) -> bool:
        return self.kind is OutcomeKind.SUCCESS

    @property
    def permanent(self) -> bool:
        return self.kind is OutcomeKind.PERMANENT_FAILURE

    @property
    def deferred(self) -> bool:
        return self.kind is OutcomeKind.DEFERRED
