"""The one HTTP client a process uses for deliveries: aiohttp, with a guarded resolver.

`WebhookClient.post` sends one JSON POST and returns its `Answer` (status, lower-cased headers,
the body up to `RESPONSE_READ_LIMIT`); redirects are never followed. aiohttp is used directly
because it is the cheapest client per request: on the 2-core benchmark machine it made about
twice as many POSTs per second as httpx driven by an aiohttp transport, and ten times as many
as plain httpx (`python -m bench.http_clients`, docs/BENCHMARKS.md).

Outbound safety is enforced where the connection is made: the connector resolves names through
`GuardedResolver`, which refuses the whole answer if any address is not public or allowed by
the operator's `PrivateTargets` policy (ALLOW_PRIVATE_WEBHOOK_TARGETS), and the
connection is then made to exactly those checked addresses, so a name that resolves to a public
address when the task is saved and to 127.0.0.1 later (DNS rebinding) is still refused. IP
literals never reach a resolver; `Sender` checks them before sending, and `WebhookClient`
checks them again as aiohttp parses the URL.
"""

import json
import socket
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from app import __version__
from app.delivery.guard import (
    PrivateTargets,
    UnsafeTargetError,
    check_resolved_addresses,
    parse_literal_host,
)

USER_AGENT = f"InsigniaTaskScheduler/{__version__} (webhook scheduler)"
DNS_CACHE_SECONDS = 10
# Enough for any Discord reply (a message with 10 full embeds is about 20 KiB); the log keeps
# only the first KiB, but the message id is read from the whole reply.
RESPONSE_READ_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What a webhook answered: status, lower-cased headers, the body as text (invalid UTF-8
    replaced), at most RESPONSE_READ_LIMIT bytes of it."""

    status: int
    headers: dict[str, str]
    body: str

    @cached_property
    def document(self) -> object:
        """The body as JSON (parsed once, however many readers), or None: not JSON, or
        nested too deep for the parser."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, RecursionError):
            return None


class GuardedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then refuses addresses the policy does not
    allow (non-public ones, unless `allow_private` allows them; a bool: see PrivateTargets.of)."""

    def __init__(self, *, allow_private: PrivateTargets | bool) -> None:
        self._inner = DefaultResolver()
        self._targets = PrivateTargets.of(allow_private)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        check_resolved_addresses(
            host, [result["host"] for result in results], allow_private=self._targets
        )
        return results

    async def close(self) -> None:
        await self._inner.close()


class WebhookClient:
    """POSTs JSON documents through one pooled aiohttp session."""

    def __init__(
        self, session: aiohttp.ClientSession, *, allow_private: PrivateTargets | bool
    ) -> None:
        self._session = session
        self._targets = PrivateTargets.of(allow_private)

    async def post(self, url: str, payload: object, headers: dict[str, str]) -> Answer:
        """One POST of `payload` as JSON; the caller bounds it with a deadline."""
        return await self.request("POST", url, payload, headers)

    async def get(self, url: str) -> Answer:
        """One GET (a health probe that sends nothing); the caller bounds it with a deadline."""
        return await self.request("GET", url)

    async def request(
        self,
        method: str,
        url: str,
        payload: object | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request, with `payload` (if any) as JSON (bytes: JSON already serialized, sent
        exactly as they are); the caller bounds it with a deadline."""
        options: dict[str, Any] = {"headers": headers or {}}
        if payload is not None:
            body = (
                payload
                if isinstance(payload, bytes)
                else json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
            )
            options = {
                "data": body,
                "headers": {"Content-Type": "application/json"} | (headers or {}),
            }
        return await self._request(method, url, **options)

    async def _request(self, method: str, url: str, **options: Any) -> Answer:
        refuse_private_literal(url, allow_private=self._targets)
        async with self._session.request(method, url, allow_redirects=False, **options) as response:
            chunks: list[bytes] = []
            size = 0
            while size < RESPONSE_READ_LIMIT:
                chunk = await response.content.read(RESPONSE_READ_LIMIT - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            text = b"".join(chunks).decode("utf-8", errors="replace")
            answer_headers = {name.lower(): value for name, value in response.headers.items()}
            return Answer(response.status, answer_headers, text)

    async def close(self) -> None:
        await self._session.close()


def create_http_client(
    *, max_connections: int, allow_private: PrivateTargets | bool
) -> WebhookClient:
    """The shared delivery client (call inside a running event loop); `allow_private` is the
    policy for non-public targets (a bool: see PrivateTargets.of)."""
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        resolver=GuardedResolver(allow_private=allow_private),
        ttl_dns_cache=DNS_CACHE_SECONDS,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT},
        # Tasks of different owners share webhook hosts: no answer's cookie goes out again.
        cookie_jar=aiohttp.DummyCookieJar(),
        # The sender puts one deadline around the whole attempt.
        timeout=aiohttp.ClientTimeout(total=None),
    )
    return WebhookClient(session, allow_private=allow_private)


def refuse_private_literal(url: str, *, allow_private: PrivateTargets | bool = False) -> None:
    """Raise UnsafeTargetError if the host, as aiohttp itself parses the URL, is an IP literal
    the policy does not allow. Literals never reach the resolver, and the sender's own check
    parses URLs with another parser: this makes sure both saw the same host."""
    refusal = _literal_refusal(url, PrivateTargets.of(allow_private))
    if refusal is not None:
        raise UnsafeTargetError(refusal)


@lru_cache(maxsize=4096)
def _literal_refusal(url: str, targets: PrivateTargets) -> str | None:
    """Why the IP literal in ``url`` is refused under ``targets`` (None: allowed, or a name).
    Remembered: every request checks its URL, and the answer depends on nothing else."""
    host = URL(url).raw_host or ""
    literal = parse_literal_host(host)
    if literal is None:
        return None
    try:
        check_resolved_addresses(host, [str(literal)], allow_private=targets)
    except UnsafeTargetError as exc:
        return str(exc)
    return None
