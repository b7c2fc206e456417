"""Drill: the webhook receiver goes away for a while; every occurrence is delivered once it is back.

One replica (service defaults: RETRY_BACKOFF_BASE_SECONDS=2, i.e. retries 2, 4, 8, 16, 32 s
apart...), `--tasks` tasks (default 5) firing `@every 1s` with `max_retry` 20, and one control
task with `max_retry` 2. After `--before` seconds the receiver process is killed; it is started
again on the same port `--down-seconds` later (default 60; short mode 10). The drill then waits
until every occurrence due before the receiver came back has arrived (at most 1.2 x down + 30 s),
reads every task's log rows through `GET /task-logs?task_id=...`, and counts:

* the main tasks: nothing missing, no duplicates, still active; the retries in their logs match
  the attempt numbers the receiver saw (X-Insignia-Attempt);
* the control task: its retries run out during the outage, so it is deactivated with the last
  error as its reason, and the occurrences due from then on are not delivered (by design: an
  inactive task sends nothing on its schedule). It is reported, not counted in RESULT.

    python -m drills.receiver_down               # 60 s down (about 3 minutes in all)
    python -m drills.receiver_down --short       # 10 s down (about 40 s in all)
    python -m drills.receiver_down --down-seconds 120 --tasks 5 --backoff-base 1

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test).
"""

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from bench.common import temporary_database
from drills.common import (
    US,
    Arrival,
    EveryTask,
    Receiver,
    Tally,
    Workspace,
    api,
    base_parser,
    create_every_task,
    now_us,
    pick,
    report_tally,
    run_drill,
    say,
    service_env,
    sigterm_all,
    tally_every,
    task_logs,
    us_to_iso,
)

DRILL = "receiver_down"


def clock(unix: float) -> str:
    return f"{datetime.fromtimestamp(unix, UTC):%H:%M:%S.%f}"[:-3]


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--down-seconds", type=float, help="default 60 (short mode: 10)")
    parser.add_argument("--before", type=float, help="seconds of normal running first (20/10)")
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--max-retry", type=int, default=20)
    parser.add_argument("--backoff-base", type=float, help="RETRY_BACKOFF_BASE_SECONDS")
    parser.add_argument("--no-control", action="store_true", help="leave out the control task")
    args = parser.parse_args()
    args.down_seconds = pick(args.down_seconds, default=60, short=10, is_short=args.short)
    args.before = pick(args.before, default=20, short=10, is_short=args.short)
    return run_drill(DRILL, args.keep_logs, lambda workspace: drill(workspace, args))


@dataclass
class Outage:
    """When the receiver went down and came back (unix times), and when counting stopped."""

    down_at: float = 0.0
    up_at: float = 0.0
    stop_us: int = 0


@dataclass(frozen=True)
class Books:
    """What the service's API said at the end: the main tasks' log rows and states, and the
    control task's state and log rows (None and none without a control task)."""

    logs: dict[str, list[dict]]
    states: dict[str, dict]
    control_state: dict | None
    control_logs: list[dict]


def drill(workspace: Workspace, args: argparse.Namespace) -> tuple[Tally, list[str], str]:
    """The service and the tasks up, the receiver away and back, then the count."""
    overrides = {}
    if args.backoff_base is not None:
        overrides["RETRY_BACKOFF_BASE_SECONDS"] = f"{args.backoff_base:g}"
    with temporary_database("postgresql") as database_url:
        receiver = workspace.receiver().start()
        service = workspace.service(service_env(database_url, **overrides), "service")
        service.start(timeout=60)
        with api(service.base_url) as client:
            tasks, control = set_up(client, receiver, args)
        outage = act(receiver, tasks, args)
        with api(service.base_url) as client:
            books = read_books(client, tasks, control, until=us_to_iso(outage.stop_us))
        clean = sigterm_all([service])
        time.sleep(0.5)
        return judge(receiver.records(), tasks, control, outage, books, clean, args.down_seconds)


