"""Drill: the service is stopped for a while; on restart each task's `catchup` policy is kept.

One service process on a throw-away PostgreSQL schema with MISFIRE_GRACE_SECONDS=`--grace-seconds`
(default 60, the service's default; short mode 5). Tasks:

* `latest-5s`, `none-5s`, `all-5s`: `@every 5s` (`--interval`) with catchup latest / none / all;
* `all-1s`: `@every 1s` with catchup all, so that a long outage exceeds the cap of 100;
* `once-latest`, `once-none`, `once-all`: one-time tasks due in the middle of the outage.

After `--before` seconds (30; short 15) the service gets SIGTERM, stays down `--down-seconds`
(300; short 20), is started again on the same port and runs `--after` seconds (30; short 15),
then gets SIGTERM again. The receiver records every request's `X-Insignia-Trigger`.

For each recurring task the fire times are split, from the receiver's side, into: before the
stop (all expected), *missed* (due after the last one delivered before the stop and more than
the grace period before the first claim after the restart), *on time at restart* (within the
grace period: all expected, trigger `schedule`) and after. The promise for the missed ones:
latest: exactly the latest of them, once, trigger `catchup`; none: none of them; all: each of
them, the latest 100 at most, trigger `catchup`. A one-time task missed under `none` must end
inactive with a "skipped" reason and send nothing; under latest/all it runs once (`catchup`).
Expected = what the policies promise; anything delivered against a promise fails the drill.

    python -m drills.downtime                    # 300 s down (about 6.5 minutes in all)
    python -m drills.downtime --short            # 20 s down, 5 s grace (about 1 minute)
    python -m drills.downtime --down-seconds 120 --grace-seconds 30

Needs PostgreSQL (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test).
"""

import argparse
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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
    count_expected,
    create_every_task,
    group_arrivals,
    pick,
    report_tally,
    run_drill,
    say,
    service_env,
    sigterm_all,
    us_to_iso,
)
from harness.service import ServiceProcess

DRILL = "downtime"
CATCHUP_LIMIT = 100
AMBIGUOUS_US = 300_000  # fire times this close to the grace boundary may fall either side


def clock(unix: float) -> str:
    return f"{datetime.fromtimestamp(unix, UTC):%H:%M:%S.%f}"[:-3]


def main() -> int:
    parser = base_parser(__doc__)
    parser.add_argument("--down-seconds", type=float, help="default 300 (short mode: 20)")
    parser.add_argument("--before", type=float, help="seconds before the stop (30/15)")
    parser.add_argument("--after", type=float, help="seconds after the restart (30/15)")
    parser.add_argument("--grace-seconds", type=float, help="MISFIRE_GRACE_SECONDS (60/5)")
    parser.add_argument("--interval", type=int, default=5, help="seconds between runs (5)")
    args = parser.parse_args()
    args.down_seconds = pick(args.down_seconds, default=300, short=20, is_short=args.short)
    args.before = pick(args.before, default=30, short=15, is_short=args.short)
    args.after = pick(args.after, default=30, short=15, is_short=args.short)
    args.grace_seconds = pick(args.grace_seconds, default=60, short=5, is_short=args.short)
    return run_drill(DRILL, args.keep_logs, lambda workspace: drill(workspace, args))


@dataclass
class Outage:
    """The stop, the restart and the end as the drill saw them (unix times), whether each SIGTERM
    stopped the service cleanly, and the one-time tasks' states read before the end."""

    stop_at: float = 0.0
    restart_at: float = 0.0
    end_at: float = 0.0
    clean: list[bool] = field(default_factory=list)
    once_states: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """The outage in microseconds: the stop, the first claim after the restart, the end of the
    run, and the grace period; and the restart, to tell deliveries before it from after."""

    stop_us: int
    claim_us: int
    end_us: int
    grace_us: int
    restart_at: float


@dataclass
class FireTimes:
    """A recurring task's fire times around the outage: before the stop, missed, on time at the
    restart (within the grace period), after the claim, and those too close to the grace
    boundary to tell (each also in `missed` or `on_time`, where the service put it)."""

    pre: list[int]
    missed: list[int]
    on_time: list[int]
    after: list[int]
    unsure: list[int]


def drill(workspace: Workspace, args: argparse.Namespace) -> tuple[Tally, list[str], str]:
    """The service and the tasks up, the service stopped and started again, then the count."""
    with temporary_database("postgresql") as database_url:
        receiver, service, every, once = set_up(workspace, database_url, args)
        outage = act(service, once, args)
        return judge(receiver, every, once, outage, int(args.grace_seconds * US))


