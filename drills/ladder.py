"""Drill: the webhook goes away for ten minutes under the service's defaults; the tasks it
switched off come back by themselves within one step of the health ladder, nothing posted twice.

One replica with the service's defaults (max_retry 3, RETRY_BACKOFF_BASE_SECONDS 2,
AUTO_RESUME_FIRST_SECONDS 300 doubling, `auto_resume` on), `--tasks` tasks (default 5) firing
`@every 1s`. After `--before` seconds the receiver process is killed and started again on the
same port `--down-seconds` later (default 600). During the outage each task spends its retries
and is deactivated with a `resume_at`; probes find the webhook still down and push `resume_at`
a step further. At the comeback the drill reads every task's `resume_at`, then waits for each
task to be active and delivering again. PASS needs: every task active again no later than the
`resume_at` it had at the comeback (plus 30 s), every occurrence due while the tasks were
active delivered, and no occurrence posted twice. Occurrences due while a task was switched off
are not sent, by design (a task that comes back resumes from the present).

    python -m drills.ladder               # 600 s down, the defaults (about 25 minutes)
    python -m drills.ladder --short       # 60 s down, AUTO_RESUME_FIRST_SECONDS=10 (2 minutes)

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test).
"""

import argparse
import sys
import time
from dataclasses import dataclass, field

import httpx

from bench.common import temporary_database
from drills.common import (
    US,
    EveryTask,
    Receiver,
    Tally,
    Workspace,
    api,
    base_parser,
    count_expected,
    create_every_task,
    group_arrivals,
    now_us,
    pick,
    report_tally,
    run_drill,
    say,
    service_env,
    sigterm_all,
    to_us,
)

DRILL = "ladder"
MARGIN_SECONDS = 30.0


@dataclass
class Timeline:
    """When the receiver went down and came back; per task, its resume_at at the comeback and
    when it was seen active again."""

    down_at: float = 0.0
    up_at: float = 0.0
    resume_at: dict[str, float] = field(default_factory=dict)
    back_at: dict[str, float] = field(default_factory=dict)
    stop_us: int = 0


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--down-seconds", type=float, help="default 600 (short mode: 60)")
    parser.add_argument("--before", type=float, help="seconds of normal running first (20/10)")
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--first", type=float, help="AUTO_RESUME_FIRST_SECONDS (short: 10)")
    args = parser.parse_args()
    args.down_seconds = pick(args.down_seconds, default=600, short=60, is_short=args.short)
    args.before = pick(args.before, default=20, short=10, is_short=args.short)
    if args.first is None and args.short:
        args.first = 10.0
    return run_drill(DRILL, args.keep_logs, lambda workspace: drill(workspace, args))


def drill(workspace: Workspace, args: argparse.Namespace):
    overrides = {} if args.first is None else {"AUTO_RESUME_FIRST_SECONDS": f"{args.first:g}"}
    with temporary_database("postgresql") as database_url:
        receiver = workspace.receiver().start()
        service = workspace.service(service_env(database_url, **overrides), "service")
        service.start(timeout=60)
        with api(service.base_url) as client:
            tasks = set_up(client, receiver, args.tasks)
            timeline = act(client, receiver, tasks, args)
            states = {task_id: client.get(f"/tasks/{task_id}").json() for task_id in tasks}
        clean = sigterm_all([service])
        time.sleep(0.5)
        return judge(receiver, tasks, timeline, states, clean)


def set_up(client: httpx.Client, receiver: Receiver, count: int) -> dict[str, EveryTask]:
    """`count` tasks @every 1s with the service's default max_retry and auto_resume."""
    tasks = {}
    for i in range(count):
        task = create_every_task(
            client, name=f"ladder-{i}", seconds=1, webhook_url=receiver.url(str(i))
        )
        tasks[task.id] = task
    say(f"{count} tasks @every 1s, max_retry 3, auto_resume on")
    return tasks


def act(
    client: httpx.Client, receiver: Receiver, tasks: dict[str, EveryTask], args: argparse.Namespace
) -> Timeline:
    """Run, take the receiver away, bring it back, and watch the tasks come back."""
    timeline = Timeline()
    time.sleep(args.before)
    timeline.down_at = time.time()
    receiver.stop()
    say(f"receiver killed; down for {args.down_seconds:g} s")
    time.sleep(args.down_seconds)
    receiver.start()
    timeline.up_at = time.time()
    for task_id in tasks:
        state = client.get(f"/tasks/{task_id}").json()
        at = state["resume_at"]
        timeline.resume_at[task_id] = to_us(at) / US if at else timeline.up_at
    latest = max(timeline.resume_at.values())
    say(
        f"receiver back; status at the comeback: resume_at within "
        f"{latest - timeline.up_at:.0f} s at the latest"
    )
    deadline = latest + MARGIN_SECONDS + 30
    while time.time() < deadline and len(timeline.back_at) < len(tasks):
        for task_id in [t for t in tasks if t not in timeline.back_at]:
            if client.get(f"/tasks/{task_id}").json()["status"] == "active":
                timeline.back_at[task_id] = time.time()
        time.sleep(1.0)
    say(f"{len(timeline.back_at)} of {len(tasks)} tasks active again")
    time.sleep(5.0)  # a few deliveries after the last comeback
    timeline.stop_us = now_us()
    return timeline


def judge(
    receiver: Receiver,
    tasks: dict[str, EveryTask],
    timeline: Timeline,
    states: dict[str, dict],
    clean: list[bool],
) -> tuple[Tally, list[str], str]:
    """Due while active must have arrived; nothing twice; every task back within its step."""
    by_occurrence, tally = group_arrivals(receiver.records(), tasks)
    down_us = int(timeline.down_at * US)
    for task in tasks.values():
        back_us = int(timeline.back_at.get(task.id, timeline.stop_us / US) * US)
        active_times = task.fire_times(until_us=down_us - US) + task.fire_times(
            after_us=back_us + 2 * US, until_us=timeline.stop_us - 2 * US
        )
        tally.add(count_expected(by_occurrence, task, active_times))
    report_tally(tally, tasks)
    late = []
    for task_id, task in tasks.items():
        back = timeline.back_at.get(task_id)
        waited = f"{back - timeline.up_at:.0f} s" if back else "never"
        promised = timeline.resume_at[task_id] - timeline.up_at
        say(f"  {task.name}: back {waited} after the comeback (resume_at said {promised:.0f} s)")
        if back is None or back > timeline.resume_at[task_id] + MARGIN_SECONDS:
            late.append(task.name)
    problems = []
    if tally.missing:
        problems.append(f"{len(tally.missing)} missing while active")
    if tally.duplicates:
        problems.append(f"{tally.duplicates} posted twice")
    if late:
        problems.append(f"not back by their resume_at: {late}")
    if [s for s in states.values() if s["status"] != "active"]:
        problems.append("tasks inactive at the end")
    if not all(clean):
        problems.append("unclean shutdown")
    slowest = max(timeline.back_at.values(), default=timeline.up_at) - timeline.up_at
    passed = (
        f"all {len(tasks)} tasks back by their resume_at, the last {slowest:.0f} s after the "
        f"receiver's comeback; nothing posted twice"
    )
    return tally, problems, passed


if __name__ == "__main__":
    sys.exit(main())
