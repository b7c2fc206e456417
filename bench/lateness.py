"""Firing lateness: from an occurrence's due time to the moment the receiver gets the request.

For each database and each count N, N one-time tasks are made due at the same instant, and the
lateness of every delivery is measured at a receiver in another process on 127.0.0.1. For N=1
the round is repeated (one task due every 0.25 s) to get a distribution. The service runs as
`python main.py` in its own process, exactly as a user runs it.

    python -m bench.lateness                     # SQLite and PostgreSQL, N = 1, 100, 1000
    python -m bench.lateness --db sqlite --counts 1,100 --quick
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

from app.db import create_db_engine
from bench.common import BENCH_TOKEN, percentile, running_receiver, service_env, temporary_database
from harness.service import ServiceProcess

SINGLE_TASK_ROUNDS = 40
QUICK_ROUNDS = 10
AUTH = {"Authorization": f"Bearer {BENCH_TOKEN}"}


async def create_tasks(base_url: str, webhook: str, count: int) -> None:
    """Create `count` one-time tasks far in the future, 20 requests at a time."""
    far = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    limit = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH, timeout=30) as client:

        async def one(i: int) -> None:
            body = {"name": f"bench {i}", "run_at": far, "webhook_url": webhook, "payload": {}}
            async with limit:
                response = await client.post("/tasks", json=body)
                response.raise_for_status()

        await asyncio.gather(*(one(i) for i in range(count)))


def make_due(url: str, *, at: datetime, spacing: timedelta) -> None:
    """Move every task's run_at to `at` (+ i * spacing) in one transaction and wake the schedulers
    the way the API does (NOTIFY on PostgreSQL; SQLite's scheduler polls every second)."""
    engine = create_db_engine(url)
    with engine.begin() as conn:
        ids = [row[0] for row in conn.execute(text("SELECT id FROM tasks ORDER BY name"))]
        for i, task_id in enumerate(ids):
            due = at + i * spacing
            conn.execute(
                text("UPDATE tasks SET run_at = :due, next_run_at = :due WHERE id = :id"),
                {"due": due if engine.dialect.name != "sqlite" else _sqlite(due), "id": task_id},
            )
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_notify('insignia_scheduler', '')"))
    engine.dispose()


def _sqlite(value: datetime) -> str:
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def clear(url: str) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        for table in ("task_logs", "occurrences", "tasks"):
            conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def measure(
    kind: str, counts: list[int], log_dir: Path, rounds: int, workers: int = 1
) -> list[dict]:
    rows = []
    with temporary_database(kind) as url, running_receiver() as receiver:
        env = service_env(url, WORKERS=str(workers))
        service = ServiceProcess(env, log_dir / f"service-{kind}.log").start()
        try:
            for count in counts:
                rows.append(one_round(kind, url, service, receiver, count, rounds))
        finally:
            service.terminate()
    return rows


def one_round(
    kind: str, url: str, service: ServiceProcess, receiver: str, count: int, rounds: int
) -> dict:
    clear(url)
    httpx.delete(f"{receiver}/stats")
    tasks = rounds if count == 1 else count
    asyncio.run(create_tasks(service.base_url, f"{receiver}/hook", tasks))
    spacing = timedelta(seconds=0.25) if count == 1 else timedelta(0)
    due = datetime.now(UTC) + timedelta(seconds=2)
    make_due(url, at=due, spacing=spacing)
    deadline = time.monotonic() + 30 + tasks / 50
    arrivals: list = []
    while time.monotonic() < deadline:
        arrivals = httpx.get(f"{receiver}/stats", timeout=10).json()
        if len(arrivals) >= tasks:
            break
        time.sleep(0.2)
    late_ms = [
        (arrived - datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()) * 1000
        for arrived, scheduled, _key in arrivals
    ]
    last = max(arrived for arrived, _s, _k in arrivals) if arrivals else float("nan")
    return {
        "db": kind,
        "due_together": count,
        "samples": len(late_ms),
        "expected": tasks,
        "p50_ms": percentile(late_ms, 0.50),
        "p99_ms": percentile(late_ms, 0.99),
        "max_ms": max(late_ms) if late_ms else float("nan"),
        "all_in_ms": (last - due.timestamp()) * 1000 if count > 1 else float("nan"),
        "duplicates": len(arrivals) - len({key for _a, _s, key in arrivals}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--counts", default="1,100,1000")
    parser.add_argument(
        "--quick", action="store_true", help=f"N = 1 ({QUICK_ROUNDS} rounds) and 100 only"
    )
    parser.add_argument("--workers", type=int, default=1, help="WORKERS of the service")
    args = parser.parse_args()
    counts = [1, 100] if args.quick else [int(c) for c in args.counts.split(",")]
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(
        f"# firing lateness, {os.cpu_count()} cores, WORKERS={args.workers}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )
    print("| db | due together | received | p50 ms | p99 ms | max ms | all received within ms |")
    print("|---|---|---|---|---|---|---|")
    faults = 0
    with tempfile.TemporaryDirectory() as logs:
        for kind in kinds:
            rounds = QUICK_ROUNDS if args.quick else SINGLE_TASK_ROUNDS
            for row in measure(kind, counts, Path(logs), rounds, args.workers):
                within = "" if row["due_together"] == 1 else f"{row['all_in_ms']:.0f}"
                print(
                    f"| {row['db']} | {row['due_together']} | {row['samples']}/{row['expected']}"
                    f" | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['max_ms']:.1f}"
                    f" | {within} |",
                    flush=True,
                )
                if row["duplicates"]:
                    print(f"!! {row['duplicates']} duplicate deliveries", flush=True)
                if row["duplicates"] or row["samples"] < row["expected"]:
                    faults += 1
    return 1 if faults else 0


if __name__ == "__main__":
    sys.exit(main())
