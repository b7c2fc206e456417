"""What the measurements of every system have in common: due-time stamps, the receiver's
arrivals, the summary of a round, and child processes spoken to one JSON line at a time."""

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import percentile

ROOT = Path(__file__).resolve().parents[2]

SINGLE_TASK_ROUNDS = 40  # N = 1 is measured as this many jobs, one due every SPACING seconds
SINGLE_TASK_SPACING = 0.25
MAX_ROUND_SECONDS = 600  # a round still unfinished after this is reported as it stands


def stamp(moment: datetime) -> str:
    """A due time as the `X-Insignia-Scheduled-For` header carries it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def due_unix(header: str) -> float:
    """The Unix time of an `X-Insignia-Scheduled-For` header."""
    return datetime.fromisoformat(header.replace("Z", "+00:00")).timestamp()


def headers(scheduled_for: str, key: str) -> dict[str, str]:
    """The headers every system's request carries, for the receiver to measure by."""
    return {"X-Insignia-Scheduled-For": scheduled_for, "Idempotency-Key": key}


def round_shape(count: int, spacing: float = SINGLE_TASK_SPACING) -> tuple[int, float]:
    """(jobs, spacing in s) of a round with `count` due together; N = 1 is a spaced series."""
    return (SINGLE_TASK_ROUNDS, spacing) if count == 1 else (count, 0.0)


def round_timeout(jobs: int, spacing: float) -> float:
    """How long a round may take before it is reported as it stands."""
    return min(MAX_ROUND_SECONDS, 60 + jobs * spacing + jobs / 20)


def arrivals(receiver: str) -> list[list[Any]]:
    """Every request the receiver got: [arrival_unix, scheduled_for, key]."""
    return httpx.get(f"{receiver}/stats", timeout=60).json()


def forget_arrivals(receiver: str) -> None:
    """Start the receiver's count again."""
    httpx.delete(f"{receiver}/stats", timeout=30).raise_for_status()


def wait_for_arrivals(
    receiver: str, expected: int, timeout: float, accounted: Callable[[int], int] | None = None
) -> list:
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
        time.sleep(0.5 if expected > 1000 else 0.2)
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


def report(row: dict[str, Any]) -> None:
    """A progress line on stderr (the tables go to stdout at the end)."""
    print(f"  measured {row['system']} N={row['count']}", file=sys.stderr, flush=True)


def note_registration(row: dict[str, Any], jobs: int, began: float, added: float, due: float):
    """Say how long registering the jobs took, and mark the round invalid if it ran past due."""
    took = added - began
    if added > due:
        row["notes"].append(f"registering took {took:.1f} s, past the due time: invalid")
    elif row["count"] > 1:
        row["notes"].append(f"registering the {jobs} jobs took {took:.1f} s (not measured)")


def lead_seconds(jobs: int, per_job: float) -> float:
    """Time from now to the due instant: twice the expected registration time, plus 3 s."""
    return 3 + 2 * per_job * jobs


class Child:
    """`python -m MODULE ARGS` in a child process, talked to over its stdin and stdout one JSON
    line at a time; its stderr goes to a log file. It exits at the end of its input."""

    def __init__(self, module: str, args: list[str], log_path: Path) -> None:
        """Start the child, and a thread reading its answers."""
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
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
        """Queue the child's answers as they come."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def send(self, command: dict[str, Any]) -> None:
        """One command line to the child."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        """The child's next answer, or an error quoting its log."""
        try:
            return json.loads(self.lines.get(timeout=timeout))
        except queue.Empty:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"no answer from the child in {timeout:.0f} s:\n{tail}") from None

    def ask(self, command: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Send a command and wait for its answer."""
        self.send(command)
        return self.receive(timeout)

    def stop(self) -> None:
        """Close its stdin (it exits on end of input), then kill it if it has not."""
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        stop_process(self.process, signal_first=False)


@contextlib.contextmanager
def child(module: str, args: list[str], log_path: Path) -> Iterator[Child]:
    """A Child for the length of a `with` block."""
    process = Child(module, args, log_path)
    try:
        yield process
    finally:
        process.stop()


def stop_process(process: subprocess.Popen, *, signal_first: bool = True) -> None:
    """Ask a child to end (SIGTERM), give it 15 s, then kill it."""
    if signal_first and process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def poll_until(probe: Callable[[], Any], timeout: float, what: str) -> None:
    """Call `probe` every 0.2 s until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.2)


def exit_when_parent_goes() -> None:
    """In a child: end the process as soon as the parent closes our stdin or dies."""

    def watch() -> None:
        """Block until stdin ends, then exit."""
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def answer(message: dict[str, Any]) -> None:
    """In a child: one JSON line to the parent."""
    print(json.dumps(message), flush=True)
