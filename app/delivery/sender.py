"""Sending one webhook request and saying what came of it.

`Sender.send` never raises for anything the network or the receiver does: every result is an
`Outcome`, which says whether it succeeded and, if not, whether trying again can help
(`permanent`) and whether the receiver asked us to wait (`retry_after`).
"""

import time
from dataclasses import dataclass, field

import httpx

from app import __version__

USER_AGENT = f"InsigniaTaskScheduler/{__version__} (+webhook scheduler)"
RESPONSE_BODY_LIMIT = 1024


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One request to make: where, what, and the headers that identify the occurrence."""

    url: str
    payload: dict
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What came of one attempt."""

    success: bool
    message: str
    duration_ms: int
    http_status: int | None = None
    response_body: str | None = None
    permanent: bool = False
    retry_after: float | None = None


class Sender:
    """Posts deliveries through one shared HTTP client (connection pooling, no redirects)."""

    def __init__(self, *, timeout_seconds: float, max_connections: int = 100) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        self._timeout_seconds = timeout_seconds

    async def send(self, delivery: Delivery) -> Outcome:
        """POST the payload as JSON and classify the answer."""
        started = time.perf_counter()
        try:
            response = await self._client.post(
                delivery.url, json=delivery.payload, headers=delivery.headers
            )
        except httpx.TimeoutException:
            return Outcome(
                success=False,
                message=f"timed out after {self._timeout_seconds:g} s",
                duration_ms=_elapsed_ms(started),
            )
        except httpx.HTTPError as exc:
            return Outcome(
                success=False,
                message=f"network error: {type(exc).__name__}",
                duration_ms=_elapsed_ms(started),
            )
        body = response.text[:RESPONSE_BODY_LIMIT]
        status = response.status_code
        if 200 <= status < 300:
            message = f"Delivered (HTTP {status})"
            return Outcome(
                success=True,
                message=message,
                http_status=status,
                response_body=body,
                duration_ms=_elapsed_ms(started),
            )
        return Outcome(
            success=False,
            message=f"HTTP {status} from webhook",
            http_status=status,
            response_body=body,
            duration_ms=_elapsed_ms(started),
        )

    async def close(self) -> None:
        await self._client.aclose()


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
