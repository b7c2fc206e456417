"""Drill: kill -9 one of two replicas while deliveries are in flight; nothing may be lost.

Two replicas on one PostgreSQL schema (SCHEDULER_LEASE_SECONDS=5, DELIVERY_TIMEOUT_SECONDS=2 by
default), `--tasks` tasks (default 10) firing `@every 1s`, half of them to a webhook that takes
`--slow-seconds` (default 1.0) to answer, so that work is always in flight. After `--kill-after`
seconds the second replica is killed with SIGKILL; the first carries on alone until the end of
the run, then gets SIGTERM. Counted from the receiver's side:

* missing must be 0 (work the dead replica held is taken over when its lease runs out);
* every duplicate must be a redelivery (same Idempotency-Key) of a request the killed replica
  had in flight (sent, answer not recorded) at the moment of the kill.

The receiver notes each request's source port and the drill samples the killed replica's
connections from /proc, so each arrival is attributed to the replica that sent it.

    python -m drills.kill                     # 2 minutes, kill after 48 s (about 2.5 min in all)
    python -m drills.kill --short             # 40 s, kill after 16 s
    python -m drills.kill --seconds 90 --kill-after 30 --lease 5

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test).
"""

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from bench.common import temporary_database
from drills.common import (
    US,
    Arrival,
    EveryTask,
    Receiver,
    Tally,
    Workspace,
    add_run_length,
    api,
    base_parser,
    create_every_task,
    delivered_in_log,
    local_ports_to,
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

DRILL = "kill"
RECENT = 1.0  # an answer this close before the kill may not have been recorded yet


def clock(unix: float) -> str:
    return f"{datetime.fromtimestamp(unix, UTC):%H:%M:%S.%f}"[:-3]


def main() -> int:
    parser = base_parser(__doc__)
    add_run_length(parser, default=120, short=40)
    parser.add_argument("--kill-after", type=float, help="seconds (default 40 %% of the run)")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--slow-tasks", type=int, help="how many answer slowly (default half)")
    parser.add_argument("--slow-seconds", type=float, default=1.0)
    parser.add_argument("--lease", type=float, default=5.0, help="SCHEDULER_LEASE_SECONDS")
    parser.add_argument("--timeout", type=float, default=2.0, help="DELIVERY_TIMEOUT_SECONDS")
    args = parser.parse_args()
    seconds = run_length(args)
    kill_after = 0.4 * seconds if args.kill_after is None else args.kill_after
    return run_drill(
        DRILL, args.keep_logs, lambda workspace: drill(workspace, args, seconds, kill_after)
    )


@dataclass(frozen=True)
class Kill:
    """What the act left to judge: when the victim was killed, the local ports of its connections
    to the receiver, when the run stopped, and whether the survivor shut down cleanly."""

    at: float
    victim_ports: set[int]
    stop_us: int
    clean: list[bool]


def drill(
    workspace: Workspace, args: argparse.Namespace, seconds: float, kill_after: float
) -> tuple[Tally, list[str], str]:
    """Two replicas and the tasks up, kill -9 of one of them mid-run, then the count."""
    with temporary_database("postgresql") as database_url:
        receiver, survivor, victim, tasks = set_up(
            workspace, database_url, args, seconds, kill_after
        )
        kill = act(receiver, survivor, victim, seconds, kill_after)
        return judge(receiver, tasks, kill, args.timeout)


def set_up(
    workspace: Workspace,
    database_url: str,
    args: argparse.Namespace,
    seconds: float,
    kill_after: float,
) -> tuple[Receiver, ServiceProcess, ServiceProcess, dict[str, EveryTask]]:
    """The receiver, the survivor and the victim on one schema, and `--tasks` tasks @every 1s
    created through the survivor, `--slow-tasks` of them (default half) answered slowly."""
    slow_tasks = args.tasks // 2 if args.slow_tasks is None else args.slow_tasks
    receiver = workspace.receiver().start()
    env = service_env(
        database_url,
        SCHEDULER_LEASE_SECONDS=f"{args.lease:g}",
        DELIVERY_TIMEOUT_SECONDS=f"{args.timeout:g}",
    )
    survivor = workspace.service(env, "survivor")
    victim = workspace.service(env, "victim")
    survivor.start(timeout=60)
    victim.start(timeout=60)
    say(f"survivor on port {survivor.port}, victim on port {victim.port}")
    with api(survivor.base_url) as client:
        tasks = {}
        for i in range(args.tasks):
            delay = args.slow_seconds if i < slow_tasks else 0.0
            task = create_every_task(
                client,
                name=f"{'slow' if delay else 'fast'}-{i}",
                seconds=1,
                webhook_url=receiver.url(str(i), delay=delay),
            )
            tasks[task.id] = task
    say(
        f"{len(tasks)} tasks @every 1s ({slow_tasks} answered after {args.slow_seconds:g}"
        f" s); kill -9 of the victim after {kill_after:g} s, run {seconds:g} s"
    )
    return receiver, survivor, victim, tasks


def act(
    receiver: Receiver,
    survivor: ServiceProcess,
    victim: ServiceProcess,
    seconds: float,
    kill_after: float,
) -> Kill:
    """Note the victim's connections until `kill_after`, kill -9 it, let the survivor carry on
    alone to the end of the run, then SIGTERM it."""
    assert victim.process is not None
    victim_ports: set[int] = set()
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.2):
            victim_ports.update(local_ports_to(victim.process.pid, receiver.port))

    sampler = threading.Thread(target=sample, daemon=True)
    start = time.monotonic()
    with progress(receiver):
        sampler.start()
        time.sleep(max(0.0, start + kill_after - time.monotonic()))
        sampling.set()
        sampler.join()
        victim_ports.update(local_ports_to(victim.process.pid, receiver.port))
        kill_time = time.time()
        victim.kill()
        say(f"victim killed (SIGKILL) at {clock(kill_time)}")
        while time.monotonic() < start + seconds:
            if survivor.process.poll() is not None:
                say("the survivor exited on its own")
                break
            time.sleep(0.5)
    stop_us = now_us()
    clean = sigterm_all([survivor])
    say(
        f"survivor SIGTERMed, clean: {clean}; 'delivery succeeded' lines: "
        f"survivor {delivered_in_log(survivor)}, victim {delivered_in_log(victim)}"
    )
    return Kill(kill_time, victim_ports, stop_us, clean)


