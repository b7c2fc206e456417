"""APScheduler 3 with its SQLAlchemyJobStore on PostgreSQL, in a child process.

Variants (all with one `date` trigger per job and the jobs added while the scheduler is paused):
- `threads`: BackgroundScheduler, ThreadPoolExecutor sized like this service's concurrent
  deliveries, one shared blocking httpx.Client; misfire_grace_time=None, coalesce=False.
- `asyncio`: AsyncIOScheduler, AsyncIOExecutor, one shared httpx.AsyncClient with as many
  connections as this service sends at once; misfire_grace_time=None, coalesce=False.
- `defaults`: AsyncIOScheduler with everything at APScheduler's defaults (misfire_grace_time=1,
  coalesce=True): a job started more than 1 s late is dropped and reported missed.

    python -m bench.peers.apscheduler_peer --variant threads --url URL --receiver URL
"""

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.config import normalize_database_url
from bench.common import temporary_database
from bench.peers.shared import (
    answer,
    child,
    forget_arrivals,
    headers,
    lead_seconds,
    note_registration,
    report,
    round_shape,
    round_timeout,
    stamp,
    summarize,
    wait_for_arrivals,
)

MODULE = "bench.peers.apscheduler_peer"
NAMES = {
    "threads": "APScheduler 3.11 tuned (threads)",
    "asyncio": "APScheduler 3.11 tuned (asyncio)",
    "defaults": "APScheduler 3.11 defaults",
}
TUNED = {"misfire_grace_time": None, "coalesce": False}

_client: httpx.Client | None = None
_async_client: httpx.AsyncClient | None = None
_sending: asyncio.Semaphore | None = None  # tuned: at most `concurrency` requests at once


def post_sync(url: str, scheduled_for: str, key: str) -> None:
    """The job of the `threads` variant: one POST with the shared blocking client."""
    assert _client is not None
    _client.post(url, json={"job": key}, headers=headers(scheduled_for, key)).raise_for_status()


async def post_async(url: str, scheduled_for: str, key: str) -> None:
    """The job of the asyncio variants: one POST with the shared async client."""
    assert _async_client is not None
    async with _sending or contextlib.nullcontext():
        response = await _async_client.post(
            url, json={"job": key}, headers=headers(scheduled_for, key)
        )
    response.raise_for_status()


