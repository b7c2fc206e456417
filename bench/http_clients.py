"""HTTP client throughput: POSTs per second to a fast local receiver, by client and concurrency.

Compares plain httpx with the service's own client (`app.delivery.client.WebhookClient`, aiohttp
with the guarded resolver), in the same run against the same receiver process.

    python -m bench.http_clients               # 2,000 POSTs per cell
    python -m bench.http_clients --requests 500
"""

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx

from app.delivery.client import WebhookClient, create_http_client
from bench.common import running_receiver

CONCURRENCY = (10, 50, 100, 200)


async def rate(
    open_client: Callable[[int], object],
    post: Callable[[object], Awaitable[None]],
    requests: int,
    concurrency: int,
) -> float:
    client = open_client(concurrency)
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            await post(client)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    elapsed = time.perf_counter() - started
    close = getattr(client, "aclose", None) or client.close  # type: ignore[attr-defined]
    await close()
    return requests / elapsed


async def compare(url: str, requests: int) -> None:
    def plain(n: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
        return httpx.AsyncClient(limits=limits)

    def service_client(n: int) -> WebhookClient:
        return create_http_client(max_connections=n, allow_private=True)

    async def httpx_post(client) -> None:
        (await client.post(url, json={"content": "x"})).raise_for_status()

    async def service_post(client) -> None:
        answer = await client.post(url, {"content": "x"}, {})
        assert answer.status == 204, answer

    print("| concurrent | httpx | service client (aiohttp) | ratio |")
    print("|---|---|---|---|")
    for n in CONCURRENCY:
        a = await rate(plain, httpx_post, requests, n)
        b = await rate(service_client, service_post, requests, n)
        print(f"| {n} | {a:,.0f}/s | {b:,.0f}/s | {b / a:.1f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"# HTTP clients, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with running_receiver() as base:
        asyncio.run(compare(f"{base}/hook", args.requests))


if __name__ == "__main__":
    main()
