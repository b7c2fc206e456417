"""Firing lateness next to the alternatives, in one run, on one receiver and one PostgreSQL.

Lateness = the instant the receiver (bench/receiver.py, its own process) gets a request minus
the due time the request names in `X-Insignia-Scheduled-For`. Duplicates are keys
(`Idempotency-Key`) received more than once; misses are expected deliveries never received.

1. this service: `python main.py` on a throw-away PostgreSQL schema. N one-time tasks are made
   via the API far in the future, then moved to one due instant in one transaction with a NOTIFY,
   as bench/lateness.py does (for N = 1: 40 tasks due 0.25 s apart).
2. APScheduler 3 in a child process: an AsyncIOScheduler with its SQLAlchemyJobStore on its own
   schema and everything else left at APScheduler's defaults (so misfire_grace_time = 1 s: a job
   started more than 1 s late is dropped and counted as missed). Each job is a `date` trigger
   whose coroutine POSTs to the receiver with one shared httpx.AsyncClient.
3. The once-a-minute loop this service replaced, in a child process: reload the active tasks
   from a PostgreSQL table, send (one after the other, with httpx) each whose cron matches the
   current minute, then sleep 60 s. Its tasks are `* * * * *`; lateness counts from the minute
   boundary. Its phase within the minute is wherever the process happened to start, so its
   lateness is that phase plus the sending time: anything from 0 to 60 s on another run.

    python -m bench.alternatives            # N = 1, 100, 1000; the loop for 2 minutes at each N
    python -m bench.alternatives --quick    # N = 1, 100; the loop for one minute, N = 100 only

Needs the extra packages of bench/requirements.txt (APScheduler 3).
"""

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import queue
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from app.config import normalize_database_url
from bench.common import percentile, running_receiver, service_env, temporary_database
from bench.lateness import clear, create_tasks, make_due
from harness import ROOT
from harness.service import ServiceProcess

SINGLE_TASK_ROUNDS = 40
SINGLE_TASK_SPACING = 0.25
LOOP_SLEEP_SECONDS = 60
OURS = "this service"
APS = "APScheduler 3.11 (SQLAlchemyJobStore)"
LOOP = "once-a-minute loop"
LOAD_ACTIVE_TASKS = "SELECT id, schedule, webhook_url, payload FROM minute_tasks WHERE active"


# --- what the three systems' measurements have in common ------------------------------------