class Counts:
    """Job events since the round began, as APScheduler reports them."""

    def __init__(self, scheduler: Any) -> None:
        """Listen to the scheduler's job events."""
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED

        self.names = {
            EVENT_JOB_EXECUTED: "executed",
            EVENT_JOB_MISSED: "missed",
            EVENT_JOB_ERROR: "errors",
        }
        self.lock = threading.Lock()
        self.reset()
        scheduler.add_listener(self.on_event, sum(self.names))

    def reset(self) -> None:
        """Zero the counts."""
        with self.lock:
            self.counts = dict.fromkeys(self.names.values(), 0)

    def on_event(self, event: Any) -> None:
        """Count one job event (called from whichever thread ran the job)."""
        with self.lock:
            self.counts[self.names[event.code]] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts as they are now."""
        with self.lock:
            return dict(self.counts)


def handle(scheduler: Any, command: dict[str, Any], counts: Counts, receiver: str, job) -> dict:
    """Answer one command: `round` adds the jobs (paused, so adding is not what gets measured)
    and answers with the due time; `stats` answers with the job events of the round."""
    if command["do"] == "stats":
        return counts.snapshot()
    counts.reset()
    began = time.time()
    due = datetime.now(UTC) + timedelta(seconds=command["lead"])
    scheduler.pause()
    for i in range(command["jobs"]):
        at = due + timedelta(seconds=i * command["spacing"])
        key = f"aps-{command['round']}-{i}"
        args = [f"{receiver}/hook", stamp(at), key]
        scheduler.add_job(job, "date", run_date=at, args=args, id=key)
    scheduler.resume()
    return {"due": due.timestamp(), "began": began, "added": time.time()}


def run_threads(url: str, receiver: str, concurrency: int) -> None:
    """The `threads` variant: a BackgroundScheduler answering commands read from stdin."""
    global _client
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    _client = httpx.Client(timeout=15, limits=limits)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        executors={"default": ThreadPoolExecutor(concurrency)},
        job_defaults=TUNED,
        timezone=UTC,
    )
    counts = Counts(scheduler)
    scheduler.start()
    try:
        for line in sys.stdin:
            answer(handle(scheduler, json.loads(line), counts, receiver, post_sync))
    finally:
        scheduler.shutdown(wait=False)
        _client.close()


async def run_asyncio(url: str, receiver: str, concurrency: int, tuned: bool) -> None:
    """The asyncio variants: an AsyncIOScheduler answering commands read from stdin."""
    global _async_client, _sending
    from apscheduler.executors.asyncio import AsyncIOExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    options: dict[str, Any] = {"jobstores": {"default": SQLAlchemyJobStore(url=url)}}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx defaults
    if tuned:
        options |= {"executors": {"default": AsyncIOExecutor()}, "job_defaults": TUNED}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        _sending = asyncio.Semaphore(concurrency)
    _async_client = httpx.AsyncClient(timeout=15, limits=limits)
    scheduler = AsyncIOScheduler(timezone=UTC, **options)
    counts = Counts(scheduler)
    scheduler.start()
    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            answer(handle(scheduler, json.loads(line), counts, receiver, post_async))
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.1)
        await _async_client.aclose()


# --- in the parent --------------------------------------------------------------------------


def measure(
    variant: str, receiver: str, counts: list[int], concurrency: int, logs: Path, rows: list
) -> None:
    """Every round of one variant, on a throw-away PostgreSQL schema for its job table."""
    with temporary_database("postgresql") as url:
        args = ["--variant", variant, "--url", normalize_database_url(url)]
        args += ["--receiver", receiver, "--concurrency", str(concurrency)]
        with child(MODULE, args, logs / f"apscheduler-{variant}.log") as process:
            per_job = 0.005  # seconds to add one job; learnt from each round for the next
            for number, count in enumerate(counts):
                row, per_job = one_round(process, NAMES[variant], receiver, number, count, per_job)
                rows.append(row)
                report(row)


def one_round(process, system: str, receiver: str, number: int, count: int, per_job: float):
    """One round: add the jobs in the child, wait for the receiver; the row and the add rate."""
    forget_arrivals(receiver)
    jobs, spacing = round_shape(count)
    lead = lead_seconds(jobs, per_job)
    command = {"do": "round", "round": number, "jobs": jobs, "spacing": spacing, "lead": lead}
    started = process.ask(command, timeout=lead + 600)
    stats: dict[str, int] = {}

    def accounted(received: int) -> int:
        """Deliveries received plus jobs APScheduler says will not deliver."""
        stats.update(process.ask({"do": "stats"}, timeout=600))
        return received + stats["missed"] + stats["errors"]

    got = wait_for_arrivals(receiver, jobs, round_timeout(jobs, spacing), accounted)
    stats.update(process.ask({"do": "stats"}, timeout=600))
    row = summarize(system, count, got, jobs)
    note_registration(row, jobs, started["began"], started["added"], started["due"])
    if stats["missed"] or stats["errors"]:
        row["notes"].append(
            f"{stats['missed']} jobs reported missed (started more than misfire_grace_time"
            f" late), {stats['errors']} raised"
        )
    return row, max(0.0005, (started["added"] - started["began"]) / jobs)


def main() -> int:
    """The child: one variant, commands on stdin, answers on stdout; ends with its input."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=sorted(NAMES), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--receiver", required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    if args.variant == "threads":
        run_threads(args.url, args.receiver, args.concurrency)
    else:
        tuned = args.variant == "asyncio"
        asyncio.run(run_asyncio(args.url, args.receiver, args.concurrency, tuned))
    return 0


if __name__ == "__main__":
    sys.exit(main())
