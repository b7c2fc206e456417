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
from datetime import UTC, datetime, timedelta

from bench.common import temporary_database
from drills.common import (
    US,
    EveryTask,
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


def drill(workspace: Workspace, args: argparse.Namespace):
    grace_us = int(args.grace_seconds * US)
    with temporary_database("postgresql") as database_url:
        receiver = workspace.receiver().start()
        env = service_env(database_url, MISFIRE_GRACE_SECONDS=f"{args.grace_seconds:g}")
        service = workspace.service(env, "service").start(timeout=60)
        every: dict[str, EveryTask] = {}
        once: dict[str, dict] = {}
        with api(service.base_url) as client:
            for policy in ("latest", "none", "all"):
                task = create_every_task(
                    client,
                    name=f"{policy}-{args.interval}s",
                    seconds=args.interval,
                    webhook_url=receiver.url(f"{policy}-{args.interval}s"),
                    catchup=policy,
                )
                every[task.id] = task
            task = create_every_task(
                client, name="all-1s", seconds=1, webhook_url=receiver.url("all-1s"), catchup="all"
            )
            every[task.id] = task
            middle = datetime.now(UTC) + timedelta(seconds=args.before + args.down_seconds / 2)
            for policy in ("latest", "none", "all"):
                body = {
                    "name": f"once-{policy}",
                    "run_at": middle.isoformat(),
                    "catchup": policy,
                    "webhook_url": receiver.url(f"once-{policy}"),
                    "payload": {"drill": f"once-{policy}"},
                }
                response = client.post("/tasks", json=body)
                response.raise_for_status()
                once[response.json()["id"]] = response.json()
        say(
            f"tasks: {[t.name for t in every.values()]} and one-time tasks due at "
            f"{middle:%H:%M:%S}; stop after {args.before:g} s for {args.down_seconds:g} s, "
            f"grace {args.grace_seconds:g} s"
        )
        time.sleep(args.before)
        stop_at = time.time()
        first_clean = sigterm_all([service])
        say(f"service stopped (SIGTERM) at {clock(stop_at)}, clean: {first_clean}")
        time.sleep(args.down_seconds)
        restart_at = time.time()
        service.start(timeout=60)
        say(
            f"service started again at {clock(restart_at)} (ready {time.time() - restart_at:.1f} s)"
        )
        time.sleep(args.after)
        end_at = time.time()
        with api(service.base_url) as client:
            once_states = {task_id: client.get(f"/tasks/{task_id}").json() for task_id in once}
        second_clean = sigterm_all([service])
        time.sleep(0.5)
        arrivals = receiver.records()

    after_restart = [a.at for a in arrivals if a.at > restart_at]
    claim_at = min(after_restart) if after_restart else restart_at
    claim_us, stop_us, end_us = int(claim_at * US), int(stop_at * US), int(end_at * US)
    say(f"first delivery after the restart at {clock(claim_at)}: the catch-up claim")
    by_occurrence, tally = group_arrivals([a for a in arrivals if a.task in every], every)
    violations: list[str] = []

    for task in every.values():
        received = {s for (tid, s) in by_occurrence if tid == task.id}
        before_stop = [s for s in received if by_occurrence[(task.id, s)][0].at < restart_at]
        pre_end = max([stop_us - 1 * US, *before_stop])
        pre = task.fire_times(until_us=pre_end)
        window = task.fire_times(after_us=pre_end, until_us=claim_us)
        missed = [f for f in window if f <= claim_us - grace_us - AMBIGUOUS_US]
        on_time = [f for f in window if f > claim_us - grace_us + AMBIGUOUS_US]
        unsure = [f for f in window if f not in missed and f not in on_time]
        # The service's own cutoff (its clock at the claim, minus the grace) is only known to a
        # few ms; a fire time that close to it counts on the side the service put it: sent as
        # `schedule` means on time; sent as `catchup`, or not sent, means missed.
        for f in unsure:
            copies = by_occurrence.get((task.id, f))
            (on_time if copies and copies[0].trigger == "schedule" else missed).append(f)
        missed.sort()
        on_time.sort()
        after = task.fire_times(after_us=claim_us, until_us=end_us - 1 * US)
        if task.catchup == "none":
            promised: list[int] = []
        elif task.catchup == "latest":
            promised = missed[-1:]
        else:
            promised = missed[-CATCHUP_LIMIT:]
        forbidden = [f for f in missed if f not in promised]
        for part in (pre, promised, on_time, after):
            tally.add(count_expected(by_occurrence, task, part))
        got_missed = [f for f in missed if f in received]
        against = [f for f in forbidden if f in received]
        first_trigger = {f: by_occurrence[(task.id, f)][0].trigger for f in received}
        wrong_trigger = [f for f in promised if first_trigger.get(f, "catchup") != "catchup"]
        wrong_trigger += [f for f in on_time if first_trigger.get(f, "schedule") != "schedule"]
        triggers = sorted({first_trigger[f] for f in got_missed})
        say(
            f"{task.name} (catchup {task.catchup}): {len(missed)} missed "
            + (f"({us_to_iso(missed[0])[11:19]}..{us_to_iso(missed[-1])[11:19]})" if missed else "")
            + f", promised {len(promised)}, delivered {len(got_missed)} {triggers}; "
            f"on time at restart {sum(f in received for f in on_time)}/{len(on_time)}"
            + (
                f"; {len(unsure)} within {AMBIGUOUS_US / US:g} s of the grace boundary, "
                f"counted {'missed' if unsure[0] in missed else 'on time'} (sent as "
                f"{[by_occurrence[(task.id, f)][0].trigger for f in unsure if f in received]})"
                if unsure
                else ""
            )
        )
        if against:
            violations.append(
                f"{task.name}: {len(against)} missed runs sent against '{task.catchup}'"
            )
        if wrong_trigger:
            violations.append(f"{task.name}: {len(wrong_trigger)} with the wrong trigger")

    for task_id, task in once.items():
        policy = task["catchup"]
        copies = [a for a in arrivals if a.task == task_id]
        state = once_states[task_id]
        say(
            f"{task['name']}: {len(copies)} sent {[a.trigger for a in copies]}; now "
            f"{state['status']} ({state.get('status_reason')})"
        )
        tally.expected += 0 if policy == "none" else 1
        if policy == "none":
            if copies:
                violations.append(f"{task['name']} sent although missed under 'none'")
            reason = state.get("status_reason") or ""
            if state["status"] != "inactive" or not reason.startswith("skipped"):
                violations.append(f"{task['name']} not marked skipped")
        elif copies:
            tally.delivered += 1
            tally.duplicates += len(copies) - 1
            if copies[0].trigger != "catchup":
                violations.append(f"{task['name']}: trigger {copies[0].trigger}, not catchup")
        else:
            tally.missing.append((task_id, 0))

    report_tally(tally, every)
    problems = list(violations)
    if tally.missing:
        problems.append(f"{len(tally.missing)} missing")
    if tally.duplicates:
        problems.append(f"{tally.duplicates} duplicates")
    if not (first_clean + second_clean) or not all(first_clean + second_clean):
        problems.append("unclean shutdown")
    passed = "every policy kept its promise for the missed window"
    return tally, problems, passed


if __name__ == "__main__":
    sys.exit(main())
