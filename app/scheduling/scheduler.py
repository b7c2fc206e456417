"""The scheduler loop: sleep until the earliest due work, claim it, deliver it without waiting.

One pass claims what is due (one short transaction in `OccurrenceStore`), starts a delivery for
each claimed occurrence and, unless it claimed a full batch, asks the database when the next
work falls due and sleeps until then. It is woken early when a task changes (`wake`), by a
PostgreSQL NOTIFY from another replica, or at the latest after `scheduler_poll_seconds`
(`IDLE_CHECK_SECONDS` while a NOTIFY listener is up). Sleeps are asyncio timeouts, which run on
the monotonic clock; due times and leases are the database's clock, and this process's own
clock is only used through its measured offset from it, so a skewed or stepped local clock
neither fires early nor takes over a lease early.

Deliveries run as asyncio tasks, at most `max_concurrent_deliveries` sending at once (and as
many again claimed and waiting for a slot); a slow webhook holds one slot and delays nobody
else. Finished attempts go to the `Recorder`, which records them in batches.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.delivery.outcome import Outcome
from app.delivery.sender import Sender
from app.domain import Trigger
from app.metrics import Metrics
from app.models import utc_now
from app.scheduling.alerts import Alerter
from app.scheduling.attempts import Attempt, Decision, Job, RetryPolicy
from app.scheduling.ladder import ResumePolicy
from app.scheduling.outgoing import delivery_for
from app.scheduling.recorder import SOON_AGAIN, Recorder
from app.scheduling.store import Claim, OccurrenceStore
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
# A pass that found due rows but could claim none (another replica holds them) waits this long.
BUSY_BACKOFF_SECONDS = 0.05
RECORD_FLUSH_SECONDS = 1.5
# Claiming pauses while this many sent attempts wait to be recorded (the database is slow).
MAX_UNRECORDED = 2000
# A local clock further than this from the database's is worth a warning at start.
CLOCK_WARNING_SECONDS = 1.0


class SchedulerBusy(Exception):
    """Another process holds this SQLite database's scheduler lock."""


class LeaseTooShort(Exception):
    """A claimed job waited so long for a sending slot that its lease could end mid-request."""


def _job_fields(job: Job) -> dict[str, str]:
    return {"task_id": str(job.task_id), "occurrence_id": str(job.occurrence_id)}


def _describe(exc: BaseException) -> str:
    """A short name for a database error, without connection details or SQL."""
    original = getattr(exc, "orig", None)
    return type(original or exc).__name__


class SendingSlot:
    """Holds one of the semaphore's slots while a request is made; raises LeaseTooShort on
    entry (holding nothing) when `lease_holds()` says the job's lease could end mid-request. A
    class rather than a generator context manager: one is entered for every delivery."""

    __slots__ = ("_lease_holds", "_semaphore")

    def __init__(self, semaphore: asyncio.Semaphore, lease_holds: Callable[[], bool]) -> None:
        self._semaphore = semaphore
        self._lease_holds = lease_holds

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()
        if not self._lease_holds():
            self._semaphore.release()
            raise LeaseTooShort

    async def __aexit__(self, *_exc: object) -> None:
        self._semaphore.release()