def set_up(
    workspace: Workspace, database_url: str, args: argparse.Namespace
) -> tuple[Receiver, ServiceProcess, dict[str, EveryTask], dict[str, dict]]:
    """The receiver, one service with MISFIRE_GRACE_SECONDS, a recurring task per policy (and
    `all-1s`), and a one-time task per policy due in the middle of the outage."""
    receiver = workspace.receiver().start()
    env = service_env(database_url, MISFIRE_GRACE_SECONDS=f"{args.grace_seconds:g}")
    service = workspace.service(env, "service").start(timeout=60)
    with api(service.base_url) as client:
        every = create_recurring_tasks(client, receiver, args.interval)
        middle = datetime.now(UTC) + timedelta(seconds=args.before + args.down_seconds / 2)
        once = create_one_time_tasks(client, receiver, middle)
    say(
        f"tasks: {[t.name for t in every.values()]} and one-time tasks due at "
        f"{middle:%H:%M:%S}; stop after {args.before:g} s for {args.down_seconds:g} s, "
        f"grace {args.grace_seconds:g} s"
    )
    return receiver, service, every, once


def create_recurring_tasks(
    client: httpx.Client, receiver: Receiver, interval: int
) -> dict[str, EveryTask]:
    """`@every interval` with catchup latest, none and all, and `all-1s` (past the cap of 100)."""
    every: dict[str, EveryTask] = {}
    for policy in ("latest", "none", "all"):
        task = create_every_task(
            client,
            name=f"{policy}-{interval}s",
            seconds=interval,
            webhook_url=receiver.url(f"{policy}-{interval}s"),
            catchup=policy,
        )
        every[task.id] = task
    task = create_every_task(
        client, name="all-1s", seconds=1, webhook_url=receiver.url("all-1s"), catchup="all"
    )
    every[task.id] = task
    return every


def create_one_time_tasks(
    client: httpx.Client, receiver: Receiver, run_at: datetime
) -> dict[str, dict]:
    """A one-time task due at `run_at` per catchup policy, by id."""
    once: dict[str, dict] = {}
    for policy in ("latest", "none", "all"):
        body = {
            "name": f"once-{policy}",
            "run_at": run_at.isoformat(),
            "catchup": policy,
            "webhook_url": receiver.url(f"once-{policy}"),
            "payload": {"drill": f"once-{policy}"},
        }
        response = client.post("/tasks", json=body)
        response.raise_for_status()
        once[response.json()["id"]] = response.json()
    return once


def act(service: ServiceProcess, once: dict[str, dict], args: argparse.Namespace) -> Outage:
    """Run `--before` s, SIGTERM, stay down `--down-seconds`, start again on the same port, run
    `--after` s, read the one-time tasks' states, SIGTERM again."""
    outage = Outage()
    time.sleep(args.before)
    outage.stop_at = time.time()
    first_clean = sigterm_all([service])
    say(f"service stopped (SIGTERM) at {clock(outage.stop_at)}, clean: {first_clean}")
    time.sleep(args.down_seconds)
    outage.restart_at = time.time()
    service.start(timeout=60)
    ready = time.time() - outage.restart_at
    say(f"service started again at {clock(outage.restart_at)} (ready {ready:.1f} s)")
    time.sleep(args.after)
    outage.end_at = time.time()
    with api(service.base_url) as client:
        outage.once_states = {task_id: client.get(f"/tasks/{task_id}").json() for task_id in once}
    outage.clean = first_clean + sigterm_all([service])
    return outage


def judge(
    receiver: Receiver,
    every: dict[str, EveryTask],
    once: dict[str, dict],
    outage: Outage,
    grace_us: int,
) -> tuple[Tally, list[str], str]:
    """Every policy kept its promise for the missed window; nothing missing, nothing twice."""
    time.sleep(0.5)
    arrivals = receiver.records()
    after_restart = [a.at for a in arrivals if a.at > outage.restart_at]
    claim_at = min(after_restart) if after_restart else outage.restart_at
    say(f"first delivery after the restart at {clock(claim_at)}: the catch-up claim")
    by_occurrence, tally = group_arrivals([a for a in arrivals if a.task in every], every)
    window = Window(
        stop_us=int(outage.stop_at * US),
        claim_us=int(claim_at * US),
        end_us=int(outage.end_at * US),
        grace_us=grace_us,
        restart_at=outage.restart_at,
    )
    problems: list[str] = []
    for task in every.values():
        problems += judge_recurring(task, by_occurrence, tally, window)
    for task_id, task in once.items():
        copies = [a for a in arrivals if a.task == task_id]
        problems += judge_one_time(task, copies, outage.once_states[task_id], tally)
    report_tally(tally, every)
    if tally.missing:
        problems.append(f"{len(tally.missing)} missing")
    if tally.duplicates:
        problems.append(f"{tally.duplicates} duplicates")
    if not outage.clean or not all(outage.clean):
        problems.append("unclean shutdown")
    passed = "every policy kept its promise for the missed window"
    return tally, problems, passed