def stamp(moment: datetime) -> str:
    """A due time as the `X-Insignia-Scheduled-For` header carries it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def due_unix(header: str) -> float:
    return datetime.fromisoformat(header.replace("Z", "+00:00")).timestamp()


def arrivals(receiver: str) -> list[list[Any]]:
    return httpx.get(f"{receiver}/stats", timeout=30).json()


def wait_for_arrivals(receiver: str, expected: int, timeout: float, accounted=None) -> list:
    """Poll the receiver until `expected` distinct keys came (or `accounted(received)` says the
    rest will not come), then half a second more to catch duplicates."""
    deadline = time.monotonic() + timeout
    got: list = []
    while time.monotonic() < deadline:
        got = arrivals(receiver)
        received = len({key for _a, _s, key in got})
        if received >= expected or (accounted is not None and accounted(received) >= expected):
            time.sleep(0.5)
            return arrivals(receiver)
        time.sleep(0.2)
    return got


def summarize(system: str, count: int, got: list, expected: int) -> dict[str, Any]:
    """Lateness of each key's first arrival; "all within" is the worst group's last arrival
    after its due time (a group = requests naming the same due time)."""
    first: dict[str, tuple[float, str]] = {}
    for arrived, scheduled, key in sorted(got):
        first.setdefault(key, (arrived, scheduled))
    late_ms = [(arrived - due_unix(scheduled)) * 1000 for arrived, scheduled in first.values()]
    last_by_due: dict[str, float] = {}
    for arrived, scheduled in first.values():
        last_by_due[scheduled] = max(arrived, last_by_due.get(scheduled, 0.0))
    within = [(last - due_unix(scheduled)) * 1000 for scheduled, last in last_by_due.items()]
    return {
        "system": system,
        "count": count,
        "received": len(first),
        "expected": expected,
        "duplicates": len(got) - len(first),
        "p50": percentile(late_ms, 0.50),
        "p99": percentile(late_ms, 0.99),
        "max": max(late_ms) if late_ms else float("nan"),
        "within": max(within) if within and count > 1 else float("nan"),
        "notes": [],
    }


class Worker:
    """`python -m bench.alternatives --worker KIND ...` in a child process, talked to over its
    stdin and stdout one JSON line at a time; its stderr goes to a log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.alternatives", "--worker", *args],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                bufsize=1,
            )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def send(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"no answer from the worker in {timeout:.0f} s:\n{tail}") from None

    def ask(self, command: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        self.send(command)
        return self.receive(timeout)

    def stop(self) -> None:
        """Close its stdin (it exits on end of input), then kill it if it has not."""
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def worker(args: list[str], log_path: Path) -> Iterator[Worker]:
    child = Worker(args, log_path)
    try:
        yield child
    finally:
        child.stop()


def exit_when_parent_goes() -> None:
    """In a worker: end the process as soon as the parent closes our stdin or dies."""

    def watch() -> None:
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


# --- 1. this service ------------------------------------------------------------------------


def measure_ours(receiver: str, counts: list[int], logs: Path, rows: list, notes: list) -> None:
    with temporary_database("postgresql") as url:
        env = service_env(url)
        service = ServiceProcess(env, logs / "service.log").start()
        try:
            for count in counts:
                clear(url)
                httpx.delete(f"{receiver}/stats")
                tasks = SINGLE_TASK_ROUNDS if count == 1 else count
                asyncio.run(create_tasks(service.base_url, f"{receiver}/hook", tasks))
                spacing = SINGLE_TASK_SPACING if count == 1 else 0.0
                due = datetime.now(UTC) + timedelta(seconds=2)
                make_due(url, at=due, spacing=timedelta(seconds=spacing))
                got = wait_for_arrivals(receiver, tasks, 30 + tasks * spacing + tasks / 50)
                rows.append(summarize(OURS, count, got, tasks))
                report(rows[-1])
        finally:
            if not service.terminate():
                service.stop_quietly()


# --- 2. APScheduler 3 -----------------------------------------------------------------------

_aps_client: httpx.AsyncClient | None = None


async def aps_fire(url: str, scheduled_for: str, key: str) -> None:
    """The job: one POST to the receiver, as a user's APScheduler job would send a webhook."""
    assert _aps_client is not None
    response = await _aps_client.post(
        url,
        json={"job": key},
        headers={"X-Insignia-Scheduled-For": scheduled_for, "Idempotency-Key": key},
    )
    response.raise_for_status()


async def aps_worker(url: str, receiver: str) -> None:
    """The APScheduler child: per `round` command, add the jobs (with the scheduler paused, so
    that adding them is not what gets measured) and answer with the due time; per `stats`,
    answer with the job events since the round began."""
    global _aps_client
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    counts = {"executed": 0, "missed": 0, "errors": 0}
    names = {EVENT_JOB_EXECUTED: "executed", EVENT_JOB_MISSED: "missed", EVENT_JOB_ERROR: "errors"}

    def on_event(event: Any) -> None:
        counts[names[event.code]] += 1

    _aps_client = httpx.AsyncClient(timeout=15)
    scheduler = AsyncIOScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)})
    scheduler.add_listener(on_event, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            command = json.loads(line)
            if command["do"] == "round":
                counts.update(executed=0, missed=0, errors=0)
                began = time.time()
                due = datetime.now(UTC) + timedelta(seconds=command["lead"])
                scheduler.pause()
                for i in range(command["jobs"]):
                    at = due + timedelta(seconds=i * command["spacing"])
                    key = f"aps-{command['round']}-{i}"
                    args = [f"{receiver}/hook", stamp(at), key]
                    scheduler.add_job(aps_fire, "date", run_date=at, args=args, id=key)
                scheduler.resume()
                answer = {"due": due.timestamp(), "added": time.time(), "began": began}
            else:
                answer = dict(counts)
            print(json.dumps(answer), flush=True)
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0.1)
        await _aps_client.aclose()


