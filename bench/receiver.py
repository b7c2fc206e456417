"""A fast webhook receiver for benchmarks: answers every POST with 204 and notes when it came.

Run on its own (a separate process, so it does not compete with the service for the GIL):
    python bench/receiver.py --port 9100
`GET /stats` returns the arrivals as JSON ([arrival_unix, scheduled_for, idempotency_key]);
`DELETE /stats` forgets them. Anything may be posted to any path.
"""

import argparse
import asyncio
import json
import time

arrivals: list[tuple[float, str, str]] = []


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            arrived = time.time()
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if length:
                await reader.readexactly(length)
            if method == "POST":
                scheduled = headers.get("x-insignia-scheduled-for", "")
                arrivals.append((arrived, scheduled, headers.get("idempotency-key", "")))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            elif method == "GET" and path.startswith("/stats"):
                body = json.dumps(arrivals).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
            elif method == "DELETE":
                arrivals.clear()
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    asyncio.run(main(parser.parse_args().port))
