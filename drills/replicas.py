"""Drill: three replicas on one PostgreSQL schema deliver every occurrence exactly once.

Starts the drills' receiver and three `python main.py` replicas (different ports, one throw-away
PostgreSQL schema, service defaults otherwise), creates `--tasks` tasks (default 20) that fire
`@every 1s` through the first replica, lets them run for `--minutes` (default 10), then SIGTERMs
all replicas at once and counts from the receiver's side: every whole second from each task's
first fire time to one second before the SIGTERM is expected exactly once.

    python -m drills.replicas                 # 10 minutes (+ about 15 s of setup and count)
    python -m drills.replicas --short         # 1 minute
    python -m drills.replicas --minutes 3 --tasks 20 --replicas 3

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test).
Load: --tasks requests per second to 127.0.0.1, three service processes.
"""

import argparse
import sys
import time

from bench.common import temporary_database
from drills.common import (
    US,
    EveryTask,
    Receiver,
    Tally,
    Workspace,
    add_run_length,
    api,
    base_parser,
    create_every_task,
    delivered_in_log,
    now_us,
    progress,
    report_tally,
    run_drill,
    run_length,
    say,
    service_env,
    sigterm_all,
    tally_every,
)
from harness.service import ServiceProcess

DRILL = "replicas"


def main() -> int:
    parser = base_parser(__doc__)
    add_run_length(parser, default=600, short=60)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    seconds = run_length(args)

    return run_drill(DRILL, args.keep_logs, lambda workspace: drill(workspace, args, seconds))


def drill(
    workspace: Workspace, args: argparse.Namespace, seconds: float
) -> tuple[Tally, list[str], str]:
    """Replicas and tasks up, the load run and stopped at once, then the count."""
    with temporary_database("postgresql") as database_url:
        receiver, replicas, tasks = set_up(workspace, database_url, args, seconds)
        stop_us, clean = act(receiver, replicas, seconds)
        return judge(receiver, replicas, tasks, stop_us, clean)


def set_up(
    workspace: Workspace, database_url: str, args: argparse.Namespace, seconds: float
) -> tuple[Receiver, list[ServiceProcess], dict[str, EveryTask]]:
    """The receiver, `--replicas` replicas on one schema and `--tasks` tasks @every 1s."""
    receiver = workspace.receiver().start()
    env = service_env(database_url)
    replicas = [workspace.service(env, f"replica{i + 1}") for i in range(args.replicas)]
    for replica in replicas:
        replica.start(timeout=60)
    say(f"{len(replicas)} replicas up on ports {[r.port for r in replicas]}")
    with api(replicas[0].base_url) as client:
        tasks = {}
        for i in range(args.tasks):
            task = create_every_task(
                client, name=f"every-1s-{i}", seconds=1, webhook_url=receiver.url(str(i))
            )
            tasks[task.id] = task
    say(f"{len(tasks)} tasks @every 1s created; running for {seconds:g} s")
    return receiver, replicas, tasks


def act(
    receiver: Receiver, replicas: list[ServiceProcess], seconds: float
) -> tuple[int, list[bool]]:
    """Let the replicas deliver for `seconds` (unless one exits), then SIGTERM all of them at
    once; (the stop time, which of them shut down cleanly)."""
    with progress(receiver):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            dead = [r.port for r in replicas if r.process.poll() is not None]
            if dead:
                say(f"replica(s) on port {dead} exited on their own")
                break
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    stop_us = now_us()
    clean = sigterm_all(replicas)
    say(f"SIGTERM sent to all; clean shutdowns: {clean}")
    return stop_us, clean


def judge(
    receiver: Receiver,
    replicas: list[ServiceProcess],
    tasks: dict[str, EveryTask],
    stop_us: int,
    clean: list[bool],
) -> tuple[Tally, list[str], str]:
    """Every fire time up to the stop exactly once, and every replica delivered its share."""
    per_replica = [delivered_in_log(r) for r in replicas]
    say(f"'delivery succeeded' lines per replica: {per_replica}")
    time.sleep(0.5)
    arrivals = receiver.records()
    tally = tally_every(arrivals, tasks, until_us=stop_us - 1 * US)
    say(f"{len(arrivals)} arrivals in all")
    report_tally(tally, tasks)
    problems = []
    if tally.missing:
        problems.append(f"{len(tally.missing)} missing")
    if tally.duplicates:
        problems.append(
            f"{tally.duplicates} duplicates ({tally.redelivered} same key, "
            f"{tally.double_claims} other key)"
        )
    if tally.off_grid or tally.unknown:
        problems.append("arrivals off the schedule")
    if not all(clean):
        problems.append("a replica did not shut down cleanly")
    if min(per_replica) == 0:
        problems.append("a replica delivered nothing")
    return tally, problems, f"exactly once, deliveries per replica {per_replica}"


if __name__ == "__main__":
    sys.exit(main())
