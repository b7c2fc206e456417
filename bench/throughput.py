"""Delivery throughput: deliveries per second, each with its log row written, and CPU per delivery.

N one-time tasks (inserted directly, not through the API: setup is not what is measured) fall
due at the same instant; the clock runs from that instant until the last log row is written
(its `created_at`; the rows are counted only twice a second, so that counting takes little of
the CPU being measured).
The service runs as `python main.py` in its own process with MAX_CONCURRENT_DELIVERIES set to
each level in turn; its CPU time comes from /proc (with WORKERS > 1, the sum of its
processes). Request time (p50/p99) is the `duration_ms` of the log rows. The receiver's own
record gives what arrived, how many distinct occurrences that was (a lost or doubled delivery
fails the run) and when the last one arrived.

    python -m bench.throughput                      # 5,000 deliveries at 10, 50, 200 concurrent
    python -m bench.throughput --tasks 1000 --db sqlite --quick
    python -m bench.throughput --db postgresql --replicas 2   # two service processes
    python -m bench.throughput --db postgresql --workers 2 --tasks 100000 --levels 100
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, text

from app.db import create_db_engine
from app.migrations import upgrade_database
from app.models import Task, TaskLog
from bench.common import percentile, running_receiver, service_env, temporary_database
from harness.service import ServiceProcess

CONCURRENCY = (10, 50, 200)
POLL_SECONDS = 0.5


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its live children (WORKERS > 1), from /proc."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def insert_due_tasks(url: str, webhook: str, count: int, due: datetime) -> None:
    engine = create_db_engine(url)
    rows = [
        {
            "id": uuid.uuid4(),
            "name": f"bench {i}",
            "schedule": None,
            "run_at": due,
            "timezone": "UTC",
            "catchup": "latest",
            "webhook_url": webhook,
            "payload": {"n": i},
            "max_retry": 3,
            "status": "active",
            "next_run_at": due,
            "created_at": due - timedelta(minutes=1),
            "updated_at": due - timedelta(minutes=1),
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(insert(Task), rows)
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_notify('insignia_scheduler', '')"))
    engine.dispose()


def run_level(
    kind: str,
    url: str,
    receiver: str,
    count: int,
    concurrency: int,
    logs: Path,
    replicas: int,
    workers: int = 1,
):
    engine = create_db_engine(url)
    with engine.begin() as conn:
        for table in ("task_logs", "occurrences", "tasks"):
            conn.execute(text(f"DELETE FROM {table}"))
    env = service_env(url, MAX_CONCURRENT_DELIVERIES=str(concurrency), WORKERS=str(workers))
    services = [
        ServiceProcess(env, logs / f"{kind}-{concurrency}-{n}.log").start() for n in range(replicas)
    ]
    pids = [service.process.pid for service in services if service.process is not None]
    try:
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        httpx.delete(f"{receiver}/stats", timeout=30)
        due = datetime.now(UTC) + timedelta(seconds=2)
        insert_due_tasks(url, f"{receiver}/hook", count, due)
        deadline = time.monotonic() + 120 + count / 500
        done = 0
        while time.monotonic() < deadline:
            # Seldom: counting a growing table takes CPU from the cores being measured. The
            # end is read afterwards from the rows themselves.
            time.sleep(POLL_SECONDS)
            with engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(TaskLog)).scalar_one()
            if done >= count:
                break
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        with engine.connect() as conn:
            last_recorded = conn.execute(select(func.max(TaskLog.created_at))).scalar_one()
        finished = last_recorded or datetime.now(UTC)
        arrivals = httpx.get(f"{receiver}/stats", timeout=60).json()
        with engine.connect() as conn:
            durations = [row[0] for row in conn.execute(select(TaskLog.duration_ms))]
            failed = conn.execute(
                select(func.count()).select_from(TaskLog).where(TaskLog.status != "success")
            ).scalar_one()
    finally:
        for service in services:
            service.terminate()
        engine.dispose()
    elapsed = (finished - due).total_seconds()
    return {
        "db": kind
        + (f" x{replicas} replicas" if replicas > 1 else "")
        + (f", WORKERS={workers}" if workers > 1 else ""),
        "concurrency": concurrency,
        "delivered": done,
        "failed": failed,
        "per_second": done / elapsed,
        "p50_ms": percentile(durations, 0.5),
        "p99_ms": percentile(durations, 0.99),
        "cpu_ms_per_delivery": cpu * 1000 / max(done, 1),
        "received": len(arrivals),
        "unique": len({key for _at, _scheduled, key in arrivals}),
        "all_received_s": max((at for at, _s, _k in arrivals), default=due.timestamp())
        - due.timestamp(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--quick", action="store_true", help="one level (50 concurrent)")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="service processes sharing the database (PostgreSQL; CPU is their sum)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="WORKERS of each service (CPU is their sum)"
    )
    parser.add_argument("--levels", default=None, help="concurrency levels, e.g. 50,200")
    args = parser.parse_args()
    if args.replicas > 1 and args.db != "postgresql":
        parser.error("--replicas needs --db postgresql (SQLite has one scheduler per file)")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    levels = (50,) if args.quick else CONCURRENCY
    if args.levels:
        levels = tuple(int(level) for level in args.levels.split(","))
    print(
        f"# delivery throughput, {args.tasks} tasks, {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print(
        "| db | concurrent | delivered | deliveries/s | request p50 ms | request p99 ms "
        "| service CPU ms per delivery | received / unique | all received within s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    faults = 0
    with tempfile.TemporaryDirectory() as logs, running_receiver() as receiver:
        for kind in kinds:
            with temporary_database(kind) as url:
                upgrade_database(url)
                for level in levels:
                    row = run_level(
                        kind,
                        url,
                        receiver,
                        args.tasks,
                        level,
                        Path(logs),
                        args.replicas,
                        args.workers,
                    )
                    print(
                        f"| {row['db']} | {row['concurrency']} | {row['delivered']}"
                        f"{' (' + str(row['failed']) + ' failed)' if row['failed'] else ''}"
                        f" | {row['per_second']:,.0f} | {row['p50_ms']:.0f} | {row['p99_ms']:.0f}"
                        f" | {row['cpu_ms_per_delivery']:.2f} | {row['received']}"
                        f" / {row['unique']} | {row['all_received_s']:.2f} |",
                        flush=True,
                    )
                    lost_or_twice = row["received"] != args.tasks or row["unique"] != args.tasks
                    if row["delivered"] < args.tasks or row["failed"] or lost_or_twice:
                        faults += 1
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
