"""The scheduler loop: sleep until the earliest due work, claim it, deliver it without waiting.

One pass claims what is due (in one short transaction), starts a delivery for each claimed
occurrence and, unless it claimed a full batch, asks the database when the next work falls due
and sleeps until then. It is woken early when a task changes (`wake`), by a PostgreSQL NOTIFY
from another replica, or at the latest after `scheduler_poll_seconds` (`IDLE_CHECK_SECONDS` while
a NOTIFY listener is up). Sleeps are asyncio timeouts, which run on the monotonic clock, and due
times are compared with the wall clock when the pass runs, so a stepped clock cannot make a
sleep overshoot.

Deliveries run as asyncio tasks, at most `max_concurrent_deliveries` sending at once (and as
many again claimed and waiting for a slot); a slow webhook holds one slot and delays nobody
else. Finished attempts are recorded in batches: one transaction for whatever finished together.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import transaction
from app.delivery.discord import is_discord_webhook_url
from app.delivery.retry import retry_at
from app.delivery.sender import Delivery, Outcome, Sender
from app.metrics import Metrics
from app.models import utc_now
from app.scheduling import claims
from app.scheduling.claims import Attempt, AttemptRules, Job
from app.scheduling.wakeup import PostgresWakeListener

logger = logging.getLogger(__name__)

T = TypeVar("T")

IDLE_CHECK_SECONDS = 30.0
PRUNE_EVERY_SECONDS = 600.0
# Log retention deletes at most this many rows per transaction, this many times per round.
LOG_PRUNE_BATCH = 5000
LOG_PRUNE_BATCHES = 20
# Short, so that the scheduler (and /readyz) is back within seconds of the database.
DB_RETRY_MAX_SECONDS = 5.0
LISTENER_RETRY_SECONDS = 5.0
RECORD_ATTEMPTS = 5
# A pass that found due rows but could claim none (another replica holds them) waits this long.
BUSY_BACKOFF_SECONDS = 0.05
RECORD_BATCH = 500
RECORD_FLUSH_SECONDS = 1.5
# Claiming pauses while this many sent attempts wait to be recorded (the database is slow).
MAX_UNRECORDED = 2000


class LeaseTooShort(Exception):
    """A claimed job waited so long for a sending slot that its lease could end mid-request."""


def _job_fields(job: Job) -> dict[str, str]:
    return {"task_id": str(job.task_id), "occurrence_id": str(job.occurrence_id)}


def _describe(exc: BaseException) -> str:
    """A short name for a database error, without connection details or SQL."""
    original = getattr(exc, "orig", None)
    return type(original or exc).__name__


def occurrence_headers(job: Job) -> dict[str, str]:
    """Headers that identify the occurrence, constant across retries, so receivers can dedupe."""
    return {
        "Idempotency-Key": str(job.occurrence_id),
        "X-Insignia-Task-Id": str(job.task_id),
        "X-Insignia-Scheduled-For": job.scheduled_for.isoformat().replace("+00:00", "Z"),
        "X-Insignia-Attempt": str(job.attempt + 1),
        "X-Insignia-Trigger": job.trigger,
    }


class Scheduler:
    """Claims due occurrences from the database and delivers them."""

    def __init__(
        self,
        *,
        engine: Engine,
        session_factory: sessionmaker[Session],
        settings: Settings,
        sender: Sender,
        metrics: Metrics | None = None,
        may_schedule: bool = True,
        owner: str | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self.may_schedule = may_schedule
        self._factory = session_factory
        self._settings = settings
        self._sender = sender
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="scheduler-db")
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._slot_free: asyncio.Event | None = None
        self._sending: asyncio.Semaphore | None = None
        self._main: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._attempts: asyncio.Queue[Attempt] = asyncio.Queue()
        self._alerts: set[asyncio.Task[Outcome]] = set()
        self._listener: PostgresWakeListener | None = None
        self._listener_retry_at = 0.0
        self._stopping = False
        self._heartbeat = time.monotonic()
        self._db_problem: str | None = None
        self._last_prune = 0.0
        self._rules = AttemptRules(
            retry_at=lambda n, now: retry_at(
                n,
                now=now,
                base=settings.retry_backoff_base_seconds,
                cap=settings.retry_backoff_max_seconds,
            ),
            max_rate_limit_wait_seconds=settings.max_rate_limit_wait_seconds,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, *, run_loop: bool = True) -> None:
        """Start recording attempts and, with `run_loop`, the claiming loop."""
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._sending = asyncio.Semaphore(self._settings.max_concurrent_deliveries)
        self._recorder = asyncio.create_task(self._record_loop(), name="scheduler-recorder")
        if not run_loop:
            return
        if self._engine.dialect.name == "postgresql":
            self._listener = PostgresWakeListener(self._engine, self.wake)
        self._main = asyncio.create_task(self._run(), name="scheduler")
        logger.info("scheduler started", extra={"owner": self.owner})

    @property
    def looping(self) -> bool:
        """Whether this process's claiming loop runs (SCHEDULER_ENABLED and allowed)."""
        return self._main is not None

    async def run_pass(self, *, max_seconds: float) -> dict[str, int]:
        """Claim and deliver everything due now, for deployments that call the scheduler from
        outside instead of running its loop; wait (up to about `max_seconds`) for the answers."""
        deadline = time.monotonic() + max_seconds
        claimed = 0
        started: list[asyncio.Task[None]] = []
        while time.monotonic() < deadline:
            free = 2 * self._settings.max_concurrent_deliveries - len(self._in_flight)
            if free <= 0:
                await self._wait_for_slot()
                continue
            limit = min(self._settings.scheduler_batch_size, free)
            jobs = await self._db(self._claim, limit)
            started += [self._start_delivery(job) for job in jobs]
            claimed += len(jobs)
            if len(jobs) < limit:
                break
        remaining = max(0.0, deadline - time.monotonic()) + self._settings.delivery_timeout_seconds
        if started:
            await asyncio.wait(started, timeout=remaining)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempts.join(), timeout=RECORD_FLUSH_SECONDS)
        unfinished = sum(1 for task in started if not task.done())
        return {"claimed": claimed, "unfinished": unfinished}

    async def stop(self) -> None:
        """Stop claiming, give in-flight deliveries the grace period, record what was sent,
        and hand back what was not, so that another scheduler can take it at once."""
        self._stopping = True
        self.wake()
        if self._main is not None:
            await asyncio.gather(self._main, return_exceptions=True)
        pending: set[asyncio.Task[None]] = set(self._in_flight.values())
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self._settings.shutdown_grace_seconds)
        unfinished = [job_id for job_id, task in self._in_flight.items() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempts.join(), timeout=RECORD_FLUSH_SECONDS)
        if self._recorder is not None:
            self._recorder.cancel()
            await asyncio.gather(self._recorder, return_exceptions=True)
        if unfinished:
            with contextlib.suppress(SQLAlchemyError):
                await self._db(self._release, unfinished)
            logger.info("released unfinished deliveries", extra={"count": len(unfinished)})
        if self._listener is not None:
            self._listener.close()
        # Do not block the event loop on a database call that hangs; the process is ending.
        self._executor.shutdown(wait=False, cancel_futures=True)
        logger.info("scheduler stopped", extra={"owner": self.owner})

    def wake(self) -> None:
        """Make the loop look at the due work now (callable from any thread)."""
        if self._loop is None or self._wake_event is None:
            return
        # RuntimeError: the loop has closed, so there is nothing left to wake.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._wake_event.set)

    def health_problem(self) -> str | None:
        """None when the loop is alive and reaching the database, else what is wrong."""
        if self._main is None or self._main.done():
            return "scheduler loop is not running"
        if self._recorder is None or self._recorder.done():
            return "delivery recorder is not running"
        if self._db_problem is not None:
            return f"scheduler cannot reach the database: {self._db_problem}"
        stale_after = IDLE_CHECK_SECONDS + DB_RETRY_MAX_SECONDS + 30
        if time.monotonic() - self._heartbeat > stale_after:
            return "scheduler loop heartbeat is stale"
        return None

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._heartbeat = time.monotonic()
            await self._ensure_listener()
            # Claim ahead up to twice the concurrency: a claimed job waits for a sending slot
            # locally, so claims come in fuller batches (its lease covers the short wait).
            free = 2 * self._settings.max_concurrent_deliveries - len(self._in_flight)
            if free <= 0 or self._attempts.qsize() >= MAX_UNRECORDED:
                await self._wait_for_slot()
                continue
            limit = min(self._settings.scheduler_batch_size, free)
            assert self._wake_event is not None
            self._wake_event.clear()
            try:
                jobs = await self._db(self._claim, limit)
                # The claim reached the database: healthy again before any delivery starts.
                failures, self._db_problem = 0, None
                for job in jobs:
                    self._start_delivery(job)
                wake_at = None if len(jobs) >= limit else await self._db(self._next_wake)
                if len(jobs) < limit:
                    await self._maybe_prune()
            except Exception as exc:
                failures += 1
                delay = min(DB_RETRY_MAX_SECONDS, 0.5 * 2**failures)
                self._db_problem = _describe(exc)
                if isinstance(exc, SQLAlchemyError):
                    logger.warning(
                        "scheduler pass failed; retrying",
                        extra={"error": self._db_problem, "retry_in_s": delay},
                    )
                else:
                    logger.exception(
                        "scheduler pass crashed; retrying", extra={"retry_in_s": delay}
                    )
                await self._sleep(delay)
                continue
            if len(jobs) >= limit:
                continue  # a full batch: more may be due right now
            if not jobs and wake_at is not None and wake_at <= utc_now():
                # Due rows exist but another replica holds them: do not spin on the database.
                await self._sleep(BUSY_BACKOFF_SECONDS)
                continue
            await self._sleep_until(wake_at)

    async def _sleep_until(self, wake_at: datetime | None) -> None:
        longest = (
            IDLE_CHECK_SECONDS
            if self._listener is not None and self._listener.active
            else self._settings.scheduler_poll_seconds
        )
        delay = longest
        if wake_at is not None:
            delay = min(longest, (wake_at - utc_now()).total_seconds())
        if delay > 0:
            await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when woken."""
        assert self._wake_event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake_event.wait(), timeout=seconds)

    async def _wait_for_slot(self) -> None:
        assert self._slot_free is not None
        self._slot_free.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._slot_free.wait(), timeout=1.0)

    async def _ensure_listener(self) -> None:
        listener = self._listener
        if listener is None or listener.active or time.monotonic() < self._listener_retry_at:
            return
        try:
            await listener.connect()
        except Exception as exc:
            self._listener_retry_at = time.monotonic() + LISTENER_RETRY_SECONDS
            logger.warning("cannot LISTEN for wake-ups; polling", extra={"error": repr(exc)})

    async def _maybe_prune(self) -> None:
        """Now and then: forget finished occurrences, and log rows past LOG_RETENTION_DAYS."""
        if time.monotonic() - self._last_prune < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = time.monotonic()
        pruned = await self._db(self._prune)
        if pruned:
            logger.info("pruned finished occurrences", extra={"count": pruned})
        days = self._settings.log_retention_days
        if not days:
            return
        before = utc_now() - timedelta(days=days)
        deleted = 0
        for _ in range(LOG_PRUNE_BATCHES):
            batch = await self._db(self._prune_logs, before)
            deleted += batch
            if batch < LOG_PRUNE_BATCH:
                break
        if deleted:
            logger.info("deleted old log rows", extra={"count": deleted, "retention_days": days})

    # -- deliveries ----------------------------------------------------------------------------

    def _start_delivery(self, job: Job) -> asyncio.Task[None]:
        running = self._in_flight.get(job.occurrence_id)
        if running is not None:
            return running  # claimed again while still in flight here: one delivery is enough
        task = asyncio.create_task(self._deliver(job), name=f"deliver-{job.occurrence_id}")
        self._in_flight[job.occurrence_id] = task
        task.add_done_callback(lambda _t, key=job.occurrence_id: self._delivery_done(key))
        return task

    def _delivery_done(self, key: uuid.UUID) -> None:
        self._in_flight.pop(key, None)
        if self._slot_free is not None:
            self._slot_free.set()

    async def _deliver(self, job: Job) -> None:
        try:
            await self._deliver_once(job)
        except LeaseTooShort:
            # Waited so long for a slot that the lease could run out mid-request: hand it back.
            logger.warning("delivery not started: its lease ran short", extra=_job_fields(job))
            with contextlib.suppress(Exception):
                await self._db(self._release, [job.occurrence_id])
        except Exception:
            # A bug, not a delivery failure: the lease runs out and the work is taken again.
            logger.exception("delivery crashed", extra=_job_fields(job))

    async def _deliver_once(self, job: Job) -> None:
        delivery = Delivery(
            url=job.webhook_url, payload=job.payload, headers=occurrence_headers(job)
        )
        outcome = await self._sender.send(delivery, slot=self._sending_slot(job))
        sent_at = outcome.sent_at or utc_now()
        if self._metrics is not None and not outcome.deferred:
            self._metrics.delivery_duration.observe(outcome.duration_ms / 1000)
            if job.attempt == 0:
                lateness = (sent_at - job.scheduled_for).total_seconds()
                self._metrics.firing_lateness.labels(job.trigger).observe(max(0.0, lateness))
        self._attempts.put_nowait(Attempt(job=job, outcome=outcome, started_at=sent_at))

    @contextlib.asynccontextmanager
    async def _sending_slot(self, job: Job) -> AsyncIterator[None]:
        """One of the sending slots, provided the job's lease outlasts the request."""
        assert self._sending is not None
        async with self._sending:
            margin = timedelta(seconds=self._settings.delivery_timeout_seconds)
            if utc_now() + margin >= job.lease_expires_at:
                raise LeaseTooShort
            yield

    async def _record_loop(self) -> None:
        """Record finished attempts in batches: whatever has piled up, in one transaction."""
        while True:
            batch = [await self._attempts.get()]
            while len(batch) < RECORD_BATCH and not self._attempts.empty():
                batch.append(self._attempts.get_nowait())
            try:
                steps = await self._record(batch)
            except Exception:
                # Never let the recorder die: these attempts go unrecorded and their
                # occurrences are delivered again once their leases run out.
                logger.exception("recording deliveries failed", extra={"count": len(batch)})
                steps = ["unrecorded"] * len(batch)
            try:
                for attempt, step in zip(batch, steps, strict=True):
                    _log_attempt(attempt, step)
                    self._count(attempt, step)
                    if step == "deactivated":
                        self._alert_deactivated(attempt)
                if {"retry", "rate_limited", "deferred"} & set(steps):
                    self.wake()  # a retry may be due before what the loop sleeps towards
            except Exception:
                logger.exception("reporting recorded deliveries failed")
            finally:
                for _ in batch:
                    self._attempts.task_done()
                if self._slot_free is not None:
                    self._slot_free.set()

    def _count(self, attempt: Attempt, step: str) -> None:
        if self._metrics is None:
            return
        self._metrics.deliveries.labels(_outcome_label(attempt.outcome)).inc()
        if step == "deactivated":
            self._metrics.deactivations.inc()

    def _alert_deactivated(self, attempt: Attempt) -> None:
        """Tell ALERT_WEBHOOK_URL (when set) that a task was deactivated, and why."""
        url = self._settings.alert_webhook_url
        if not url:
            return
        job = attempt.job
        text = (
            f'Task "{job.task_name}" ({job.task_id}) was deactivated: {attempt.outcome.message}'
        )[:2000]
        payload: dict = {"content": text}
        if not is_discord_webhook_url(url, self._settings.discord_hosts):
            payload |= {
                "event": "task_deactivated",
                "task_id": str(job.task_id),
                "task_name": job.task_name,
                "reason": attempt.outcome.message,
            }
        alert = asyncio.create_task(self._sender.send(Delivery(url=url, payload=payload)))
        self._alerts.add(alert)
        alert.add_done_callback(self._alerts.discard)

    async def _record(self, batch: list[Attempt]) -> list[str]:
        """Record a batch, retrying while the database hiccups. If it stays down, the leases run
        out and the occurrences are delivered again (at least once, never lost)."""
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                return await self._db(self._record_in_db, batch)
            except SQLAlchemyError as exc:
                if attempt == RECORD_ATTEMPTS:
                    logger.error(
                        "could not record deliveries; they will be sent again after their lease",
                        extra={"count": len(batch), "error": _describe(exc)},
                    )
                    return ["unrecorded"] * len(batch)
                await asyncio.sleep(min(DB_RETRY_MAX_SECONDS, 0.2 * 2**attempt))
        return ["unrecorded"] * len(batch)  # pragma: no cover (the loop always returns)

    # -- database work (runs in the scheduler's threads) -----------------------------------------

    async def _db(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    def _claim(self, limit: int) -> list[Job]:
        settings = self._settings
        with transaction(self._factory) as session:
            return claims.claim_due(
                session,
                now=utc_now(),
                owner=self.owner,
                lease=timedelta(seconds=settings.scheduler_lease_seconds),
                limit=limit,
                grace=timedelta(seconds=settings.misfire_grace_seconds),
            )

    def _next_wake(self) -> datetime | None:
        with transaction(self._factory) as session:
            return claims.next_wake_at(session)

    def _record_in_db(self, batch: list[Attempt]) -> list[str]:
        with transaction(self._factory) as session:
            return claims.record_attempts(
                session, attempts=batch, now=utc_now(), owner=self.owner, rules=self._rules
            )

    def _release(self, occurrence_ids: list[uuid.UUID]) -> int:
        with transaction(self._factory) as session:
            return claims.release(
                session, occurrence_ids=occurrence_ids, owner=self.owner, now=utc_now()
            )

    def _prune_logs(self, before: datetime) -> int:
        with transaction(self._factory) as session:
            return claims.prune_logs(session, before=before, limit=LOG_PRUNE_BATCH)

    def _prune(self) -> int:
        with transaction(self._factory) as session:
            return claims.prune_finished(session, now=utc_now())


def _outcome_label(outcome: Outcome) -> str:
    """The `outcome` label of the deliveries counter."""
    if outcome.deferred:
        return "deferred"
    if outcome.success:
        return "success"
    if outcome.retry_after is not None:
        return "rate_limited"
    return "permanent_failure" if outcome.permanent else "transient_failure"


def _log_attempt(attempt: Attempt, step: str) -> None:
    """One log event per attempt: what happened and how late it was, never the URL."""
    job, outcome = attempt.job, attempt.outcome
    extra = {
        "task_id": str(job.task_id),
        "occurrence_id": str(job.occurrence_id),
        "scheduled_for": job.scheduled_for.isoformat(),
        "trigger": job.trigger,
        "retry_count": job.attempt,
        "http_status": outcome.http_status,
        "duration_ms": outcome.duration_ms,
        "lateness_ms": round((attempt.started_at - job.scheduled_for).total_seconds() * 1000),
        "step": step,
    }
    if outcome.deferred:
        logger.debug("delivery deferred: %s", outcome.message, extra=extra)
    elif outcome.success:
        logger.info("delivery succeeded", extra=extra)
    else:
        logger.warning("delivery failed: %s", outcome.message, extra=extra)
