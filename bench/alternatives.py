"""Firing lateness next to the alternatives, in one run, on one receiver and one PostgreSQL.

Lateness = the instant the receiver (its own process) gets a request minus the due time the
request names in `X-Insignia-Scheduled-For`. Duplicates are keys (`Idempotency-Key`) received
more than once; misses are expected deliveries never received. For each N, N jobs are due at
one instant (N = 1: a series of 40 single jobs, to get a distribution). Each system runs in
its own process(es), started and stopped here; the peers are sized like this service, which
sends at most MAX_CONCURRENT_DELIVERIES (100 by default) requests at once.

1. this service: `python main.py` on a throw-away PostgreSQL schema. N one-time tasks are made
   via the API far in the future, then moved to one due instant by one UPDATE with a NOTIFY.
2. APScheduler 3 tuned (bench/peers/apscheduler_peer.py): SQLAlchemyJobStore on its own
   schema, misfire_grace_time=None, coalesce=False, a ThreadPoolExecutor of 100 threads with a
   shared blocking httpx.Client (`--aps-executor asyncio`: AsyncIOScheduler and a shared
   httpx.AsyncClient of 100 connections instead).
3. APScheduler 3 at its defaults: AsyncIOScheduler, misfire_grace_time=1 s (late jobs are
   dropped and reported missed).
4. Celery beat with RedBeat and a Celery worker (bench/peers/celery_peer.py), on the local
   Redis: each job a one-off RedBeat entry; the worker's pool 100 threads.
5. A Celery worker fed by `apply_async(eta=due)` instead of beat; its pool 100 prefork
   processes (`--celery-pool` gives both modes the same pool).
6. The once-a-minute loop this service replaced (bench/peers/minute_loop.py), over two minute
   boundaries per N (one with --quick).

    python -m bench.alternatives            # N = 1, 100, 1000, 10000
    python -m bench.alternatives --quick    # N = 1, 100; the loop for one minute, N = 100 only
    python -m bench.alternatives --only ours,aps --counts 1000

Needs the extra packages of bench/requirements.txt and Redis on 127.0.0.1:6379; Celery uses
database 13 (BENCH_CELERY_REDIS to change it), which must be empty and is emptied afterwards.
"""

import argparse
import asyncio
import contextlib
import importlib.util
import os
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app.config import available_cpus, get_settings
from app.db import create_db_engine
from bench.common import running_receiver, service_env, temporary_database
from bench.lateness import clear, create_tasks
from bench.peers import apscheduler_peer, minute_loop
from bench.peers.shared import (
    forget_arrivals,
    report,
    round_shape,
    round_timeout,
    summarize,
    wait_for_arrivals,
)
from harness import ROOT
from harness.service import ServiceProcess

OURS = "this service"
SYSTEMS = ["ours", "aps", "aps-defaults", "celery-beat", "celery-eta", "loop"]
EXTRAS = {"apscheduler": "APScheduler", "celery": "celery", "redbeat": "celery-redbeat"}
MOVE_DUE = (
    "UPDATE tasks AS t SET run_at = :due + (s.rank - 1) * make_interval(secs => :spacing),"
    " next_run_at = :due + (s.rank - 1) * make_interval(secs => :spacing)"
    " FROM (SELECT id, row_number() OVER (ORDER BY name) AS rank FROM tasks) AS s"
    " WHERE t.id = s.id"
)


# --- 1. this service ------------------------------------------------------------------------


def make_due(url: str, at: datetime, spacing: float) -> float:
    """Move every task to `at` (+ rank * spacing) in one statement and wake the scheduler the
    way the API does; the Unix time of the commit."""
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text(MOVE_DUE), {"due": at, "spacing": spacing})
        conn.execute(text("SELECT pg_notify('insignia_scheduler', '')"))
    committed = time.time()
    engine.dispose()
    return committed


def ours_round(url: str, base_url: str, receiver: str, count: int) -> dict[str, Any]:
    """One round of this service: create the tasks, move them due, wait for the receiver."""
    clear(url)
    forget_arrivals(receiver)
    tasks, spacing = round_shape(count)
    began = time.time()
    asyncio.run(create_tasks(base_url, f"{receiver}/hook", tasks))
    created = time.time()
    due = datetime.now(UTC) + timedelta(seconds=2)
    committed = make_due(url, due, spacing)
    got = wait_for_arrivals(receiver, tasks, round_timeout(tasks, spacing))
    row = summarize(OURS, count, got, tasks)
    if committed > due.timestamp():
        row["notes"].append("moving the tasks due committed after the due time: invalid")
    elif count > 1:
        took = created - began
        row["notes"].append(f"creating the {tasks} tasks took {took:.1f} s (not measured)")
    return row


def measure_ours(receiver: str, counts: list[int], logs: Path, rows: list) -> None:
    """Every round of this service, one `python main.py` on a throw-away schema, with its
    default WORKERS (one process per CPU), as a user runs it."""
    with temporary_database("postgresql") as url:
        env = service_env(url, WORKERS=str(available_cpus()))
        service = ServiceProcess(env, logs / "service.log").start()
        try:
            for count in counts:
                rows.append(ours_round(url, service.base_url, receiver, count))
                report(rows[-1])
        finally:
            if not service.terminate():
                service.stop_quietly()


# --- the tables -----------------------------------------------------------------------------


def ms(value: float) -> str:
    """A figure in ms, or nothing for NaN."""
    return "" if value != value else f"{value:.1f}"


def ratio(mine: float, ours: float) -> str:
    """`mine` as a multiple of ours."""
    if mine != mine or ours != ours or ours <= 0:
        return "n/a"
    return f"{mine / ours:,.1f}x"


