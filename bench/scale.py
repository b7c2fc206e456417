"""Scale: API latency with 100,000 tasks and 10,000,000 log rows on PostgreSQL, and what an idle
scheduler holding those tasks costs.

The rows are generated in SQL (fast), the service runs as `python main.py` in its own process,
and a load generator sends each request shape `--requests` times at each `--concurrency` level
(1: the service time of one request alone; more: queueing on the service's cores too),
reporting p50/p99. Reads use the default page size (100).

Each task's log rows are spread evenly over the last `--months` months (0: one an hour, as the
earlier runs had it), into the monthly partitions of task_logs, made for them beforehand, so
that queries meet as many partitions as a service keeping that much history has. They are
written in transactions of about a million rows, so any `--logs-per-task` fits.

    python -m bench.scale                                  # 100k tasks, 10M log rows (~5 min)
    python -m bench.scale --tasks 10000 --logs-per-task 50 --requests 100   # quicker
    python -m bench.scale --logs-per-task 200 --months 6   # 20M log rows over 6 months
"""

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from app.db import create_db_engine
from app.migrations import upgrade_database
from app.scheduling.partitions import MONTHS_AHEAD, ensure_partitions, list_partitions, month_start
from bench.common import BENCH_TOKEN, percentile, service_env, temporary_database
from bench.throughput import cpu_seconds
from harness.service import ServiceProcess

AUTH = {"Authorization": f"Bearer {BENCH_TOKEN}"}
DEEP_SKIP_REQUESTS = 16


TASKS = text(
    """
    INSERT INTO tasks (id, name, schedule, timezone, catchup, webhook_url, payload,
                       max_retry, status, next_run_at, created_at, updated_at)
    SELECT gen_random_uuid(), 'task ' || g, '@every 1h', 'UTC', 'latest',
           'https://hooks.example.com/' || g, '{"content": "x"}'::jsonb, 3,
           CASE WHEN g % 10 = 0 THEN 'inactive' ELSE 'active' END,
           CASE WHEN g % 10 = 0 THEN NULL
                ELSE now() + interval '1 hour' + (g % 3600) * interval '1 second' END,
           now() - g * interval '1 second', now() - g * interval '1 second'
    FROM generate_series(1, :n) AS g
    """
)
# The g-th log row of each task: `step` seconds apart going back from :now, each task at its
# own offset within the step.
LOGS = text(
    """
    INSERT INTO task_logs (id, task_id, execution_time, scheduled_for, status,
                           retry_count, message, http_status, duration_ms, trigger,
                           created_at)
    SELECT gen_random_uuid(), t.id,
           :now - (g * :step + (hashtext(t.id::text) & 2147483647) % :step)
                  * interval '1 second',
           :now - g * :step * interval '1 second',
           CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'success' END, 0,
           'Delivered (HTTP 204)', 204, 35, 'schedule', :now
    FROM tasks t CROSS JOIN generate_series(:first, :last) AS g
    """
)
ROWS_PER_TRANSACTION = 1_000_000
MONTH_SECONDS = 30.44 * 86_400


