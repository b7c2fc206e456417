"""Celery on the local Redis: a worker, and for the beat variant RedBeat's beat, each a process
of its own started with the `celery` command as a user would run them.

- `beat`: every job a RedBeat entry (a schedule kept in Redis, added to while beat runs) with a
  one-off `rrule(SECONDLY, dtstart=due, count=1)`; `beat_max_loop_interval` = 1 s, so a new
  entry is seen within a second however far ahead its due time is. Worker: the threads pool.
- `eta`: every job a message sent at once with `apply_async(eta=due)`; the worker holds it in
  memory until its ETA. Worker: the prefork pool.

Either pool has as many slots as this service sends requests at once (100 by default); each
mode has the pool that delivered a burst fastest for it here (threads: 1000 beat-sent tasks in
about 2 s, but 1000 ETA tasks in about 50 s; prefork: about 3 s for those, 4-6 s for beat's;
gevent was slower than the better of the two for each). The task POSTs its JSON payload with
one httpx.Client per worker process, made when the process starts, retrying HTTP errors with
backoff; results are not stored (`ignore_result`: nobody reads them). The module is also the
Celery app the worker and beat load (`celery -A bench.peers.celery_peer`).
"""

import contextlib
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from celery import Celery
from celery.signals import worker_process_init, worker_ready

from bench.peers.shared import (
    ROOT,
    forget_arrivals,
    headers,
    lead_seconds,
    note_registration,
    poll_until,
    report,
    round_shape,
    round_timeout,
    stamp,
    stop_process,
    summarize,
    wait_for_arrivals,
)

DEFAULT_REDIS = "redis://127.0.0.1:6379/13"  # a database number nothing else here uses
REDIS_URL = os.environ.get("BENCH_CELERY_REDIS", DEFAULT_REDIS)
CONCURRENCY = int(os.environ.get("BENCH_CELERY_CONCURRENCY", "100"))
KEY_PREFIX = "bench-redbeat:"
TASK = "bench.post_webhook"
SPACING = 1.0  # N = 1 as a series one second apart: an rrule has whole-second resolution
NAMES = {"beat": "Celery 5.6 + RedBeat 2.4 beat", "eta": "Celery 5.6 apply_async(eta)"}
POOLS = {"beat": "threads", "eta": "prefork"}

app = Celery("bench_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    timezone="UTC",
    enable_utc=True,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    beat_max_loop_interval=1,
    redbeat_redis_url=REDIS_URL,
    redbeat_key_prefix=KEY_PREFIX,
)

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """The worker process's one HTTP client, with as many connections as the pool has slots."""
    global _client
    with _client_lock:
        if _client is None:
            size = CONCURRENCY
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            _client = httpx.Client(timeout=15, limits=limits)
        return _client


@worker_process_init.connect
@worker_ready.connect
def make_client(**_: object) -> None:
    """Make the client when a process that runs tasks starts, not on its first task."""
    client()


@app.task(
    name=TASK,
    ignore_result=True,
    autoretry_for=(httpx.HTTPError,),
    retry_backoff=True,
    max_retries=5,
)
def post_webhook(url: str, scheduled_for: str, key: str) -> None:
    """The job: one POST of a JSON payload to the receiver."""
    response = client().post(url, json={"job": key}, headers=headers(scheduled_for, key))
    response.raise_for_status()


# --- in the parent --------------------------------------------------------------------------


def redis_client():
    """A plain client of the benchmark's Redis database."""
    import redis

    return redis.Redis.from_url(REDIS_URL)


