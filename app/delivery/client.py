"""The one HTTP client a process uses for deliveries.

It is an `httpx.AsyncClient` (the API the rest of the code and the unit tests use) driven by the
aiohttp transport of `httpx-aiohttp`: on a 2-core machine plain httpx 0.28 managed about 200 to
900 POSTs per second depending on concurrency, httpx over aiohttp about 3,600 to 5,200 (see
docs/BENCHMARKS.md). Redirects are never followed.

Outbound safety is enforced where the connection is made: the aiohttp connector resolves names
through `GuardedResolver`, which refuses the whole answer if any address is not public, and the
connection is then made to exactly those checked addresses, so a name that resolves to a public
address when the task is saved and to 127.0.0.1 later (DNS rebinding) is still refused. IP
literals never reach a resolver; `Sender` checks them before sending.
"""

import socket
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from httpx_aiohttp import AiohttpTransport

from app import __version__
from app.delivery.guard import check_resolved_addresses

USER_AGENT = f"InsigniaTaskScheduler/{__version__} (webhook scheduler)"
DNS_CACHE_SECONDS = 10


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses non-public addresses."""

    def __init__(self, *, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        check_resolved_addresses(
            host, [result["host"] for result in results], allow_private=self._allow_private
        )
        return results

    async def close(self) -> None:
        await self._inner.close()


def create_http_client(*, max_connections: int, allow_private: bool) -> httpx.AsyncClient:
    """The shared delivery client (call inside a running event loop)."""

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            resolver=GuardedResolver(allow_private=allow_private),
            ttl_dns_cache=DNS_CACHE_SECONDS,
        )
        return aiohttp.ClientSession(connector=connector)

    transport: Any = AiohttpTransport(client=session)
    return httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )
