"""Helpers for tests: waiting on conditions with a deadline, and running the service as a
separate process (for restarts, kill -9 and several replicas)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def wait_until(
    probe: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Call `probe` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what or probe}; last value {value!r}")
        time.sleep(interval)


def before_resume(task: dict) -> str:
    """A deactivated task's reason without the health ladder's note (which must be there)."""
    reason, separator, _ = task["status_reason"].partition("; trying again at ")
    assert separator, f"no resume time in {task['status_reason']!r}"
    return reason


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """`python main.py` in a child process, with its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 30.0) -> "ServiceProcess":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "main.py"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()
        wait_until(self._ready, timeout=timeout, interval=0.05, what=f"{self.base_url}/readyz")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"service exited with {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """kill -9: no cleanup of any kind."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def terminate(self, *, timeout: float = 15.0) -> bool:
        """SIGTERM, as Cloud Run and Kubernetes send; True if the process shut down cleanly.

        uvicorn re-raises the signal once its shutdown is complete, so a clean stop ends with
        "terminated by SIGTERM" after the log says the shutdown completed."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        return code in (0, -signal.SIGTERM) and "Application shutdown complete" in self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop_quietly(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
