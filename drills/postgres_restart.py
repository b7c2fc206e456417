"""Drill: restart the PostgreSQL server under a running replica; the service must ride it out.

One replica (SCHEDULER_LEASE_SECONDS=10 so that anything whose outcome could not be recorded
is sent again within the run) with `--tasks` tasks (default 10) firing `@every 1s`. After
`--restart-after` seconds (default a third of the run) the drill runs

    pg_ctlcluster --skip-systemctl-redirect <version> main restart

which restarts THIS MACHINE'S PostgreSQL server (every database on it: other people's test runs
see their connections dropped for a few seconds). With `--hold-down S` it runs `stop`, waits
S seconds and runs `start` instead: a longer outage, past the recorder's retries (about 6 s).
Meanwhile threads poll /readyz and GET /tasks every 0.25 s (503 expected, never 500).
At the end of the run the load tasks are paused and a one-time task is created through a second,
API-only replica, to check that the scheduler's NOTIFY listener came back too (the scheduler
must be woken by it, not by its 30 s idle check). Then SIGTERM, and the count:

* the process must still be running, /readyz must have gone 503 (or unreachable) and back to 200;
* missing must be 0: occurrences due during the outage are sent when the database is back
  (within MISFIRE_GRACE_SECONDS they count as on time, trigger `schedule`);
* duplicates may only be redeliveries (same Idempotency-Key) of attempts whose outcome could
  not be recorded during the outage.

    python -m drills.postgres_restart            # 90 s run (about 2 minutes in all)
    python -m drills.postgres_restart --short    # 40 s run (about 1 minute in all)
    python -m drills.postgres_restart --short --hold-down 10   # a 10 s outage

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test) on this
machine, and the right to run pg_ctlcluster (root or postgres). Never run it in a test suite.
"""

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bench.common import temporary_database
from drills.common import (
    AUTH,
    US,
    Arrival,
    EveryTask,
    ReadinessWatcher,
    Receiver,
    Tally,
    Workspace,
    add_run_length,
    api,
    base_parser,
    create_every_task,
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

DRILL = "postgres_restart"


def pg_ctlcluster(action: str) -> tuple[bool, str]:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    done = subprocess.run(  # noqa: S603 (a fixed command)
        command, capture_output=True, text=True, timeout=120, check=False
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


def restart_postgres(hold_down: float) -> tuple[bool, float, str]:
    """Restart the local cluster (or stop it, wait `hold_down` s, start it); (succeeded,
    seconds taken, output)."""
    started = time.monotonic()
    if hold_down <= 0:
        ok, output = pg_ctlcluster("restart")
        return ok, time.monotonic() - started, output
    stopped, output = pg_ctlcluster("stop")
    try:
        time.sleep(hold_down)
    finally:  # never leave the machine's server down, not even on Ctrl-C
        ok, more = pg_ctlcluster("start")
        if not ok:
            time.sleep(2)
            ok, more = pg_ctlcluster("start")
    return stopped and ok, time.monotonic() - started, (output + " " + more).strip()


def clock(unix: float) -> str:
    return f"{datetime.fromtimestamp(unix, UTC):%H:%M:%S.%f}"[:-3]


def main() -> int:
    parser = base_parser(__doc__)
    add_run_length(parser, default=90, short=40)
    parser.add_argument("--restart-after", type=float, help="seconds (default a third of the run)")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--lease", type=float, default=10.0, help="SCHEDULER_LEASE_SECONDS")
    parser.add_argument(
        "--hold-down",
        type=float,
        default=0.0,
        help="instead of a restart: stop the server, wait this many seconds, start it",
    )
    args = parser.parse_args()
    seconds = run_length(args)
    restart_after = seconds / 3 if args.restart_after is None else args.restart_after

    return run_drill(
        DRILL, args.keep_logs, lambda workspace: drill(workspace, args, seconds, restart_after)
    )


@dataclass
class Restart:
    """What the act saw: whether the restart worked and when, whether the service survived it,
    when the load stopped, /readyz and GET /tasks over time, how late the NOTIFY probe came
    (None: never), and whether both replicas shut down cleanly."""

    ok: bool = False
    restart_at: float = 0.0
    restarted_at: float = 0.0
    alive: bool = False
    stop_us: int = 0
    transitions: list[tuple[float, str, str]] = field(default_factory=list)
    api_states: list[str] = field(default_factory=list)
    notify_lateness: float | None = None
    clean: list[bool] = field(default_factory=list)


def drill(
    workspace: Workspace, args: argparse.Namespace, seconds: float, restart_after: float
) -> tuple[Tally, list[str], str]:
    """The service, an API-only replica and the tasks up, PostgreSQL restarted, then the count."""
    with temporary_database("postgresql") as database_url:
        receiver, service, api_only, tasks = set_up(workspace, database_url, args, restart_after)
        restart = act(receiver, service, api_only, tasks, args, seconds, restart_after)
        return judge(receiver, tasks, restart)


def set_up(
    workspace: Workspace, database_url: str, args: argparse.Namespace, restart_after: float
) -> tuple[Receiver, ServiceProcess, ServiceProcess, dict[str, EveryTask]]:
    """The receiver, the service, an API-only replica, and `--tasks` tasks @every 1s."""
    receiver = workspace.receiver().start()
    env = service_env(
        database_url,
        SCHEDULER_LEASE_SECONDS=f"{args.lease:g}",
        DELIVERY_TIMEOUT_SECONDS=f"{min(5.0, args.lease / 2):g}",
    )
    service = workspace.service(env, "service").start(timeout=60)
    api_only = workspace.service({**env, "SCHEDULER_ENABLED": "false"}, "api-only")
    api_only.start(timeout=60)
    with api(service.base_url) as client:
        tasks = {}
        for i in range(args.tasks):
            task = create_every_task(
                client, name=f"every-1s-{i}", seconds=1, webhook_url=receiver.url(str(i))
            )
            tasks[task.id] = task
    say(f"{len(tasks)} tasks @every 1s; PostgreSQL restart after {restart_after:g} s")
    return receiver, service, api_only, tasks


def act(
    receiver: Receiver,
    service: ServiceProcess,
    api_only: ServiceProcess,
    tasks: dict[str, EveryTask],
    args: argparse.Namespace,
    seconds: float,
    restart_after: float,
) -> Restart:
    """Restart PostgreSQL under the running service, probe the NOTIFY wake-up if it survived,
    then SIGTERM both replicas."""
    restart = restart_under_watch(receiver, service, tasks, args.hold_down, seconds, restart_after)
    if restart.alive:
        restart.notify_lateness = probe_notify(receiver, api_only)
    restart.clean = sigterm_all([service, api_only])
    log = service.log()
    say(
        f"SIGTERM: clean {restart.clean}; service log: "
        f"{log.count('scheduler pass failed')} failed scheduler passes, "
        f"{log.count('could not record deliveries')} batches not recorded, "
        f"{log.count('wake-up connection lost')} wake-up connection losses"
    )
    return restart


def restart_under_watch(
    receiver: Receiver,
    service: ServiceProcess,
    tasks: dict[str, EveryTask],
    hold_down: float,
    seconds: float,
    restart_after: float,
) -> Restart:
    """Run, restart PostgreSQL at `restart_after`, run to the end, pause the tasks; /readyz and
    GET /tasks are polled all along."""
    restart = Restart()
    start = time.monotonic()
    tasks_api = ReadinessWatcher(service.base_url, path="/tasks?limit=1", headers=AUTH)
    with ReadinessWatcher(service.base_url) as ready, tasks_api, progress(receiver):
        time.sleep(max(0.0, start + restart_after - time.monotonic()))
        restart.restart_at = time.time()
        restart.ok, took, output = restart_postgres(hold_down)
        restart.restarted_at = time.time()
        say(f"PostgreSQL restart {'done' if restart.ok else 'FAILED'} in {took:.1f} s {output}")
        while time.monotonic() < start + seconds:
            if service.process.poll() is not None:
                break
            time.sleep(0.5)
        restart.alive = service.process.poll() is None
        restart.stop_us = now_us()
        with api(service.base_url) as client:
            for task in tasks.values():
                client.post(f"/tasks/{task.id}/pause")
        restart.transitions = list(ready.transitions)
    say(f"service still running after the restart: {restart.alive}")
    for at, state, detail in restart.transitions:
        say(f"  /readyz {state} from {clock(at)}: {detail[:160]}")
    restart.api_states = [state for _, state, _ in tasks_api.transitions]
    for at, state, detail in tasks_api.transitions:
        say(f"  GET /tasks {state} from {clock(at)}: {detail[:100]}")
    return restart


def probe_notify(receiver: Receiver, api_only: ServiceProcess) -> float | None:
    """Seconds from its run_at to the arrival of a one-time task created through the API-only
    replica (None: not within 40 s). Nothing else is due now, so only the scheduler's NOTIFY
    wake-up makes it punctual."""
    time.sleep(2.0)
    run_at = datetime.now(UTC) + timedelta(seconds=1)
    body = {
        "name": "notify-probe",
        "run_at": run_at.isoformat(),
        "webhook_url": receiver.url("probe"),
        "payload": {"probe": True},
    }
    with api(api_only.base_url) as client:
        probe = client.post("/tasks", json=body).json()
    lateness = None
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and lateness is None:
        for arrival in receiver.records():
            if arrival.task == probe["id"]:
                lateness = arrival.at - run_at.timestamp()
        time.sleep(0.2)
    say(
        "one-time task created on the API-only replica after the restart: "
        + (
            f"received {lateness * 1000:.0f} ms after its run_at"
            if lateness is not None
            else "NOT received within 40 s"
        )
    )
    return lateness


def judge(
    receiver: Receiver, tasks: dict[str, EveryTask], restart: Restart
) -> tuple[Tally, list[str], str]:
    """The service rode it out: alive, /readyz down and back, nothing missing, no duplicate with
    another key, the NOTIFY wake-up back, GET /tasks never worse than 503."""
    time.sleep(0.5)
    arrivals = [a for a in receiver.records() if a.task in tasks]
    tally = tally_every(arrivals, tasks, until_us=restart.stop_us - 1 * US)
    report_tally(tally, tasks)
    gap = describe_catch_up(arrivals, restart)
    states = [state for _, state, _ in restart.transitions]
    problems = find_problems(restart, tally, states)
    passed = (
        f"readyz {'->'.join(states)}; redelivered={tally.redelivered}; "
        f"{len(gap)} caught up late as '{'/'.join(sorted({a.trigger for a in gap}))}'"
    )
    return tally, problems, passed


def find_problems(restart: Restart, tally: Tally, states: list[str]) -> list[str]:
    """What went wrong, given the /readyz `states` in order (none: PASS)."""
    went_down = any(s != "200" for s in states)
    came_back = bool(states) and states[-1] == "200"
    problems = []
    if not restart.ok:
        problems.append("PostgreSQL restart failed")
    if not restart.alive:
        problems.append("the service died")
    if not went_down:
        problems.append("/readyz never left 200")
    if not came_back:
        problems.append("/readyz did not come back to 200")
    if tally.missing:
        problems.append(f"{len(tally.missing)} missing")
    if tally.double_claims:
        problems.append(f"{tally.double_claims} duplicates with another key")
    if restart.notify_lateness is None or restart.notify_lateness > 0.5:
        problems.append("the NOTIFY wake-up did not come back")
    if not all(restart.clean):
        problems.append("unclean shutdown")
    if any(state not in ("200", "503") for state in restart.api_states):
        problems.append(
            f"GET /tasks answered {restart.api_states} (503 expected while the database is away)"
        )
    return problems


def describe_catch_up(arrivals: list[Arrival], restart: Restart) -> list[Arrival]:
    """The first attempts that arrived more than 0.5 s late (the occurrences due from the
    restart until deliveries were on time again), after saying how they were caught up."""
    gap = [
        a
        for a in arrivals
        if a.sched_us is not None and a.at - a.sched_us / US > 0.5 and a.attempt == 1
    ]
    if gap:
        first_due = min(a.sched_us for a in gap) / US
        last_due = max(a.sched_us for a in gap) / US
        triggers = sorted({a.trigger for a in gap})
        say(
            f"{len(gap)} occurrences arrived more than 0.5 s late: due "
            f"{clock(first_due)}..{clock(last_due)}, sent "
            f"{clock(min(a.at for a in gap))}..{clock(max(a.at for a in gap))}, "
            f"at most {max(a.at - a.sched_us / US for a in gap):.1f} s late, "
            f"trigger {triggers} (restart {clock(restart.restart_at)}.."
            f"{clock(restart.restarted_at)})"
        )
    return gap


if __name__ == "__main__":
    sys.exit(main())