def measure_apscheduler(
    receiver: str, counts: list[int], logs: Path, rows: list, notes: list
) -> None:
    with temporary_database("postgresql") as url:
        args = ["apscheduler", "--url", normalize_database_url(url), "--receiver", receiver]
        with worker(args, logs / "apscheduler.log") as child:
            for number, count in enumerate(counts):
                httpx.delete(f"{receiver}/stats")
                jobs = SINGLE_TASK_ROUNDS if count == 1 else count
                spacing = SINGLE_TASK_SPACING if count == 1 else 0.0
                command = {"do": "round", "round": number, "jobs": jobs, "spacing": spacing}
                # Adding a job is one INSERT: leave time for it on a busy machine.
                started = child.ask({**command, "lead": 3 + jobs * 0.02}, timeout=120)
                stats: dict[str, int] = {}

                def accounted(received: int, stats: dict[str, int] = stats) -> int:
                    stats.update(child.ask({"do": "stats"}))
                    return received + stats["missed"] + stats["errors"]

                got = wait_for_arrivals(
                    receiver, jobs, 30 + jobs * spacing + jobs / 50, accounted=accounted
                )
                stats.update(child.ask({"do": "stats"}))
                row = summarize(APS, count, got, jobs)
                adding = started["added"] - started["began"]
                if started["added"] > started["due"]:
                    row["notes"].append(f"adding took {adding:.1f} s, past the due time: invalid")
                elif count > 1:
                    row["notes"].append(
                        f"adding the {jobs} jobs took {adding:.1f} s (not measured)"
                    )
                if stats["missed"] or stats["errors"]:
                    row["notes"].append(
                        f"{stats['missed']} jobs reported missed (run more than "
                        f"misfire_grace_time = 1 s late), {stats['errors']} raised"
                    )
                rows.append(row)
                report(row)


# --- 3. the once-a-minute loop --------------------------------------------------------------


def loop_worker(url: str) -> None:
    """The loop as the original ran it: load, send what is due this minute, sleep 60 s."""
    from croniter import croniter

    engine = create_engine(url, pool_pre_ping=True)
    with httpx.Client(timeout=15) as client:
        while True:
            started = time.time()
            sent = failed = 0
            error = ""
            try:
                with engine.connect() as conn:
                    tasks = conn.execute(text(LOAD_ACTIVE_TASKS)).all()
                now = datetime.now(UTC)
                minute = now.replace(second=0, microsecond=0)
                for task_id, schedule, webhook_url, payload in tasks:
                    if not croniter.match(schedule, now):
                        continue
                    headers = {
                        "X-Insignia-Scheduled-For": stamp(minute),
                        "Idempotency-Key": f"loop-{task_id}-{minute:%H%M}",
                    }
                    try:
                        client.post(webhook_url, json=payload, headers=headers).raise_for_status()
                        sent += 1
                    except httpx.HTTPError:
                        failed += 1
            except Exception as exc:  # a pass that fails is logged and the loop goes on
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                print(f"pass failed: {error}", file=sys.stderr, flush=True)
            line = {"started": started, "finished": time.time(), "sent": sent, "failed": failed}
            print(json.dumps({**line, "error": error}), flush=True)
            time.sleep(LOOP_SLEEP_SECONDS)


