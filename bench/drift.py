"""Drift: does firing lateness grow over time? One `@every 1s` task runs for `--minutes`; the
receiver notes each arrival. A scheduler that sleeps a fixed interval after its work drifts
(its period is the interval plus the work); ours sleeps to deadlines computed from the
schedule, so lateness should not trend. Reports the least-squares slope of lateness over time,
extrapolated to a day.

    python -m bench.drift --minutes 10
"""

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.common import BENCH_TOKEN, percentile, running_receiver, service_env, temporary_database
from harness.service import ServiceProcess


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="postgresql")
    args = parser.parse_args()
    print(f"# python -m bench.drift --minutes {args.minutes:g} --db {args.db}")
    print(f"# {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with (
        temporary_database(args.db) as url,
        running_receiver() as receiver,
        tempfile.TemporaryDirectory() as logs,
    ):
        env = service_env(url)
        service = ServiceProcess(env, Path(logs) / "service.log").start()
        try:
            httpx.post(
                f"{service.base_url}/tasks",
                headers={"Authorization": f"Bearer {BENCH_TOKEN}"},
                json={
                    "name": "drift",
                    "schedule": "@every 1s",
                    "webhook_url": f"{receiver}/hook",
                    "payload": {},
                },
                timeout=10,
            ).raise_for_status()
            time.sleep(args.minutes * 60)
            arrivals = httpx.get(f"{receiver}/stats", timeout=30).json()
        finally:
            service.terminate()
    points = sorted(
        (datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp(), arrived)
        for arrived, s, _key in arrivals
    )
    due = [p[0] for p in points]
    late_ms = [(arrived - scheduled) * 1000 for scheduled, arrived in points]
    per_second = slope([d - due[0] for d in due], late_ms)
    expected = int(due[-1] - due[0]) + 1
    print(f"occurrences: {len(points)} received, {expected} expected between first and last")
    print(
        f"lateness ms: p50 {percentile(late_ms, 0.5):.1f}, p99 {percentile(late_ms, 0.99):.1f}, "
        f"max {max(late_ms):.1f}"
    )
    print(
        f"trend: {per_second * 3600:+.2f} ms per hour = {per_second * 86400 / 1000:+.4f} s per day"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
