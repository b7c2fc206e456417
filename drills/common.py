"""What the drills share: the receiver process, service processes, the API, and the count.

Counting is done from the receiver's side only. For a task that fires `@every N s`, its fire
times are `first + k*N` exactly (the service counts intervals from the task's creation, and the
create call answers with the first one as `next_run_at`), so the expected occurrences in a window
are known to the microsecond and every arrival can be matched to one of them.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.common import service_env as bench_service_env
from harness.receiver_process import ReceiverProcess
from harness.service import ServiceProcess

TOKEN = "drill-token-0123456789abcdef"  # noqa: S105 (the drills' throw-away services)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000
STARTED = time.monotonic()


def say(message: str) -> None:
    """A progress line, prefixed with the seconds since the drill started."""
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", flush=True)


def to_us(value: str | datetime) -> int:
    """An ISO 8601 instant (or an aware datetime) as integer microseconds since the epoch."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment - EPOCH) // timedelta(microseconds=1)


def us_to_iso(value: int) -> str:
    return (EPOCH + timedelta(microseconds=value)).isoformat().replace("+00:00", "Z")


def now_us() -> int:
    return to_us(datetime.now(UTC))


# -- command line ----------------------------------------------------------------------------


def base_parser(doc: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="the short mode (see above)")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the service logs and arrivals file (they are kept anyway when the drill fails)",
    )
    return parser


def add_run_length(parser: argparse.ArgumentParser, *, default: float, short: float) -> None:
    """`--minutes` / `--seconds` for how long the drill runs its load."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--minutes", type=float, help=f"run length in minutes (default {default / 60:g})"
    )
    group.add_argument(
        "--seconds", type=float, help=f"run length in seconds (short mode: {short:g})"
    )
    parser.set_defaults(_run_default=default, _run_short=short)


def run_length(args: argparse.Namespace) -> float:
    if args.seconds is not None:
        return args.seconds
    if args.minutes is not None:
        return args.minutes * 60
    return args._run_short if args.short else args._run_default


def pick(value: float | None, *, default: float, short: float, is_short: bool) -> float:
    """An option's value: given, else the short-mode default, else the default."""
    if value is not None:
        return value
    return short if is_short else default


# -- workspace and processes -----------------------------------------------------------------


class Workspace:
    """A temporary folder for service logs and the arrivals file; removed at the end unless
    asked to keep it (or the drill failed). Every process started through it is stopped."""

    def __init__(self, drill: str, keep: bool) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"drill-{drill}-"))
        self.keep = keep
        self.services: list[ServiceProcess] = []
        self.receivers: list[Receiver] = []

    def service(self, env: dict[str, str], name: str) -> ServiceProcess:
        service = ServiceProcess(env, self.path / f"{name}.log")
        self.services.append(service)
        return service

    def receiver(self) -> "Receiver":
        receiver = Receiver(self.path / "arrivals.jsonl", self.path / "receiver.log")
        self.receivers.append(receiver)
        return receiver

    def close(self, *, failed: bool) -> None:
        for service in self.services:
            with contextlib.suppress(Exception):
                service.stop_quietly()
        for receiver in self.receivers:
            with contextlib.suppress(Exception):
                receiver.stop()
        if self.keep or failed:
            say(f"logs kept in {self.path}")
        else:
            shutil.rmtree(self.path, ignore_errors=True)