def fill(url: str, tasks: int, logs_per_task: int, months: int) -> dict[str, str]:
    """Generate the rows; return a few ids and instants the requests use."""
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(TASKS, {"n": tasks})
        now = conn.execute(text("SELECT now()")).scalar_one()
        step = max(1, int(months * MONTH_SECONDS / logs_per_task)) if months else 3600
        _make_partitions(conn, now, span=timedelta(seconds=step * (logs_per_task + 1)))
    per_transaction = max(1, ROWS_PER_TRANSACTION // tasks)
    for first in range(1, logs_per_task + 1, per_transaction):
        last = min(first + per_transaction - 1, logs_per_task)
        with engine.begin() as conn:
            conn.execute(LOGS, {"now": now, "step": step, "first": first, "last": last})
        print(f"  {last * tasks:,} log rows", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        some_task = conn.execute(text("SELECT id FROM tasks ORDER BY created_at LIMIT 1")).scalar()
        newest = conn.execute(text("SELECT max(execution_time) FROM task_logs")).scalar()
    engine.dispose()
    return {"task_id": str(some_task), "newest": newest.isoformat()}


def _make_partitions(conn: Any, now: datetime, *, span: timedelta) -> None:
    """The monthly partitions of task_logs for the months the rows will cover (the migration
    made the current month and the MONTHS_AHEAD after it), and a line saying how many."""
    first, current = month_start(now - span), month_start(now)
    months = (current.year - first.year) * 12 + current.month - first.month
    ensure_partitions(conn, first, months_ahead=months + MONTHS_AHEAD)
    count = len([p for p in list_partitions(conn) if not p.is_default])
    print(f"# task_logs: {count} monthly partitions and a default one, from {first:%Y-%m}")


async def measure(base: str, shape: str, method: str, path: str, params, requests, concurrency):
    """Send one request shape `requests` times; p50/p99 in ms. The load generator is aiohttp:
    it shares the 2 cores with the service, and costs it less CPU than httpx would."""
    timings: list[float] = []
    slots = asyncio.Semaphore(concurrency)
    # A deep `skip` over tens of millions of rows takes a minute and more with 8 at once.
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(base, headers=AUTH, timeout=timeout) as client:

        async def one(i: int) -> None:
            async with slots:
                started = time.perf_counter()
                if method == "POST":
                    body = {
                        "name": f"bench post {i}",
                        "schedule": "@every 1h",
                        "webhook_url": "https://hooks.example.com/new",
                        "payload": {},
                    }
                    request = client.post(path, json=body)
                else:
                    request = client.get(path, params=params)
                async with request as response:
                    text = await response.text()
                timings.append((time.perf_counter() - started) * 1000)
                if response.status >= 400:
                    raise RuntimeError(f"{shape}: HTTP {response.status} {text[:200]}")

        await asyncio.gather(*(one(i) for i in range(requests)))
    return percentile(timings, 0.5), percentile(timings, 0.99)


def shapes(ids: dict[str, str], deep_cursor: str) -> list[tuple[str, str, str, dict]]:
    newest = datetime.fromisoformat(ids["newest"])
    window = {
        "since": (newest - timedelta(hours=2)).isoformat(),
        "until": (newest - timedelta(hours=1)).isoformat(),
    }
    return [
        ("GET /tasks", "GET", "/tasks", {}),
        (
            "GET /tasks?status=active&search=task 12",
            "GET",
            "/tasks",
            {"status": "active", "search": "task 12"},
        ),
        ("GET /tasks/{id}", "GET", f"/tasks/{ids['task_id']}", {}),
        ("GET /task-logs", "GET", "/task-logs", {}),
        ("GET /task-logs?task_id=", "GET", "/task-logs", {"task_id": ids["task_id"]}),
        ("GET /task-logs?status=failed", "GET", "/task-logs", {"status": "failed"}),
        ("GET /task-logs?since&until (1 h)", "GET", "/task-logs", window),
        ("GET /task-logs?skip=<half the table>", "GET", "/task-logs", {"skip": ids["half"]}),
        ("GET /task-logs?cursor=<same depth>", "GET", "/task-logs", {"cursor": deep_cursor}),
        ("GET /task-logs/task/{id}", "GET", f"/task-logs/task/{ids['task_id']}", {}),
        ("POST /tasks", "POST", "/tasks", {}),
    ]


def cursor_at_depth(url: str, depth: int) -> str:
    """The cursor a client holds after paging down to `depth` rows."""
    from app.services.pages import encode_cursor

    engine = create_db_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT execution_time, id FROM task_logs "
                "ORDER BY execution_time DESC, id DESC OFFSET :d LIMIT 1"
            ),
            {"d": depth},
        ).one()
    engine.dispose()
    return encode_cursor(row[0], row[1])


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure_service(
    url: str, ids: dict, deep: str, args: argparse.Namespace, workers: int, logs: Path
) -> None:
    """Start the service with `workers` processes on the generated data and print its idle
    cost and the table of request times."""
    env = service_env(url, LOG_RETENTION_DAYS="0", WORKERS=str(workers))
    service = ServiceProcess(env, logs / f"service-{workers}.log").start()
    try:
        assert service.process is not None
        pid = service.process.pid
        cpu_before = cpu_seconds(pid)
        time.sleep(args.idle_seconds)
        idle_cpu = cpu_seconds(pid) - cpu_before
        print(
            f"# WORKERS={workers}: idle scheduler holding {args.tasks:,} tasks: RSS "
            f"{rss_mib(pid):.0f} MiB (supervisor), CPU {idle_cpu:.2f} s over {args.idle_seconds} s"
        )
        levels = [int(level) for level in args.concurrency.split(",")]
        print("| request |" + "".join(f" {n} at once p50 / p99 ms |" for n in levels))
        print("|---|" + "---|" * len(levels))
        for shape, method, path, params in shapes(ids, deep):
            # Deep `skip` takes seconds a request (the point of measuring it): fewer.
            count = args.requests
            if "skip=" in shape:
                count = min(count, args.deep_skip_requests)
            cells = []
            for level in levels:
                p50, p99 = asyncio.run(
                    measure(service.base_url, shape, method, path, params, count, level)
                )
                cells.append(f" {p50:.1f} / {p99:.1f} |")
            print(f"| {shape} |" + "".join(cells), flush=True)
    finally:
        service.terminate()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--logs-per-task", type=int, default=100)
    parser.add_argument(
        "--months", type=int, default=3, help="spread each task's logs over this many months"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", default="1,8", help="comma-separated levels")
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument(
        "--workers", default="1", help="WORKERS of the service; several (1,2) in turn"
    )
    parser.add_argument(
        "--deep-skip-requests",
        type=int,
        default=DEEP_SKIP_REQUESTS,
        help="requests of the deep `skip` shape (seconds each on large tables)",
    )
    args = parser.parse_args()
    total_logs = args.tasks * args.logs_per_task
    print(
        f"# python -m bench.scale --tasks {args.tasks} --logs-per-task {args.logs_per_task} "
        f"--months {args.months} --requests {args.requests} --concurrency {args.concurrency} "
        f"--idle-seconds {args.idle_seconds} --deep-skip-requests {args.deep_skip_requests} "
        f"--workers {args.workers}"
    )
    print(
        f"# {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, PostgreSQL, "
        f"{args.tasks:,} tasks, {total_logs:,} log rows"
    )
    with temporary_database("postgresql") as url, tempfile.TemporaryDirectory() as logs:
        upgrade_database(url)
        started = time.perf_counter()
        ids = fill(url, args.tasks, args.logs_per_task, args.months)
        ids["half"] = str(total_logs // 2)
        print(f"# rows generated in {time.perf_counter() - started:.0f} s")
        deep = cursor_at_depth(url, total_logs // 2)
        for workers in [int(n) for n in str(args.workers).split(",")]:
            measure_service(url, ids, deep, args, workers, Path(logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
