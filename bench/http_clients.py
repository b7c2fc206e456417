"""HTTP client throughput: POSTs per second to a fast local receiver, by client and concurrency.

Compares plain httpx, httpx driven by the aiohttp transport (what the service uses) and aiohttp
alone, in the same run against the same receiver process.

    python -m bench.http_clients               # 2,000 POSTs per cell
    python -m bench.http_clients --requests 500
"""

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

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

    def over_aiohttp(n: int) -> httpx.AsyncClient:
        def session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n))

        return httpx.AsyncClient(transport=AiohttpTransport(client=session))

    def aiohttp_alone(n: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=n))

    async def httpx_post(client) -> None:
        (await client.post(url, json={"content": "x"})).raise_for_status()

    async def aiohttp_post(client) -> None:
        async with client.post(url, json={"content": "x"}) as response:
            await response.read()

    print(
        "| concurrent | httpx | httpx + aiohttp transport | aiohttp | ratio (transport / httpx) |"
    )
    print("|---|---|---|---|---|")
    for n in CONCURRENCY:
        a = await rate(plain, httpx_post, requests, n)
        b = await rate(over_aiohttp, httpx_post, requests, n)
        c = await rate(aiohttp_alone, aiohttp_post, requests, n)
        print(f"| {n} | {a:,.0f}/s | {b:,.0f}/s | {c:,.0f}/s | {b / a:.1f}x |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"# HTTP clients, {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    with running_receiver() as base:
        asyncio.run(compare(f"{base}/hook", args.requests))


if __name__ == "__main__":
    main()
