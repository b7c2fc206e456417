"""A fast recording webhook receiver: a small asyncio HTTP server in a process of its own, so that
it does not compete with the service for the GIL. The benchmarks and the drills count with it.

    python -m harness.receiver_process --port 9200 [--out /tmp/arrivals.jsonl]

Every POST, to any path, is answered 204, or as its query asks: `?delay=1.5` waits 1.5 s before
answering, `?status=500` answers 500. Then it is recorded:

* in memory: `GET /stats` answers with the arrivals as JSON, each one
  `[arrival unix time, X-Insignia-Scheduled-For, Idempotency-Key]`; `DELETE /stats` forgets them;
* with `--out`, also as one JSON line added to that file, flushed at once, so the record survives
  the receiver being stopped and started again on the same port:

    {"at": arrival unix time, "done": answer written, "path": ..., "task": X-Insignia-Task-Id,
     "sched": X-Insignia-Scheduled-For, "key": Idempotency-Key, "trigger": X-Insignia-Trigger,
     "attempt": X-Insignia-Attempt, "status": answered status, "gone": the client went away,
     "peer": the client's port (to tell which process sent it)}

Anything else is answered 404. It listens on 127.0.0.1 only. `ReceiverProcess` runs it from
another program.
"""

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import IO
from urllib.parse import SplitResult, parse_qs, urlsplit

import httpx

from harness import ROOT
from harness.network import free_port
from harness.waiting import wait_until

MAX_DELAY_SECONDS = 60.0
REASONS = {200: "OK", 204: "No Content", 404: "Not Found"}


class Recorder:
    """The arrivals: kept in memory for /stats, and added to a JSON-lines file if given one."""

    def __init__(self, out: str | None) -> None:
        self.arrivals: list[tuple[float, str, str]] = []
        self.file: IO[str] | None = None
        if out is not None:
            self.file = open(out, "a", encoding="utf-8")  # noqa: SIM115 (open for the whole run)

    def write(self, record: dict) -> None:
        """Note one answered POST (in the file at once, flushed)."""
        self.arrivals.append((record["at"], record["sched"], record["key"]))
        if self.file is not None:
            self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.file.flush()


def response(status: int, body: bytes = b"") -> bytes:
    """An HTTP/1.1 response with this status and (JSON) body, ready to write."""
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + body


async def read_request(reader: asyncio.StreamReader) -> tuple[float, str, str, dict[str, str]]:
    """The next request's arrival time, method, target and headers (lower-case names); its body
    is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    arrived = time.time()
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length:
        await reader.readexactly(length)
    return arrived, method, target, headers


async def receive_post(
    recorder: Recorder,
    writer: asyncio.StreamWriter,
    arrived: float,
    parts: SplitResult,
    headers: dict[str, str],
) -> bool:
    """Answer a webhook POST as its query asks, then record it; False if the client went away."""
    query = parse_qs(parts.query)
    delay = min(float(query.get("delay", ["0"])[0]), MAX_DELAY_SECONDS)
    status = int(query.get("status", ["204"])[0])
    if delay > 0:
        await asyncio.sleep(delay)
    gone = False
    try:
        writer.write(response(status))
        await writer.drain()
    except ConnectionError:
        gone = True
    recorder.write(
        {
            "at": arrived,
            "done": time.time(),
            "path": parts.path,
            "task": headers.get("x-insignia-task-id", ""),
            "sched": headers.get("x-insignia-scheduled-for", ""),
            "key": headers.get("idempotency-key", ""),
            "trigger": headers.get("x-insignia-trigger", ""),
            "attempt": headers.get("x-insignia-attempt", ""),
            "status": status,
            "gone": gone,
            "peer": (writer.get_extra_info("peername") or ("", 0))[1],
        }
    )
    return not gone


def stats_answer(recorder: Recorder, method: str) -> bytes:
    """GET /stats: the arrivals so far; DELETE /stats: forget them; anything else: 404."""
    if method == "GET":
        return response(200, json.dumps(recorder.arrivals).encode())
    if method == "DELETE":
        recorder.arrivals.clear()
        return response(204)
    return response(404)


async def handle(
    recorder: Recorder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Serve one connection's requests, one after another, until the client goes away."""
    try:
        while True:
            arrived, method, target, headers = await read_request(reader)
            parts = urlsplit(target)
            if method == "POST":
                if not await receive_post(recorder, writer, arrived, parts, headers):
                    return
                continue
            stats = parts.path == "/stats"
            writer.write(stats_answer(recorder, method) if stats else response(404))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, out: str | None) -> None:
    """Receive on 127.0.0.1:`port` until killed."""
    recorder = Recorder(out)
    server = await asyncio.start_server(
        lambda r, w: handle(recorder, r, w), "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    async with server:
        await server.serve_forever()


class ReceiverProcess:
    """This receiver in a child process on a free port; `out`: the JSON-lines file it adds its
    arrivals to, `log`: where its output goes (default: this process's)."""

    def __init__(self, *, out: Path | None = None, log: Path | None = None) -> None:
        self.out = out
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, hook: str, *, delay: float = 0.0, status: int | None = None) -> str:
        """A webhook URL on this receiver whose POSTs are answered after `delay` with `status`."""
        query = []
        if delay:
            query.append(f"delay={delay:g}")
        if status is not None:
            query.append(f"status={status}")
        return f"{self.base_url}/hook/{hook}" + ("?" + "&".join(query) if query else "")

    def start(self) -> "ReceiverProcess":
        """Start it (again, on the same port) and wait until it answers."""
        command = [sys.executable, "-m", "harness.receiver_process", "--port", str(self.port)]
        if self.out is not None:
            command += ["--out", str(self.out)]
        with self.log.open("ab") if self.log else contextlib.nullcontext() as log:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                command, cwd=ROOT, stdout=log, stderr=log
            )
        wait_until(self._up, timeout=15, interval=0.05, what=f"the receiver on {self.base_url}")
        return self

    def _up(self) -> bool:
        """True once GET /stats answers 200; fails at once if the process exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            output = self.log.read_text(errors="replace") if self.log else ""
            raise RuntimeError(f"receiver exited with {self.process.returncode}: {output}")
        try:
            return httpx.get(f"{self.base_url}/stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop it at once (SIGKILL): from the service's side the webhook simply goes away."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", help="JSON-lines file the arrivals are added to")
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.port, arguments.out))
