"""The once-a-minute loop this service replaced, in a child process: reload the active tasks
from a PostgreSQL table, send (one after the other, with httpx) each whose cron matches the
current minute, then sleep 60 s. Its tasks are `* * * * *`; lateness counts from the minute
boundary. Its phase within the minute is wherever the process happened to start, so its
lateness is that phase plus the sending time: anything from 0 to 60 s on another run.

    python -m bench.peers.minute_loop --url URL
"""

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from app.config import normalize_database_url
from bench.common import temporary_database
from bench.peers.shared import (
    answer,
    arrivals,
    child,
    exit_when_parent_goes,
    forget_arrivals,
    report,
    stamp,
    summarize,
)

MODULE = "bench.peers.minute_loop"
NAME = "once-a-minute loop"
LOOP_SLEEP_SECONDS = 60
LOAD_ACTIVE_TASKS = "SELECT id, schedule, webhook_url, payload FROM minute_tasks WHERE active"
CREATE_TABLE = (
    "CREATE TABLE minute_tasks (id serial PRIMARY KEY, name text NOT NULL,"
    " schedule text NOT NULL, webhook_url text NOT NULL, payload jsonb NOT NULL,"
    " active boolean NOT NULL DEFAULT true)"
)
INSERT_TASK = (
    "INSERT INTO minute_tasks (name, schedule, webhook_url, payload)"
    " VALUES (:name, '* * * * *', :url, CAST(:payload AS jsonb))"
)


def send_due(client: httpx.Client, tasks: list) -> tuple[int, int]:
    """Send each task whose cron matches this minute, one after another; (sent, failed)."""
    from croniter import croniter

    now = datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0)
    sent = failed = 0
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
    return sent, failed


def loop(url: str) -> None:
    """The loop as the original ran it: load, send what is due this minute, sleep 60 s."""
    engine = create_engine(url, pool_pre_ping=True)
    with httpx.Client(timeout=15) as client:
        while True:
            started = time.time()
            sent = failed = 0
            error = ""
            try:
                with engine.connect() as conn:
                    tasks = conn.execute(text(LOAD_ACTIVE_TASKS)).all()
                sent, failed = send_due(client, tasks)
            except Exception as exc:  # a pass that fails is logged and the loop goes on
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                print(f"pass failed: {error}", file=sys.stderr, flush=True)
            line = {"started": started, "finished": time.time(), "sent": sent, "failed": failed}
            answer({**line, "error": error})
            time.sleep(LOOP_SLEEP_SECONDS)


# --- in the parent --------------------------------------------------------------------------


def replace_tasks(engine, receiver: str, count: int) -> None:
    """Make the table hold `count` every-minute tasks posting to the receiver."""
    rows = [{"name": f"loop {i}", "url": f"{receiver}/hook", "payload": "{}"} for i in range(count)]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM minute_tasks"))
        conn.execute(text(INSERT_TASK), rows)


def one_round(process, engine, receiver: str, count: int, minutes: int) -> dict:
    """`minutes` passes of the loop over `count` tasks; the summary row."""
    replace_tasks(engine, receiver, count)
    forget_arrivals(receiver)
    inserted = time.time()
    wait = LOOP_SLEEP_SECONDS + 30 + count / 20
    passes = [process.receive(timeout=wait) for _ in range(minutes)]
    # Every minute boundary after the tasks existed and up to the last pass is owed N
    # deliveries; a minute the loop's drift skipped shows as misses.
    boundaries = int(passes[-1]["started"] // 60 - inserted // 60)
    row = summarize(NAME, count, arrivals(receiver), count * boundaries)
    worst = max(p["finished"] - p["started"] for p in passes) * 1000
    row["notes"].append(f"a pass (reload + sending) took up to {worst:.0f} ms")
    row["notes"] += [f"a pass failed: {p['error']}" for p in passes if p["error"]]
    return row


def measure(receiver: str, counts: list[int], minutes: int, logs: Path, rows, notes) -> None:
    """The loop over `minutes` minute boundaries at each N, on a throw-away schema."""
    with temporary_database("postgresql") as url:
        engine = create_engine(normalize_database_url(url), pool_pre_ping=True)
        with engine.begin() as conn:
            conn.execute(text(CREATE_TABLE))
        try:
            with child(MODULE, ["--url", normalize_database_url(url)], logs / "loop.log") as proc:
                first = proc.receive(timeout=30)  # the start-up pass, with no tasks yet
                notes.append(
                    f"{NAME}: its passes started {first['started'] % 60:.0f} s past the minute;"
                    " its lateness is that phase plus the sending time (0 to 60 s on another run)"
                )
                for count in counts:
                    rows.append(one_round(proc, engine, receiver, count, minutes))
                    report(rows[-1])
        finally:
            engine.dispose()


def main() -> int:
    """The child: the loop, until the parent closes our stdin."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    exit_when_parent_goes()
    loop(parser.parse_args().url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