def judge(
    receiver: Receiver, tasks: dict[str, EveryTask], kill: Kill, timeout: float
) -> tuple[Tally, list[str], str]:
    """Nothing missing, and every duplicate a redelivery of what the victim had in flight."""
    time.sleep(0.5)
    arrivals = receiver.records()
    tally = tally_every(arrivals, tasks, until_us=kill.stop_us - 1 * US)
    report_tally(tally, tasks, show=20)
    in_flight, recent, unexplained, not_redelivered = explain_duplicates(
        arrivals, tasks, tally, kill
    )
    late = [x for x in tally.lateness if x > timeout + 1]
    say(
        f"{len(late)} occurrences first arrived more than {timeout + 1:g} s late "
        "(work the victim had claimed but not sent, taken over after its lease)"
    )
    problems = []
    if tally.missing:
        problems.append(f"{len(tally.missing)} missing")
    if unexplained:
        problems.append(f"{len(unexplained)} duplicates not explained by the kill")
    if not_redelivered:
        problems.append(f"{len(not_redelivered)} requests in flight at the kill never sent again")
    if not in_flight:
        problems.append("nothing of the victim's was in flight at the kill (no test)")
    if not all(kill.clean):
        problems.append("the survivor did not shut down cleanly")
    passed = (
        f"nothing lost; redelivered={tally.redelivered}, all in flight at the kill "
        f"({len(in_flight)} in flight, {len(recent)} just answered)"
    )
    return tally, problems, passed


def explain_duplicates(
    arrivals: list[Arrival], tasks: dict[str, EveryTask], tally: Tally, kill: Kill
) -> tuple[list[Arrival], list[Arrival], list[tuple[Arrival, Arrival]], set[str]]:
    """The victim's requests in flight at the kill and answered just before it, the duplicates
    they do not explain, and the Idempotency-Keys in flight that were never sent again."""
    from_victim = [a for a in arrivals if a.peer in kill.victim_ports]
    in_flight = [a for a in from_victim if a.at < kill.at < a.done]
    recent = [a for a in from_victim if kill.at - RECENT < a.done <= kill.at]
    in_flight_keys = {a.key for a in in_flight}
    recent_keys = {a.key for a in recent}
    say(
        f"victim sent {len(from_victim)} requests (from {len(kill.victim_ports)} connections);"
        f" {len(in_flight)} were in flight at the kill, {len(recent)} more answered in "
        f"the {RECENT:g} s before it"
    )
    redelivered_keys = {extra.key for first, extra in tally.duplicate_copies}
    explained = [
        (first, extra)
        for first, extra in tally.duplicate_copies
        if extra.key == first.key and first.key in in_flight_keys | recent_keys
    ]
    unexplained = [p for p in tally.duplicate_copies if p not in explained]
    for first, extra in explained:
        say(
            f"  redelivered {tasks[first.task].name}: first sent {clock(first.at)}, "
            f"again {clock(extra.at)} ({extra.at - kill.at:.1f} s after the kill)"
        )
    return in_flight, recent, unexplained, in_flight_keys - redelivered_keys


if __name__ == "__main__":
    sys.exit(main())