def measure_loop(
    receiver: str, counts: list[int], minutes: int, logs: Path, rows: list, notes: list
) -> None:
    with temporary_database("postgresql") as url:
        engine = create_engine(normalize_database_url(url), pool_pre_ping=True)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE minute_tasks (id serial PRIMARY KEY, name text NOT NULL,"
                    " schedule text NOT NULL, webhook_url text NOT NULL, payload jsonb NOT NULL,"
                    " active boolean NOT NULL DEFAULT true)"
                )
            )
        try:
            args = ["minute-loop", "--url", normalize_database_url(url)]
            with worker(args, logs / "loop.log") as child:
                first = child.receive(timeout=30)  # the start-up pass, with no tasks yet
                phase = first["started"] % 60
                notes.append(
                    f"{LOOP}: its passes started {phase:.0f} s past the minute; its lateness is"
                    " that phase plus the sending time (0 to 60 s on another run)"
                )
                for count in counts:
                    with engine.begin() as conn:
                        conn.execute(text("DELETE FROM minute_tasks"))
                        conn.execute(
                            text(
                                "INSERT INTO minute_tasks (name, schedule, webhook_url, payload)"
                                " VALUES (:name, '* * * * *', :url, CAST(:payload AS jsonb))"
                            ),
                            [
                                {"name": f"loop {i}", "url": f"{receiver}/hook", "payload": "{}"}
                                for i in range(count)
                            ],
                        )
                    httpx.delete(f"{receiver}/stats")
                    inserted = time.time()
                    wait = LOOP_SLEEP_SECONDS + 30 + count / 20
                    passes = [child.receive(timeout=wait) for _ in range(minutes)]
                    # Every minute boundary after the tasks existed and up to the last pass is
                    # owed N deliveries; a minute the loop's drift skipped shows as misses.
                    boundaries = int(passes[-1]["started"] // 60 - inserted // 60)
                    got = arrivals(receiver)
                    row = summarize(LOOP, count, got, count * boundaries)
                    worst = max(p["finished"] - p["started"] for p in passes) * 1000
                    row["notes"].append(f"a pass (reload + sending) took up to {worst:.0f} ms")
                    row["notes"] += [f"a pass failed: {p['error']}" for p in passes if p["error"]]
                    rows.append(row)
                    report(row)
        finally:
            engine.dispose()


# --- the program ----------------------------------------------------------------------------


def report(row: dict[str, Any]) -> None:
    print(f"  measured {row['system']} N={row['count']}", file=sys.stderr, flush=True)


def ms(value: float) -> str:
    return "" if value != value else f"{value:.1f}"  # NaN (nothing to show) prints empty


def ratio(mine: float, ours: float) -> str:
    if mine != mine or ours != ours or ours <= 0:
        return "n/a"
    return f"{mine / ours:,.1f}x"


def print_tables(rows: list[dict[str, Any]], counts: list[int], notes: list[str]) -> None:
    print(
        "| system | due together | received/expected | duplicates | p50 ms | p99 ms | max ms"
        " | all received within ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        within = "" if row["count"] == 1 else f"{row['within']:.0f}" if row["received"] else ""
        print(
            f"| {row['system']} | {row['count']} | {row['received']}/{row['expected']}"
            f" | {row['duplicates']} | {ms(row['p50'])} | {ms(row['p99'])} | {ms(row['max'])}"
            f" | {within} |"
        )
    print()
    for row in rows:
        for note in row["notes"]:
            print(f"- {row['system']}, N={row['count']}: {note}")
    for note in notes:
        print(f"- {note}")
    print()
    by = {(row["system"], row["count"]): row for row in rows}
    print(
        "| due together | APScheduler p50 / ours | APScheduler p99 / ours"
        " | loop p50 / ours | loop p99 / ours |"
    )
    print("|---|---|---|---|---|")
    for count in counts:
        ours = by.get((OURS, count))
        if ours is None:
            continue
        cells = []
        for system in (APS, LOOP):
            other = by.get((system, count))
            partial = other is not None and 0 < other["received"] < other["expected"]
            for key in ("p50", "p99"):
                cell = "not run" if other is None else ratio(other[key], ours[key])
                cells.append(cell + (" (received only)" if partial else ""))
        print(f"| {count} | " + " | ".join(cells) + " |")
    if any(0 < row["received"] < row["expected"] for row in rows):
        print(
            "\n(received only: over the requests that came; the missed ones have no lateness and"
            " would only make the ratio worse)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="N = 1, 100; one loop minute")
    parser.add_argument("--worker", choices=["apscheduler", "minute-loop"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--receiver", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "apscheduler":
        asyncio.run(aps_worker(args.url, args.receiver))  # ends at the end of its input
        return 0
    if args.worker == "minute-loop":
        exit_when_parent_goes()
        loop_worker(args.url)
        return 0

    if importlib.util.find_spec("apscheduler") is None:
        print("APScheduler is missing: pip install -r bench/requirements.txt", file=sys.stderr)
        return 2
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    print("$ " + shlex.join([str(python), "-m", "bench.alternatives", *sys.argv[1:]]))
    counts = [1, 100] if args.quick else [1, 100, 1000]
    loop_counts = [100] if args.quick else counts
    loop_minutes = 1 if args.quick else 2
    print(
        f"# firing lateness next to the alternatives, PostgreSQL, {os.cpu_count()} cores,"
        f" load average {os.getloadavg()[0]:.1f} at the start,"
        f" {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; the loop measured over {loop_minutes}"
        f" minute boundar{'y' if loop_minutes == 1 else 'ies'} per N"
    )
    print(flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as folder, running_receiver() as receiver:
        logs = Path(folder)
        rows: list[dict[str, Any]] = []
        notes: list[str] = []
        measurements = [
            (OURS, lambda: measure_ours(receiver, counts, logs, rows, notes)),
            (APS, lambda: measure_apscheduler(receiver, counts, logs, rows, notes)),
            (LOOP, lambda: measure_loop(receiver, loop_counts, loop_minutes, logs, rows, notes)),
        ]
        for system, measure in measurements:
            try:
                measure()
            except Exception as exc:  # one system failing still leaves the others' figures
                first_line = str(exc).splitlines()[0] if str(exc) else ""
                notes.append(f"{system}: stopped by {type(exc).__name__}: {first_line}")
                print(f"  {system} failed:", file=sys.stderr)
                traceback.print_exc()
    print_tables(rows, counts, notes)
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
