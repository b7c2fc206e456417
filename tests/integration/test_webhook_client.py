"""The real delivery client against broken HTTP servers on 127.0.0.1: what aiohttp raises for
a malformed or cut-short answer must be a retried network error, never a permanent failure."""

import asyncio

import pytest

from app.delivery.client import create_http_client
from app.delivery.sender import Delivery, Outcome, Sender


def send_to_server_answering(raw: bytes) -> Outcome:
    """Start a TCP server that reads the request, writes `raw` and closes; POST to it."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(raw)
        await writer.drain()
        writer.close()

    return send_to(answer)[0]


def send_to(answer, *, host: str = "127.0.0.1", times: int = 1) -> list[Outcome]:
    """Start a TCP server on 127.0.0.1 that handles each connection with `answer`; POST to it
    `times` times, one after the other, naming it `host`."""

    async def run() -> list[Outcome]:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = create_http_client(max_connections=2, allow_private=True)
        sender = Sender(client=client, timeout_seconds=5, allow_private=True)
        try:
            delivery = Delivery(url=f"http://{host}:{port}/hook", payload={"n": 1})
            return [await sender.send(delivery) for _ in range(times)]
        finally:
            await sender.close()
            server.close()
            await server.wait_closed()

    return asyncio.run(run())


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"garbage\r\n\r\n", id="not HTTP"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", id="body cut short"),
        pytest.param(b"", id="closed without an answer"),
    ],
)
def test_a_broken_answer_is_a_network_error_that_is_retried(raw: bytes):
    outcome = send_to_server_answering(raw)
    assert not outcome.success
    assert not outcome.permanent
    assert outcome.message.startswith("network error: ")


def test_a_well_formed_answer_is_classified():
    outcome = send_to_server_answering(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
    )
    assert (outcome.http_status, outcome.permanent) == (503, False)


def test_a_cookie_a_webhook_sets_is_never_sent_back():
    """Tasks of different owners may share a webhook host: what one answer sets must not ride
    along with the next delivery."""
    seen: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            seen.append(head)
            writer.write(
                b"HTTP/1.1 204 No Content\r\nSet-Cookie: session=secret; Path=/\r\n"
                b"Content-Length: 0\r\n\r\n"
            )
            await writer.drain()
        writer.close()

    # A name: aiohttp's cookie jar keeps nothing that an IP address sets.
    outcomes = send_to(answer, host="localhost", times=2)
    assert [outcome.http_status for outcome in outcomes] == [204, 204]
    assert len(seen) == 2
    assert all(b"cookie:" not in head.lower() for head in seen), seen