def split_fire_times(
    task: EveryTask, by_occurrence: dict[tuple[str, int], list[Arrival]], window: Window
) -> FireTimes:
    """The task's fire times, split around the outage as the receiver saw it."""
    received = {s for (tid, s) in by_occurrence if tid == task.id}
    before_stop = [s for s in received if by_occurrence[(task.id, s)][0].at < window.restart_at]
    pre_end = max([window.stop_us - 1 * US, *before_stop])
    due = task.fire_times(after_us=pre_end, until_us=window.claim_us)
    cutoff = window.claim_us - window.grace_us
    missed = [f for f in due if f <= cutoff - AMBIGUOUS_US]
    on_time = [f for f in due if f > cutoff + AMBIGUOUS_US]
    unsure = [f for f in due if f not in missed and f not in on_time]
    # The service's own cutoff (its clock at the claim, minus the grace) is only known to a
    # few ms; a fire time that close to it counts on the side the service put it: sent as
    # `schedule` means on time; sent as `catchup`, or not sent, means missed.
    for f in unsure:
        copies = by_occurrence.get((task.id, f))
        (on_time if copies and copies[0].trigger == "schedule" else missed).append(f)
    return FireTimes(
        pre=task.fire_times(until_us=pre_end),
        missed=sorted(missed),
        on_time=sorted(on_time),
        after=task.fire_times(after_us=window.claim_us, until_us=window.end_us - 1 * US),
        unsure=unsure,
    )


def promised_runs(catchup: str, missed: list[int]) -> list[int]:
    """The missed fire times a policy promises to send: none, the latest, or the latest 100."""
    if catchup == "none":
        return []
    if catchup == "latest":
        return missed[-1:]
    return missed[-CATCHUP_LIMIT:]


def judge_recurring(
    task: EveryTask,
    by_occurrence: dict[tuple[str, int], list[Arrival]],
    tally: Tally,
    window: Window,
) -> list[str]:
    """Count what a recurring task was expected to send into `tally`; how it broke its promise."""
    times = split_fire_times(task, by_occurrence, window)
    promised = promised_runs(task.catchup, times.missed)
    for part in (times.pre, promised, times.on_time, times.after):
        tally.add(count_expected(by_occurrence, task, part))
    received = {s for (tid, s) in by_occurrence if tid == task.id}
    first_trigger = {f: by_occurrence[(task.id, f)][0].trigger for f in received}
    say(describe_recurring(task, times, promised, first_trigger))
    against = [f for f in times.missed if f not in promised and f in received]
    wrong_trigger = [f for f in promised if first_trigger.get(f, "catchup") != "catchup"]
    wrong_trigger += [f for f in times.on_time if first_trigger.get(f, "schedule") != "schedule"]
    violations = []
    if against:
        violations.append(f"{task.name}: {len(against)} missed runs sent against '{task.catchup}'")
    if wrong_trigger:
        violations.append(f"{task.name}: {len(wrong_trigger)} with the wrong trigger")
    return violations


def describe_recurring(
    task: EveryTask, times: FireTimes, promised: list[int], first_trigger: dict[int, str]
) -> str:
    """One line on a recurring task: missed, promised, delivered, on time at the restart."""
    missed = times.missed
    got_missed = [f for f in missed if f in first_trigger]
    triggers = sorted({first_trigger[f] for f in got_missed})
    span = f"({us_to_iso(missed[0])[11:19]}..{us_to_iso(missed[-1])[11:19]})" if missed else ""
    unsure = ""
    if times.unsure:
        side = "missed" if times.unsure[0] in missed else "on time"
        sent = [first_trigger[f] for f in times.unsure if f in first_trigger]
        unsure = (
            f"; {len(times.unsure)} within {AMBIGUOUS_US / US:g} s of the grace boundary, "
            f"counted {side} (sent as {sent})"
        )
    on_time = sum(f in first_trigger for f in times.on_time)
    return (
        f"{task.name} (catchup {task.catchup}): {len(missed)} missed {span}, promised "
        f"{len(promised)}, delivered {len(got_missed)} {triggers}; "
        f"on time at restart {on_time}/{len(times.on_time)}{unsure}"
    )


def judge_one_time(task: dict, copies: list[Arrival], state: dict, tally: Tally) -> list[str]:
    """Count a one-time task into `tally`: skipped and silent under 'none', else sent once as
    `catchup`; how it broke that promise."""
    name, policy = task["name"], task["catchup"]
    say(
        f"{name}: {len(copies)} sent {[a.trigger for a in copies]}; now "
        f"{state['status']} ({state.get('status_reason')})"
    )
    violations = []
    tally.expected += 0 if policy == "none" else 1
    if policy == "none":
        if copies:
            violations.append(f"{name} sent although missed under 'none'")
        reason = state.get("status_reason") or ""
        if state["status"] != "inactive" or not reason.startswith("skipped"):
            violations.append(f"{name} not marked skipped")
    elif copies:
        tally.delivered += 1
        tally.duplicates += len(copies) - 1
        if copies[0].trigger != "catchup":
            violations.append(f"{name}: trigger {copies[0].trigger}, not catchup")
    else:
        tally.missing.append((task["id"], 0))
    return violations


if __name__ == "__main__":
    sys.exit(main())
