"""The drills' webhook receiver: a small asyncio HTTP server in a process of its own.

    python -m drills.receiver --port 9200 --out /tmp/arrivals.jsonl

Every POST is answered 204 (or as its query asks: `?delay=1.5` waits 1.5 s before answering,
`?status=500` answers 500) and then written as one JSON line to `--out`, flushed at once, so the
record survives the receiver being stopped and started again on the same port:

    {"at": arrival unix time, "done": answer written, "path": ..., "task": X-Insignia-Task-Id,
     "sched": X-Insignia-Scheduled-For, "key": Idempotency-Key, "trigger": X-Insignia-Trigger,
     "attempt": X-Insignia-Attempt, "status": answered status, "gone": the client went away,
     "peer": the client's port (to tell which process sent it)}

`GET /stats` answers with the number of POSTs seen by this process (a readiness probe).
It listens on 127.0.0.1 only.
"""

import argparse
import asyncio
import json
import time
from urllib.parse import parse_qs, urlsplit

MAX_DELAY_SECONDS = 60.0


class Recorder:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the whole run)
        self.count = 0

    def write(self, record: dict) -> None:
        self.file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.file.flush()
        self.count += 1


def _answer(status: int, body: bytes = b"") -> bytes:
    reason = {200: "OK", 204: "No Content", 404: "Not Found"}.get(status, "Status")
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n"
    if body:
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + body


async def handle(
    recorder: Recorder, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    peer = writer.get_extra_info("peername") or ("", 0)
    try:
        while True:
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
            parts = urlsplit(target)
            if method == "GET" and parts.path == "/stats":
                writer.write(_answer(200, json.dumps({"posts": recorder.count}).encode()))
                await writer.drain()
                continue
            if method != "POST":
                writer.write(_answer(404))
                await writer.drain()
                continue
            query = parse_qs(parts.query)
            delay = min(float(query.get("delay", ["0"])[0]), MAX_DELAY_SECONDS)
            status = int(query.get("status", ["204"])[0])
            if delay > 0:
                await asyncio.sleep(delay)
            gone = False
            try:
                writer.write(_answer(status))
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
                    "peer": peer[1],
                }
            )
            if gone:
                return
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def serve(port: int, out: str) -> None:
    recorder = Recorder(out)
    server = await asyncio.start_server(
        lambda r, w: handle(recorder, r, w), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True, help="JSON-lines file the arrivals are added to")
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.port, arguments.out))