def start(args: list[str], log_path: Path, pool_env: dict[str, str]) -> subprocess.Popen:
    """`celery -A bench.peers.celery_peer ARGS` in its own process, its output in a log file."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.peers.celery_peer", *args],
            cwd=log_path.parent,  # beat and the worker leave no files in the repository
            env={**os.environ, **pool_env, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextlib.contextmanager
def running(mode: str, pool: str, concurrency: int, logs: Path) -> Iterator[None]:
    """The worker (and for `beat`, beat with RedBeat) for the length of a `with` block."""
    env = {"BENCH_CELERY_REDIS": REDIS_URL, "BENCH_CELERY_CONCURRENCY": str(concurrency)}
    worker_args = ["worker", "-P", pool, "-c", str(concurrency), "-l", "WARNING"]
    worker_args += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    processes = [start(worker_args, logs / f"celery-worker-{mode}.log", env)]
    try:
        poll_until(lambda: app.control.ping(timeout=0.5), 60, "the Celery worker")
        if mode == "beat":
            beat_args = ["beat", "-S", "redbeat.RedBeatScheduler", "-l", "WARNING"]
            processes.append(start(beat_args, logs / "celery-beat.log", env))
            lock = f"{KEY_PREFIX}:lock"
            poll_until(lambda: redis_client().exists(lock), 60, "RedBeat's lock")
        yield
    finally:
        for process in reversed(processes):
            stop_process(process)


def register_beat(receiver: str, number: int, jobs: int, due: datetime, spacing: float) -> None:
    """Each job a RedBeat entry firing once at its due time, saved while beat runs."""
    from redbeat import RedBeatSchedulerEntry
    from redbeat.schedules import rrule

    for i in range(jobs):
        at = due + timedelta(seconds=i * spacing)
        key = f"celery-{number}-{i}"
        once = rrule("SECONDLY", dtstart=at, count=1)
        args = [f"{receiver}/hook", stamp(at), key]
        RedBeatSchedulerEntry(key, TASK, once, args=args, app=app).save()


def register_eta(receiver: str, number: int, jobs: int, due: datetime, spacing: float) -> None:
    """Each job a task message sent now, to run at its due time."""
    for i in range(jobs):
        at = due + timedelta(seconds=i * spacing)
        key = f"celery-{number}-{i}"
        post_webhook.apply_async(args=[f"{receiver}/hook", stamp(at), key], eta=at)


def forget_entries() -> None:
    """Delete the RedBeat entries of a round (fired one-offs stay in Redis until deleted)."""
    redis = redis_client()
    keys = list(redis.scan_iter(match=f"{KEY_PREFIX}celery-*", count=1000))
    for start_at in range(0, len(keys), 1000):
        batch = keys[start_at : start_at + 1000]
        redis.zrem(f"{KEY_PREFIX}:schedule", *batch)
        redis.delete(*batch)


def one_round(mode: str, system: str, receiver: str, number: int, count: int, per_job: float):
    """One round: register the jobs, wait for the receiver; the row and the registering rate."""
    forget_arrivals(receiver)
    jobs, spacing = round_shape(count, SPACING)
    began = time.time()
    due = datetime.fromtimestamp(math.ceil(began + lead_seconds(jobs, per_job)), UTC)
    register = register_beat if mode == "beat" else register_eta
    register(receiver, number, jobs, due, spacing)
    added = time.time()
    got = wait_for_arrivals(receiver, jobs, round_timeout(jobs, spacing))
    row = summarize(system, count, got, jobs)
    note_registration(row, jobs, began, added, due.timestamp())
    if count == 1:
        row["notes"].append(f"{jobs} one-offs {SPACING:.0f} s apart (whole seconds)")
    forget_entries()
    return row, max(0.0002, (added - began) / jobs)


def measure(
    mode: str, pool: str | None, receiver: str, counts: list[int], size: int, logs: Path, rows
) -> None:
    """Every round of one mode, the worker (and beat) started for it and stopped after; the
    pool is the mode's best unless one is given."""
    pool = pool or POOLS[mode]
    system = f"{NAMES[mode]}, {pool} pool"
    with running(mode, pool, size, logs):
        per_job = 0.002
        for number, count in enumerate(counts):
            row, per_job = one_round(mode, system, receiver, number, count, per_job)
            rows.append(row)
            report(row)


@contextlib.contextmanager
def own_database() -> Iterator[None]:
    """Refuse a Redis database that holds anything; empty it after the run."""
    redis = redis_client()
    if redis.dbsize():
        raise RuntimeError(f"{REDIS_URL} is not empty: set BENCH_CELERY_REDIS to a spare one")
    try:
        yield
    finally:
        redis.flushdb()