def set_up(
    client: httpx.Client, receiver: Receiver, args: argparse.Namespace
) -> tuple[dict[str, EveryTask], EveryTask | None]:
    """`--tasks` tasks @every 1s with `--max-retry`, and the control task with max_retry 2
    (None with `--no-control`)."""
    tasks: dict[str, EveryTask] = {}
    for i in range(args.tasks):
        task = create_every_task(
            client,
            name=f"retry{args.max_retry}-{i}",
            seconds=1,
            webhook_url=receiver.url(str(i)),
            max_retry=args.max_retry,
        )
        tasks[task.id] = task
    control = None
    if not args.no_control:
        control = create_every_task(
            client,
            name="control-retry2",
            seconds=1,
            webhook_url=receiver.url("control"),
            max_retry=2,
        )
    say(
        f"{len(tasks)} tasks @every 1s with max_retry {args.max_retry}"
        + (", 1 control task with max_retry 2" if control else "")
        + f"; receiver down after {args.before:g} s for {args.down_seconds:g} s"
    )
    return tasks, control


def act(receiver: Receiver, tasks: dict[str, EveryTask], args: argparse.Namespace) -> Outage:
    """Run `--before` s, kill the receiver, start it again on the same port `--down-seconds`
    later, and wait until everything due before the comeback arrived (or 1.2 x down + 30 s)."""
    outage = Outage()
    time.sleep(args.before)
    outage.down_at = time.time()
    receiver.stop()
    say(f"receiver killed at {clock(outage.down_at)}")
    time.sleep(args.down_seconds)
    receiver.start()
    outage.up_at = time.time()
    say(f"receiver back on the same port at {clock(outage.up_at)}")
    due_us = int(outage.up_at * US)
    wanted = {(t.id, f) for t in tasks.values() for f in t.fire_times(until_us=due_us)}
    deadline = time.monotonic() + 1.2 * args.down_seconds + 30
    while time.monotonic() < deadline:
        got = {(a.task, a.sched_us) for a in receiver.records()}
        if wanted <= got:
            break
        time.sleep(1.0)
    say(
        f"{'everything due before the comeback arrived' if wanted <= got else 'GAVE UP'}"
        f" {time.time() - outage.up_at:.1f} s after the comeback"
    )
    time.sleep(2.0)
    outage.stop_us = now_us()
    return outage


def read_books(
    client: httpx.Client, tasks: dict[str, EveryTask], control: EveryTask | None, *, until: str
) -> Books:
    """Every task's log rows up to `until` and its state now."""
    return Books(
        logs={task_id: task_logs(client, task_id, until=until) for task_id in tasks},
        states={task_id: client.get(f"/tasks/{task_id}").json() for task_id in tasks},
        control_state=client.get(f"/tasks/{control.id}").json() if control else None,
        control_logs=task_logs(client, control.id, until=until) if control else [],
    )


def judge(
    arrivals: list[Arrival],
    tasks: dict[str, EveryTask],
    control: EveryTask | None,
    outage: Outage,
    books: Books,
    clean: list[bool],
    down_seconds: float,
) -> tuple[Tally, list[str], str]:
    """The main tasks: nothing missing, nothing twice, still active, every failed attempt
    logged; the control task deactivated."""
    main_arrivals = [a for a in arrivals if a.task in tasks]
    tally = tally_every(main_arrivals, tasks, until_us=outage.stop_us - 1 * US)
    report_tally(tally, tasks)
    in_outage, waits = describe_outage(main_arrivals, outage)
    failed_rows, retries_seen = describe_logs(main_arrivals, tasks, books.logs)
    inactive = [books.states[t]["name"] for t in tasks if books.states[t]["status"] != "active"]
    if control is not None and books.control_state is not None:
        describe_control(arrivals, control, books, outage.stop_us)
    problems = []
    if tally.missing:
        problems.append(f"{len(tally.missing)} missing")
    if tally.duplicates:
        problems.append(f"{tally.duplicates} duplicates ({tally.redelivered} same key)")
    if inactive:
        problems.append(f"main tasks deactivated: {inactive}")
    if failed_rows != retries_seen:
        problems.append(f"{failed_rows} failed log rows but {retries_seen} retries seen")
    if not in_outage:
        problems.append("nothing fell due during the outage (no test)")
    if not all(clean):
        problems.append("unclean shutdown")
    if books.control_state is not None and books.control_state["status"] != "inactive":
        problems.append("the control task was not deactivated")
    passed = (
        f"all {len(in_outage)} occurrences due in the {down_seconds:g} s outage delivered "
        f"after {failed_rows} retries, the last {max(waits):.0f} s after the comeback"
        + ("; control task deactivated as designed" if books.control_state is not None else "")
    )
    return tally, problems, passed


