"""Recording finished attempts in batches, and reporting what each one led to.

Deliveries put their `Attempt`s on the recorder's queue; one loop takes whatever has piled up
(up to `RECORD_BATCH`), has the store decide and write it in one transaction, then reports each
decision's `Step`: a log event, metrics, and an alert for a deactivation. While the database is
unreachable the batch is retried, for as long as the leases last; past that the occurrences
are taken over and sent again (at least once, never lost).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from app.delivery.outcome import OutcomeKind
from app.domain import Trigger
from app.metrics import Metrics
from app.redaction import url_host
from app.scheduling.alerts import Alerter
from app.scheduling.attempts import Attempt, Decision, Step
from app.scheduling.store import is_connection_trouble

logger = logging.getLogger(__name__)

RECORD_BATCH = 500
RECORD_RETRY_MAX_SECONDS = 5.0
# Steps after which the occurrence is due again soon: the loop may need to wake earlier.
SOON_AGAIN = frozenset({Step.RETRY_SCHEDULED, Step.RATE_LIMITED, Step.DEFERRED})

# The level and text of each outcome's event; any other outcome is a failure.
EVENTS = {
    OutcomeKind.DEFERRED: (logging.DEBUG, "delivery deferred: %s"),
    OutcomeKind.SUCCESS: (logging.INFO, "delivery succeeded"),
}
FAILED_EVENT = (logging.WARNING, "delivery failed: %s")

RecordBatch = Callable[[list[Attempt]], Awaitable[list[Decision]]]


class Recorder:
    """The queue of attempts to record, and the loop that records and reports them."""

    def __init__(
        self,
        *,
        record: RecordBatch,
        retry_for_seconds: float,
        metrics: Metrics | None,
        alerter: Alerter | None,
        after_batch: Callable[[list[Decision]], None],
    ) -> None:
        self._record_batch = record
        self._retry_for = retry_for_seconds
        self._metrics = metrics
        self._alerter = alerter
        self._after_batch = after_batch
        self._queue: asyncio.Queue[Attempt] = asyncio.Queue()

    def put(self, attempt: Attempt) -> None:
        self._queue.put_nowait(attempt)

    @property
    def backlog(self) -> int:
        """Attempts waiting to be recorded."""
        return self._queue.qsize()

    async def flush(self, *, timeout: float) -> None:
        """Wait (up to `timeout`) until everything queued so far is recorded."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout=timeout)

    async def run(self) -> None:
        """Record and report, batch after batch, until cancelled; never dies of an error."""
        while True:
            batch = [await self._queue.get()]
            while len(batch) < RECORD_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                decisions = await self._record(batch)
                for attempt, decision in zip(batch, decisions, strict=True):
                    self._report(attempt, decision)
                self._after_batch(decisions)
            except Exception:
                logger.exception("recording deliveries failed", extra={"count": len(batch)})
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _record(self, batch: list[Attempt]) -> list[Decision]:
        """The batch's decisions, retrying while the database is unreachable."""
        deadline = time.monotonic() + self._retry_for
        tries = 0
        while True:
            try:
                return await self._record_batch(batch)
            except Exception as exc:
                tries += 1
                if not is_connection_trouble(exc) or time.monotonic() > deadline:
                    logger.error(
                        "could not record deliveries; they will be sent again after their lease",
                        extra={"count": len(batch), "error": type(exc).__name__},
                    )
                    return [Decision(step=Step.DROPPED)] * len(batch)
                await asyncio.sleep(min(RECORD_RETRY_MAX_SECONDS, 0.2 * 2**tries))

    def _report(self, attempt: Attempt, decision: Decision) -> None:
        log_attempt(attempt, decision.step)
        self._count(attempt, decision)
        change = decision.task
        if decision.alert is not None and self._alerter is not None and change is not None:
            reason = change.status_reason or attempt.outcome.message
            resume_at = change.ladder.resume_at if change.ladder is not None else None
            self._alerter.send(decision.alert, attempt.job, reason=reason, resume_at=resume_at)

    def _count(self, attempt: Attempt, decision: Decision) -> None:
        if self._metrics is None:
            return
        if attempt.job.trigger is Trigger.PROBE:
            self._metrics.probes.labels(decision.step.value).inc()
        else:
            self._metrics.deliveries.labels(attempt.outcome.kind.value).inc()
        if decision.step is Step.DEACTIVATED:
            self._metrics.deactivations.inc()
        if decision.step is Step.RESUMED:
            self._metrics.recoveries.inc()


def log_attempt(attempt: Attempt, step: Step) -> None:
    """One log event per attempt: what happened and how late it was. The target is named by
    the task id and the webhook's host, never the URL (its path and query hold secrets)."""
    job, outcome = attempt.job, attempt.outcome
    level, text = EVENTS.get(outcome.kind, FAILED_EVENT)
    if not logger.isEnabledFor(level):
        return
    extra = {
        "task_id": str(job.task_id),
        "host": url_host(job.webhook_url),
        "occurrence_id": str(job.occurrence_id),
        "scheduled_for": job.scheduled_for.isoformat(),
        "trigger": job.trigger.value,
        "retry_count": job.attempt,
        "http_status": outcome.http_status,
        "duration_ms": outcome.duration_ms,
        "lateness_ms": round((attempt.started_at - job.scheduled_for).total_seconds() * 1000),
        "step": step.value,
    }
    args = () if outcome.kind is OutcomeKind.SUCCESS else (outcome.message,)
    logger.log(level, text, *args, extra=extra)