def service_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The benchmarks' service environment, with the drills' token and INFO logs (the drills
    read the log)."""
    return bench_service_env(database_url, API_TOKEN=TOKEN, LOG_LEVEL="INFO", **overrides)


def sigterm_all(services: Iterable[ServiceProcess], *, timeout: float = 20.0) -> list[bool]:
    """SIGTERM every running service at once, then wait; True for each that stopped cleanly
    (exit by SIGTERM or 0, after "Application shutdown complete")."""
    running = [s for s in services if s.process is not None and s.process.poll() is None]
    log_sizes = [len(service.log()) for service in running]  # a restarted one appends
    for service in running:
        assert service.process is not None
        service.process.send_signal(signal.SIGTERM)
    clean = []
    for service, log_size in zip(running, log_sizes, strict=True):
        assert service.process is not None
        try:
            code = service.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            service.stop_quietly()
            clean.append(False)
            continue
        said = "Application shutdown complete" in service.log()[log_size:]
        clean.append(code in (0, -signal.SIGTERM) and said)
    return clean


def delivered_in_log(service: ServiceProcess) -> int:
    return service.log().count("delivery succeeded")


class Receiver(ReceiverProcess):
    """harness.receiver_process recording to a JSON-lines file that outlives it, read back as
    `Arrival`s."""

    def __init__(self, out: Path, log: Path) -> None:
        super().__init__(out=out, log=log)

    def records(self) -> list["Arrival"]:
        if not self.out.exists():
            return []
        arrivals = []
        for line in self.out.read_text().splitlines():
            if line.strip():
                arrivals.append(Arrival.parse(json.loads(line)))
        return arrivals

    def count(self) -> int:
        if not self.out.exists():
            return 0
        with self.out.open("rb") as handle:
            return sum(1 for _ in handle)


@dataclass(frozen=True)
class Arrival:
    at: float  # unix seconds, when the request head arrived
    done: float  # when the answer was written
    task: str
    sched_us: int | None
    key: str
    trigger: str
    attempt: int
    status: int
    gone: bool
    peer: int  # the sender's local port

    @classmethod
    def parse(cls, raw: dict) -> "Arrival":
        return cls(
            at=raw["at"],
            done=raw["done"],
            task=raw["task"],
            sched_us=to_us(raw["sched"]) if raw["sched"] else None,
            key=raw["key"],
            trigger=raw["trigger"],
            attempt=int(raw["attempt"] or 0),
            status=raw["status"],
            gone=raw["gone"],
            peer=raw.get("peer", 0),
        )


def local_ports_to(pid: int, remote_port: int) -> set[int]:
    """Local ports of the TCP connections process `pid` holds to 127.0.0.1:`remote_port`
    (from /proc: the socket inodes among its file descriptors, matched in /proc/net/tcp)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(OSError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports = set()
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.split(":")[1], 16) == remote_port:
                ports.add(int(local.split(":")[1], 16))
    return ports


# -- the API ---------------------------------------------------------------------------------


def api(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=AUTH, timeout=15)


@dataclass(frozen=True)
class EveryTask:
    """A task created with `@every N s`: its id, first fire time and interval in microseconds."""

    id: str
    name: str
    first_us: int
    interval_us: int
    catchup: str = "latest"
    max_retry: int = 3

    def fire_times(self, *, after_us: int | None = None, until_us: int) -> list[int]:
        """Fire times t with after < t <= until (after: none, i.e. from the first)."""
        k = 0
        if after_us is not None and after_us >= self.first_us:
            k = (after_us - self.first_us) // self.interval_us + 1
        times = []
        while (t := self.first_us + k * self.interval_us) <= until_us:
            times.append(t)
            k += 1
        return times

    def on_grid(self, sched_us: int) -> bool:
        return sched_us >= self.first_us and (sched_us - self.first_us) % self.interval_us == 0


def create_every_task(
    client: httpx.Client,
    *,
    name: str,
    seconds: int,
    webhook_url: str,
    catchup: str = "latest",
    max_retry: int = 3,
) -> EveryTask:
    body = {
        "name": name,
        "schedule": f"@every {seconds}s",
        "webhook_url": webhook_url,
        "payload": {"drill": name},
        "catchup": catchup,
        "max_retry": max_retry,
    }
    response = client.post("/tasks", json=body)
    if response.status_code != 201:
        raise RuntimeError(f"creating task {name}: HTTP {response.status_code} {response.text}")
    task = response.json()
    return EveryTask(
        id=task["id"],
        name=name,
        first_us=to_us(task["next_run_at"]),
        interval_us=seconds * US,
        catchup=catchup,
        max_retry=max_retry,
    )