def describe_outage(
    main_arrivals: list[Arrival], outage: Outage
) -> tuple[list[Arrival], list[float]]:
    """The main tasks' occurrences due while the receiver was down, and how long after the
    comeback each arrived; says on which attempts they were delivered."""
    down_us, up_us = int(outage.down_at * US), int(outage.up_at * US)
    in_outage = [
        a
        for a in main_arrivals
        if a.sched_us is not None and down_us <= a.sched_us <= up_us and a.attempt >= 1
    ]
    attempts = Counter(a.attempt for a in in_outage)
    waits = [a.at - outage.up_at for a in in_outage]
    say(
        f"{len(in_outage)} occurrences of the main tasks fell due during the outage; delivered "
        f"on attempt {dict(sorted(attempts.items()))}; "
        + (f"the last {max(waits):.1f} s after the comeback" if waits else "")
    )
    return in_outage, waits


def describe_logs(
    main_arrivals: list[Arrival], tasks: dict[str, EveryTask], logs: dict[str, list[dict]]
) -> tuple[int, int]:
    """The failed rows in the main tasks' logs and the failed attempts the receiver's
    X-Insignia-Attempt implies (they must agree); says both, with an example."""
    failed_rows = sum(1 for rows in logs.values() for r in rows if r["status"] == "failed")
    success_rows = sum(1 for rows in logs.values() for r in rows if r["status"] == "success")
    retries_seen = sum(a.attempt - 1 for a in main_arrivals if a.attempt >= 1)
    max_retry_count = max((r["retry_count"] for rows in logs.values() for r in rows), default=0)
    say(
        f"task logs of the main tasks: {success_rows} success, {failed_rows} failed rows; "
        f"highest retry_count {max_retry_count}; failed attempts implied by the receiver's "
        f"X-Insignia-Attempt: {retries_seen}"
    )
    for task_id, rows in list(logs.items())[:1]:
        sample = next((r for r in rows if r["status"] == "failed"), None)
        if sample:
            say(f"  e.g. {tasks[task_id].name}: {sample['message']}")
    return failed_rows, retries_seen


def describe_control(
    arrivals: list[Arrival], control: EveryTask, books: Books, stop_us: int
) -> None:
    """Say what became of the control task: its state and the occurrences it never sent."""
    assert books.control_state is not None
    delivered = {a.sched_us for a in arrivals if a.task == control.id}
    due = control.fire_times(until_us=stop_us - 1 * US)
    lost = [f for f in due if f not in delivered]
    failed_control = [r for r in books.control_logs if r["status"] == "failed"]
    say(
        f"control task (max_retry 2): {books.control_state['status']}, reason: "
        f"{books.control_state.get('status_reason')!r}; {len(failed_control)} failed attempts "
        f"logged; {len(lost)} of its {len(due)} occurrences never delivered"
        + (f" (due {us_to_iso(lost[0])} .. {us_to_iso(lost[-1])})" if lost else "")
    )


if __name__ == "__main__":
    sys.exit(main())
