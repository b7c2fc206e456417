"""The service as a separate process (`python main.py`), for restarts, kill -9, several replicas
and benchmarks."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from harness import ROOT
from harness.network import free_port
from harness.waiting import wait_until


class ServiceProcess:
    """`python main.py` in a child process on a free port, with its output in a log file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        # One process unless the test asks for more: kill -9 and CPU readings mean that process.
        self.env = {
            "WORKERS": "1",
            **os.environ,
            **env,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 30.0) -> "ServiceProcess":
        """Start the process (again, on the same port) and wait until /readyz answers 200."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "main.py"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()
        wait_until(self._ready, timeout=timeout, interval=0.05, what=f"{self.base_url}/readyz")
        return self

    def _ready(self) -> bool:
        """True once /readyz answers 200; fails at once if the process exited."""
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
        """Everything the process (and its earlier runs) wrote so far; empty before the first."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop_quietly(self) -> None:
        """SIGKILL if it is still running; nothing otherwise (for clean-up paths)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def cpu_seconds(self) -> float:
        """User + system CPU time the running process has used, from /proc (Linux)."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