def task_logs(client: httpx.Client, task_id: str, *, until: str) -> list[dict]:
    """All of a task's log rows with execution_time <= until (a fixed end keeps paging stable
    while the service keeps writing newer rows)."""
    rows: list[dict] = []
    while True:
        page = client.get(
            "/task-logs",
            params={"task_id": task_id, "until": until, "skip": len(rows), "limit": 1000},
        )
        page.raise_for_status()
        got = page.json()["task_logs"]
        rows += got
        if len(got) < 1000:
            return rows


# -- readiness -------------------------------------------------------------------------------


class ReadinessWatcher:
    """Polls a path (/readyz) in a thread and keeps the transitions: (unix time, status or
    'error', the start of the answer)."""

    def __init__(
        self,
        base_url: str,
        *,
        path: str = "/readyz",
        headers: dict[str, str] | None = None,
        interval: float = 0.25,
    ) -> None:
        self.base_url = base_url
        self.path = path
        self.headers = headers or {}
        self.interval = interval
        self.transitions: list[tuple[float, str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ReadinessWatcher":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        last = None
        with httpx.Client(timeout=3, headers=self.headers) as client:
            while not self._stop.is_set():
                try:
                    answer = client.get(f"{self.base_url}{self.path}")
                    state, detail = str(answer.status_code), answer.text
                except httpx.HTTPError as exc:
                    state, detail = "error", type(exc).__name__
                if state != last:
                    self.transitions.append((time.time(), state, detail[:300]))
                    last = state
                self._stop.wait(self.interval)


# -- counting --------------------------------------------------------------------------------


@dataclass
class Tally:
    """The receiver's view of a set of occurrences."""

    expected: int = 0
    delivered: int = 0
    duplicates: int = 0  # extra copies of an occurrence, whatever their key
    redelivered: int = 0  # ... of which repeat the Idempotency-Key of an earlier copy
    double_claims: int = 0  # ... of which carry a different key: two occurrences, one instant
    missing: list[tuple[str, int]] = field(default_factory=list)
    duplicate_copies: list[tuple[Arrival, Arrival]] = field(default_factory=list)
    off_grid: list[Arrival] = field(default_factory=list)
    unknown: list[Arrival] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)  # first copy: arrival - scheduled_for

    def add(self, other: "Tally") -> None:
        self.expected += other.expected
        self.delivered += other.delivered
        self.duplicates += other.duplicates
        self.redelivered += other.redelivered
        self.double_claims += other.double_claims
        self.missing += other.missing
        self.duplicate_copies += other.duplicate_copies
        self.off_grid += other.off_grid
        self.unknown += other.unknown
        self.lateness += other.lateness


def group_arrivals(
    arrivals: list[Arrival], tasks: dict[str, EveryTask]
) -> tuple[dict[tuple[str, int], list[Arrival]], Tally]:
    """Arrivals grouped by occurrence (task, scheduled_for), in arrival order; the tally notes
    the duplicates among them and any arrival that fits no task or no fire time."""
    tally = Tally()
    by_occurrence: dict[tuple[str, int], list[Arrival]] = defaultdict(list)
    for arrival in sorted(arrivals, key=lambda a: a.at):
        task = tasks.get(arrival.task)
        if task is None or arrival.sched_us is None:
            tally.unknown.append(arrival)
            continue
        if not task.on_grid(arrival.sched_us):
            tally.off_grid.append(arrival)
        by_occurrence[(arrival.task, arrival.sched_us)].append(arrival)
    for copies in by_occurrence.values():
        first = copies[0]
        for extra in copies[1:]:
            tally.duplicates += 1
            tally.duplicate_copies.append((first, extra))
            if extra.key == first.key:
                tally.redelivered += 1
            else:
                tally.double_claims += 1
    return by_occurrence, tally


def count_expected(
    by_occurrence: dict[tuple[str, int], list[Arrival]],
    task: EveryTask,
    times: Iterable[int],
) -> Tally:
    """Expected = `times` of this task; delivered = those with at least one arrival."""
    tally = Tally()
    for t in times:
        tally.expected += 1
        copies = by_occurrence.get((task.id, t))
        if copies:
            tally.delivered += 1
            tally.lateness.append(copies[0].at - t / US)
        else:
            tally.missing.append((task.id, t))
    return tally


def tally_every(arrivals: list[Arrival], tasks: dict[str, EveryTask], *, until_us: int) -> Tally:
    """Every fire time of every task from its first up to `until_us` is expected; duplicates
    are counted over all arrivals (also those after `until_us`)."""
    by_occurrence, tally = group_arrivals(arrivals, tasks)
    for task in tasks.values():
        tally.add(count_expected(by_occurrence, task, task.fire_times(until_us=until_us)))
    return tally


def describe_lateness(values: list[float]) -> str:
    if not values:
        return "no deliveries"
    ordered = sorted(values)
    p99 = ordered[max(0, int(len(ordered) * 0.99 + 0.5) - 1)]
    return (
        f"lateness of first copies: median {statistics.median(ordered) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


def report_tally(tally: Tally, tasks: dict[str, EveryTask], *, show: int = 10) -> None:
    names = {task.id: task.name for task in tasks.values()}
    say(describe_lateness(tally.lateness))
    say(
        f"duplicates: {tally.duplicates} (same Idempotency-Key, i.e. redelivered: "
        f"{tally.redelivered}; different key for one instant: {tally.double_claims})"
    )
    for first, extra in tally.duplicate_copies[:show]:
        say(
            f"  duplicate {names.get(first.task, first.task)} "
            f"{us_to_iso(first.sched_us or 0)}: first at "
            f"{datetime.fromtimestamp(first.at, UTC):%H:%M:%S.%f} (attempt {first.attempt}), "
            f"again at {datetime.fromtimestamp(extra.at, UTC):%H:%M:%S.%f} "
            f"(attempt {extra.attempt}, {'same' if extra.key == first.key else 'OTHER'} key)"
        )
    for task_id, t in tally.missing[:show]:
        say(f"  missing {names.get(task_id, task_id)} {us_to_iso(t)}")
    if len(tally.missing) > show:
        say(f"  ... and {len(tally.missing) - show} more missing")
    if tally.off_grid:
        say(f"arrivals whose scheduled_for is not a fire time of their task: {len(tally.off_grid)}")
    if tally.unknown:
        say(f"arrivals from no known task: {len(tally.unknown)}")


def result_line(drill: str, tally: Tally, verdict: str) -> str:
    return (
        f"RESULT {drill}: expected={tally.expected} delivered={tally.delivered} "
        f"duplicates={tally.duplicates} missing={len(tally.missing)} ({verdict})"
    )


def run_drill(
    drill: str, keep_logs: bool, body: Callable[[Workspace], tuple[Tally, list[str], str]]
) -> int:
    """Run `body` in a workspace, clean up, and print the RESULT line last. `body` returns the
    tally, the problems found (none: PASS) and what to say when it passes."""
    workspace = Workspace(drill, keep_logs)
    failed = True
    try:
        tally, problems, passed = body(workspace)
        failed = bool(problems)
        verdict = "FAIL: " + "; ".join(problems) if problems else "PASS: " + passed
        line = result_line(drill, tally, verdict)
    except Exception as exc:
        traceback.print_exc()
        reason = (str(exc).splitlines() or [""])[0][:200]
        line = result_line(drill, Tally(), f"ERROR: {type(exc).__name__}: {reason}")
    finally:
        workspace.close(failed=failed)
    print(line, flush=True)
    return 1 if failed else 0


@contextlib.contextmanager
def progress(receiver: Receiver, *, every: float = 30.0) -> Iterator[None]:
    """Print the number of arrivals every `every` seconds while the block runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            say(f"... {receiver.count()} arrivals so far")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