class Scheduler:
    """Claims due occurrences from the database and delivers them.

    `clock` is this process's wall clock (the sender must use the same one); it is compared with
    the database's at every claim, and only that offset-corrected time is used."""

    def __init__(
        self,
        *,
        engine: Engine,
        session_factory: sessionmaker[Session],
        settings: Settings,
        sender: Sender,
        metrics: Metrics | None = None,
        may_schedule: bool = True,
        pass_lock: Callable[[], Any] | None = None,
        owner: str | None = None,
        clock: Callable[[], datetime] = utc_now,
        store: OccurrenceStore | None = None,
    ) -> None:
        self._engine = engine
        self.may_schedule = may_schedule
        self._pass_lock = pass_lock  # taken for each external pass (SQLite, no loop here)
        self._settings = settings
        self._sender = sender
        self._clock = clock
        self._offset = timedelta(0)  # the database's clock minus ours
        self.store = store or OccurrenceStore(session_factory)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._policy = retry_policy(settings)
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="scheduler-db")
        self._metrics = metrics
        self._recorder = self._new_recorder()
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_event: asyncio.Event | None = None
        self._slot_free: asyncio.Event | None = None
        self._sending: asyncio.Semaphore | None = None
        self._main: asyncio.Task[None] | None = None
        self._recording: asyncio.Task[None] | None = None
        self._listener: PostgresWakeListener | None = None
        self._listener_retry_at = 0.0
        self._stopping = False
        self._heartbeat = time.monotonic()
        self._db_problem: str | None = None
        self._last_prune: float | None = None

    def _new_recorder(self) -> Recorder:
        return Recorder(
            record=self._record,
            retry_for_seconds=self._settings.scheduler_lease_seconds,
            metrics=self._metrics,
            alerter=_alerter(self._settings, self._sender),
            after_batch=self._after_batch,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, *, run_loop: bool = True) -> None:
        """Start recording attempts and, with `run_loop`, the claiming loop."""
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._sending = asyncio.Semaphore(self._settings.max_concurrent_deliveries)
        self._recording = asyncio.create_task(self._recorder.run(), name="scheduler-recorder")
        if not run_loop:
            return
        await self._check_clock()
        if self._engine.dialect.name == "postgresql":
            self._listener = PostgresWakeListener(self._engine, self.wake)
        self._main = asyncio.create_task(self._run(), name="scheduler")
        logger.info("scheduler started", extra={"owner": self.owner})

    @property
    def sender(self) -> Sender:
        """The process's delivery sender (its HTTP client and Discord pacing)."""
        return self._sender

    @property
    def looping(self) -> bool:
        """Whether this process's claiming loop runs (SCHEDULER_ENABLED and allowed)."""
        return self._main is not None

    async def run_pass(self, *, max_seconds: float) -> dict[str, int]:
        """Claim and deliver everything due now, for deployments that call the scheduler from
        outside instead of running its loop; wait (up to about `max_seconds`) for the answers.
        Raises SchedulerBusy when another process holds the SQLite scheduler lock."""
        if self._pass_lock is None:
            return await self._run_pass(max_seconds)
        lock = self._pass_lock()
        if lock is None:
            raise SchedulerBusy
        try:
            return await self._run_pass(max_seconds)
        finally:
            lock.close()

    async def _run_pass(self, max_seconds: float) -> dict[str, int]:
        deadline = time.monotonic() + max_seconds
        claimed = 0
        started: list[asyncio.Task[None]] = []
        while time.monotonic() < deadline:
            limit = self._claim_room()
            if limit <= 0:
                await self._wait_for_slot()
                continue
            jobs = (await self._claim(limit)).jobs
            started += [self._start_delivery(job) for job in jobs]
            claimed += len(jobs)
            if len(jobs) < limit:
                break
        remaining = max(0.0, deadline - time.monotonic()) + self._settings.delivery_timeout_seconds
        if started:
            await asyncio.wait(started, timeout=remaining)
        await self._recorder.flush(timeout=RECORD_FLUSH_SECONDS)
        unfinished = sum(1 for task in started if not task.done())
        return {"claimed": claimed, "unfinished": unfinished}

    async def stop(self) -> None:
        """Stop claiming, give in-flight deliveries the grace period, record what was sent,
        and hand back what was not, so that another scheduler can take it at once."""
        self._stopping = True
        self.wake()
        if self._main is not None:
            await asyncio.gather(self._main, return_exceptions=True)
        unfinished = await self._finish_deliveries(self._settings.shutdown_grace_seconds)
        await self._recorder.flush(timeout=RECORD_FLUSH_SECONDS)
        if self._recording is not None:
            self._recording.cancel()
            await asyncio.gather(self._recording, return_exceptions=True)
        if unfinished:
            with contextlib.suppress(SQLAlchemyError):
                await self._db(self.store.release, unfinished, owner=self.owner)
            logger.info("released unfinished deliveries", extra={"count": len(unfinished)})
        if self._listener is not None:
            self._listener.close()
        # Do not block the event loop on a database call that hangs; the process is ending.
        self._executor.shutdown(wait=False, cancel_futures=True)
        logger.info("scheduler stopped", extra={"owner": self.owner})

    async def _finish_deliveries(self, grace: float) -> list[uuid.UUID]:
        """Let in-flight deliveries finish for `grace` seconds; cancel the rest, whose
        occurrence ids are returned."""
        pending: set[asyncio.Task[None]] = set(self._in_flight.values())
        if pending:
            _, pending = await asyncio.wait(pending, timeout=grace)
        unfinished = [job_id for job_id, task in self._in_flight.items() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return unfinished

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
        if self._recording is None or self._recording.done():
            return "delivery recorder is not running"
        if self._db_problem is not None:
            return f"scheduler cannot reach the database: {self._db_problem}"
        stale_after = IDLE_CHECK_SECONDS + DB_RETRY_MAX_SECONDS + 30
        if time.monotonic() - self._heartbeat > stale_after:
            return "scheduler loop heartbeat is stale"
        return None

    # -- time ----------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The database's time, as this process best knows it between queries."""
        return self._clock() + self._offset

    def _observe_database_time(self, database_now: datetime, asked_at: datetime) -> None:
        # The database read its clock between our two readings: take the middle.
        self._offset = database_now - (asked_at + (self._clock() - asked_at) / 2)

    async def _check_clock(self) -> None:
        """Measure the offset now, and warn when this machine's clock is far off."""
        with contextlib.suppress(Exception):  # an unreachable database is the loop's problem
            asked_at = self._clock()
            self._observe_database_time(await self._db(self.store.now), asked_at)
            if abs(self._offset.total_seconds()) > CLOCK_WARNING_SECONDS:
                logger.warning(
                    "this machine's clock is off the database's; using the database's",
                    extra={"offset_seconds": round(self._offset.total_seconds(), 3)},
                )

    # -- the loop ------------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            self._heartbeat = time.monotonic()
            await self._ensure_listener()
            limit = self._claim_room()
            if limit <= 0 or self._recorder.backlog >= MAX_UNRECORDED:
                await self._wait_for_slot()
                continue
            assert self._wake_event is not None
            self._wake_event.clear()
            try:
                claim = await self._claim(limit)
                # The claim reached the database: healthy again before any delivery starts.
                failures, self._db_problem = 0, None
                for job in claim.jobs:
                    self._start_delivery(job)
                if len(claim.jobs) >= limit:
                    continue  # a full batch: more may be due right now
                wake_at = await self._next_wake()
                await self._maybe_prune()
            except Exception as exc:
                failures += 1
                await self._after_failed_pass(exc, failures)
                continue
            if claim.found_only_held_work(wake_at):
                # Another replica holds what is due: do not spin on the database.
                await self._sleep(BUSY_BACKOFF_SECONDS)
                continue
            await self._sleep_until(wake_at)  # already due: no sleep, claim again

    def _claim_room(self) -> int:
        """How many occurrences the next claim may take. Claims run ahead up to twice the
        concurrency: a claimed job waits for a sending slot locally, so claims come in fuller
        batches (its lease covers the short wait)."""
        free = 2 * self._settings.max_concurrent_deliveries - len(self._in_flight)
        return min(self._settings.scheduler_batch_size, free)

    async def _after_failed_pass(self, exc: Exception, failures: int) -> None:
        delay = min(DB_RETRY_MAX_SECONDS, 0.5 * 2**failures)
        self._db_problem = _describe(exc)
        if isinstance(exc, SQLAlchemyError):
            logger.warning(
                "scheduler pass failed; retrying",
                extra={"error": self._db_problem, "retry_in_s": delay},
            )
        else:
            logger.exception("scheduler pass crashed; retrying", extra={"retry_in_s": delay})
        await self._sleep(delay)

    async def _sleep_until(self, wake_at: datetime | None) -> None:
        longest = (
            IDLE_CHECK_SECONDS
            if self._listener is not None and self._listener.active
            else self._settings.scheduler_poll_seconds
        )
        delay = longest
        if wake_at is not None:
            delay = min(longest, (wake_at - self.now()).total_seconds())
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
        since = None if self._last_prune is None else time.monotonic() - self._last_prune
        if since is not None and since < PRUNE_EVERY_SECONDS:
            return
        self._last_prune = time.monotonic()
        pruned = await self._db(self.store.prune_finished)
        if pruned:
            logger.info("pruned finished occurrences", extra={"count": pruned})
        days = self._settings.log_retention_days
        created, dropped = await self._db(
            self.store.maintain_log_partitions, retention=timedelta(days=days) if days else None
        )
        if created or dropped:
            logger.info("log partitions", extra={"created": created, "dropped": dropped})
        if not days:
            return
        deleted = 0
        for _ in range(LOG_PRUNE_BATCHES):
            batch = await self._db(
                self.store.prune_logs, retention=timedelta(days=days), limit=LOG_PRUNE_BATCH
            )
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
                await self._db(self.store.release, [job.occurrence_id], owner=self.owner)
        except Exception:
            # A bug, not a delivery failure: the lease runs out and the work is taken again.
            logger.exception("delivery crashed", extra=_job_fields(job))

    async def _deliver_once(self, job: Job) -> None:
        outcome = await self._attempt(job)
        sent_at = outcome.sent_at + self._offset if outcome.sent_at else self.now()
        # It was claimed once the database's clock reached its due time, so it cannot have
        # started earlier; the estimate of the clocks' offset can be a millisecond off.
        sent_at = max(sent_at, job.scheduled_for)
        if self._metrics is not None and not outcome.deferred:
            self._metrics.delivery_duration.observe(outcome.duration_ms / 1000)
            if job.attempt == 0:
                lateness = (sent_at - job.scheduled_for).total_seconds()
                self._metrics.firing_lateness.labels(job.trigger.value).observe(max(0.0, lateness))
        self._recorder.put(Attempt(job=job, outcome=outcome, started_at=sent_at))

    async def _attempt(self, job: Job) -> Outcome:
        """Make the job's request(s): a delivery, a health probe, or a message's deletion."""
        match job.trigger:
            case Trigger.PROBE:
                async with self._sending_slot(job):
                    return await self._sender.probe(job.webhook_url)
            case Trigger.DELETE:
                async with self._sending_slot(job):
                    return await self._sender.delete_message(job.webhook_url, job.message_id or "")
        prepared = delivery_for(
            job,
            discord_hosts=self._settings.discord_hosts,
            default_secret=self._settings.default_signing_secret,
            now=self.now(),
        )
        if isinstance(prepared, Outcome):
            return prepared
        return await self._sender.send(prepared, slot=self._sending_slot(job))

    def _sending_slot(self, job: Job) -> SendingSlot:
        """One of the sending slots, provided the job's lease outlasts the request."""
        assert self._sending is not None
        margin = timedelta(seconds=self._settings.delivery_timeout_seconds)
        return SendingSlot(self._sending, lambda: self.now() + margin < job.lease_expires_at)

    def _after_batch(self, decisions: list[Decision]) -> None:
        """After a batch is recorded: wake the loop for retries that may be due soon, and let
        claiming go on (it pauses while too much waits to be recorded)."""
        if any(decision.step in SOON_AGAIN for decision in decisions):
            self.wake()
        if self._slot_free is not None:
            self._slot_free.set()

    # -- database work (runs in the scheduler's threads) -----------------------------------------

    async def _db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    async def _claim(self, limit: int) -> Claim:
        settings = self._settings
        asked_at = self._clock()
        claim = await self._db(
            self.store.claim,
            owner=self.owner,
            limit=limit,
            lease=timedelta(seconds=settings.scheduler_lease_seconds),
            grace=timedelta(seconds=settings.misfire_grace_seconds),
        )
        self._observe_database_time(claim.now, asked_at)
        return claim

    async def _next_wake(self) -> datetime | None:
        asked_at = self._clock()
        wake_at, now = await self._db(self.store.next_wake)
        self._observe_database_time(now, asked_at)
        return wake_at

    async def _record(self, batch: list[Attempt]) -> list[Decision]:
        return await self._db(self.store.record, batch, owner=self.owner, policy=self._policy)


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy the settings describe."""
    return RetryPolicy(
        backoff_base_seconds=settings.retry_backoff_base_seconds,
        backoff_max_seconds=settings.retry_backoff_max_seconds,
        max_rate_limit_wait_seconds=settings.max_rate_limit_wait_seconds,
        resume=ResumePolicy(
            first_seconds=settings.auto_resume_first_seconds,
            max_seconds=settings.auto_resume_max_seconds,
            give_up_seconds=settings.auto_resume_give_up_seconds,
        ),
    )


def _alerter(settings: Settings, sender: Sender) -> Alerter | None:
    if not settings.alert_webhook_url:
        return None
    return Alerter(
        sender=sender, url=settings.alert_webhook_url, discord_hosts=settings.discord_hosts
    )