def print_results(rows: list[dict[str, Any]]) -> None:
    """The table of every system and N."""
    print(
        "| system | due together | received/expected | duplicates | p50 ms | p99 ms | max ms"
        " | all received within ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        within = "" if row["count"] == 1 or not row["received"] else f"{row['within']:.0f}"
        print(
            f"| {row['system']} | {row['count']} | {row['received']}/{row['expected']}"
            f" | {row['duplicates']} | {ms(row['p50'])} | {ms(row['p99'])} | {ms(row['max'])}"
            f" | {within} |"
        )


def print_notes(rows: list[dict[str, Any]], notes: list[str]) -> None:
    """What each row and the run as a whole need said."""
    for row in rows:
        for note in row["notes"]:
            print(f"- {row['system']}, N={row['count']}: {note}")
    for note in notes:
        print(f"- {note}")


def print_ratios(rows: list[dict[str, Any]]) -> None:
    """Each peer's p50, p99 and all-within as a multiple of ours at the same N."""
    ours = {row["count"]: row for row in rows if row["system"] == OURS}
    print("| peer | due together | p50 / ours | p99 / ours | all received within / ours |")
    print("|---|---|---|---|---|")
    partial = False
    for row in rows:
        mine = ours.get(row["count"])
        if row["system"] == OURS or mine is None:
            continue
        cells = [ratio(row[key], mine[key]) for key in ("p50", "p99", "within")]
        if 0 < row["received"] < row["expected"]:
            partial = True
            cells = [f"{cell} (received only)" for cell in cells]
        if row["received"] == 0:
            cells = ["nothing received"] * 3
        print(f"| {row['system']} | {row['count']} | " + " | ".join(cells) + " |")
    if partial:
        print(
            "\n(received only: over the requests that came; the missed ones have no lateness and"
            " would only make the ratio worse)"
        )


# --- the program ----------------------------------------------------------------------------


def measurements(args: argparse.Namespace, receiver: str, logs: Path, rows: list, notes: list):
    """(system, what measures it) for each system this run covers, in order."""
    counts = args.counts
    loop_counts = [100] if args.quick else counts
    loop_minutes = 1 if args.quick else 2
    size = get_settings().max_concurrent_deliveries
    pool = args.celery_pool

    def celery(mode: str) -> Callable[[], None]:
        """The measurement of one Celery mode (Celery is imported only if it runs)."""

        def run() -> None:
            """Measure the mode."""
            from bench.peers import celery_peer

            celery_peer.measure(mode, pool, receiver, counts, size, logs, rows)

        return run

    every = {
        "ours": lambda: measure_ours(receiver, counts, logs, rows),
        "aps": lambda: apscheduler_peer.measure(
            args.aps_executor, receiver, counts, size, logs, rows
        ),
        "aps-defaults": lambda: apscheduler_peer.measure(
            "defaults", receiver, counts, size, logs, rows
        ),
        "celery-beat": celery("beat"),
        "celery-eta": celery("eta"),
        "loop": lambda: minute_loop.measure(receiver, loop_counts, loop_minutes, logs, rows, notes),
    }
    return [(system, every[system]) for system in SYSTEMS if system in args.only]


def run_all(args: argparse.Namespace, rows: list, notes: list) -> None:
    """Measure every system in turn; one failing still leaves the others' figures."""
    with tempfile.TemporaryDirectory() as folder, running_receiver() as receiver:
        for system, measure in measurements(args, receiver, Path(folder), rows, notes):
            try:
                measure()
            except Exception as exc:
                first_line = str(exc).splitlines()[0] if str(exc) else ""
                notes.append(f"{system}: stopped by {type(exc).__name__}: {first_line}")
                print(f"  {system} failed:", file=sys.stderr)
                traceback.print_exc()


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="N = 1, 100; one loop minute")
    parser.add_argument("--counts", help="N values, comma-separated (default 1,100,1000,10000)")
    parser.add_argument("--only", default=",".join(SYSTEMS), help=f"from {','.join(SYSTEMS)}")
    parser.add_argument("--aps-executor", choices=["threads", "asyncio"], default="threads")
    parser.add_argument("--celery-pool", choices=["threads", "prefork"], help="both modes")
    args = parser.parse_args()
    quick = [1, 100] if args.quick else [1, 100, 1000, 10000]
    args.counts = [int(n) for n in args.counts.split(",")] if args.counts else quick
    args.only = args.only.split(",")
    unknown = set(args.only) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    return args


def missing_packages() -> list[str]:
    """The packages of bench/requirements.txt that are not installed."""
    return [name for module, name in EXTRAS.items() if importlib.util.find_spec(module) is None]


def print_header(args: argparse.Namespace) -> None:
    """The command, the machine and the moment."""
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    print("$ " + shlex.join([str(python), "-m", "bench.alternatives", *sys.argv[1:]]))
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"# firing lateness next to the alternatives, PostgreSQL, {os.cpu_count()} cores,"
        f" load average {load} at the start, {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC;"
        f" this service with WORKERS={available_cpus()};"
        f" N = {', '.join(map(str, args.counts))}"
    )
    print(flush=True)


def main() -> int:
    """Run the systems asked for, then print the tables."""
    args = parse_args()
    if missing := missing_packages():
        print(f"missing {', '.join(missing)}: pip install -r bench/requirements.txt")
        return 2
    print_header(args)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    celery = any(system.startswith("celery") for system in args.only)
    with own_redis() if celery else contextlib.nullcontext():
        run_all(args, rows, notes)
    print_results(rows)
    print()
    print_notes(rows, notes)
    print()
    print_ratios(rows)
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    return 0


def own_redis():
    """Celery's Redis database, checked empty before and emptied after."""
    from bench.peers.celery_peer import own_database

    return own_database()


if __name__ == "__main__":
    sys.exit(main())
