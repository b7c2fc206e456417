"""Sending one webhook request and saying what came of it.

`Sender.send` never raises for anything the network or the receiver does; every result is an
`Outcome` (see `app.delivery.outcome` for the kinds). Whatever the receiver answered is made
storable here, where it enters: the body is cut to `RESPONSE_BODY_CHARS` and, like any text
quoted from it, has NUL characters and unpaired surrogates replaced.

Discord webhooks (see `app.delivery.discord`) are sent with `?wait=true`, so that a 200 with the
created message proves the delivery and the log keeps the message id (read from the whole
reply, before it is cut), and are paced by `DiscordPacer`. Messages name no URL: webhook URLs
carry their secret token.
"""

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

import aiohttp

from app.delivery.client import Answer
from app.delivery.discord import (
    DiscordPacer,
    is_discord_webhook_url,
    retry_after_seconds,
    webhook_id,
)
from app.delivery.discord.messages import Call, delete_message, run_mode
from app.delivery.guard import PrivateTargets, UnsafeTargetError, check_url_target
from app.delivery.outcome import Outcome, OutcomeKind
from app.delivery.signing import signature_headers
from app.domain import DiscordMode
from app.text import scrub, scrub_optional

# Pacing waits up to this long in place; longer, the occurrence is rescheduled instead.
INLINE_PACING_SECONDS = 2.0
TRANSIENT_4XX = frozenset({408})
# A probe's answers that say the webhook will not come back.
PROBE_PERMANENT = frozenset({401, 403, 404, 410})
PROBE_TIMEOUT_SECONDS = 5.0
# What a log row keeps of an answer's body.
RESPONSE_BODY_CHARS = 1024
MESSAGE_ID_CHARS = 32


class PostClient(Protocol):
    """What the sender needs of an HTTP client (`app.delivery.client.WebhookClient`)."""

    async def post(self, url: str, payload: object, headers: dict[str, str]) -> Answer: ...

    async def get(self, url: str) -> Answer: ...

    async def request(
        self,
        method: str,
        url: str,
        payload: object | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One request to make: where, what, and the headers that identify the occurrence."""

    url: str
    payload: dict
    headers: dict[str, str] = field(default_factory=dict)
    mode: DiscordMode = DiscordMode.POST  # Discord webhooks only
    message_id: str | None = None  # the message a Discord `edit` or `replace` acts on
    signing_secrets: tuple[str, ...] = ()  # other webhooks: sign with each (Standard Webhooks)


class Sender:
    """Posts deliveries through one shared HTTP client and classifies the answers."""

    def __init__(
        self,
        *,
        client: PostClient,
        timeout_seconds: float,
        allow_private: PrivateTargets | bool,
        discord_hosts: Collection[str] = (),
        pacer: DiscordPacer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        self._clock = clock or (lambda: datetime.now(UTC))
        self._timeout = timeout_seconds
        self._targets = PrivateTargets.of(allow_private)
        self._discord_hosts = discord_hosts
        self._pacer = pacer or DiscordPacer()

    async def send(
        self, delivery: Delivery, *, slot: AbstractAsyncContextManager | None = None
    ) -> Outcome:
        """POST the payload as JSON to the delivery's URL and classify what happened.

        `slot` (e.g. a semaphore) is entered just before the request, after any pacing wait, so
        a request waiting for Discord's rate limit holds no sending slot; whatever it raises on
        entry propagates (nothing is sent)."""
        url = delivery.url
        try:
            check_url_target(url, allow_private=self._targets)
        except UnsafeTargetError as exc:
            return Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message=f"refused: {exc}")
        if not is_discord_webhook_url(url, self._discord_hosts):
            async with slot or contextlib.nullcontext():
                return await self._attempt(lambda: self._post_signed(url, delivery))
        call = self._discord_call(url, delivery.headers)
        return await self._paced(
            url,
            lambda: run_mode(
                call, url, delivery.payload, mode=delivery.mode, message_id=delivery.message_id
            ),
            slot=slot,
        )

    async def _post_signed(self, url: str, delivery: Delivery) -> Answer:
        """POST the payload, signed over the exact bytes sent when the delivery has secrets."""
        if not delivery.signing_secrets:
            return await self._client.post(url, delivery.payload, delivery.headers)
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False)
        signed = signature_headers(
            delivery.signing_secrets,
            message_id=delivery.headers.get("Idempotency-Key", ""),
            body=body,
            at=self._clock(),
        )
        return await self._client.post(url, body.encode(), delivery.headers | signed)

    async def delete_message(self, url: str, message_id: str) -> Outcome:
        """Delete a message a Discord webhook posted (already gone counts as deleted)."""
        try:
            check_url_target(url, allow_private=self._targets)
        except UnsafeTargetError as exc:
            return Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message=f"refused: {exc}")
        call = self._discord_call(url, {})
        outcome = await self._paced(url, lambda: delete_message(call, url, message_id))
        if outcome.success:
            outcome = replace(outcome, message=f"Discord message {message_id} deleted")
        return outcome

    async def _paced(
        self,
        url: str,
        request: Callable[[], Awaitable[Answer]],
        *,
        slot: AbstractAsyncContextManager | None = None,
    ) -> Outcome:
        """Requests to a Discord webhook, in its turn under Discord's rate limits."""
        webhook = webhook_id(url)
        wait = await self._pacer.wait_turn(webhook, max_wait=INLINE_PACING_SECONDS)
        if wait is not None:
            return Outcome(
                kind=OutcomeKind.DEFERRED,
                message=f"paced for Discord's rate limit; sending in {wait:.1f} s",
                retry_after=wait,
            )
        try:
            async with slot or contextlib.nullcontext():
                return await self._attempt(request)
        finally:
            self._pacer.finished(webhook)

    def _discord_call(self, url: str, headers: dict[str, str]) -> Call:
        """One request to a Discord webhook, its answer shown to the pacer."""
        webhook = webhook_id(url)

        async def call(method: str, target: str, payload: object | None) -> Answer:
            if method == "POST":
                answer = await self._client.post(target, payload, headers)
            else:
                answer = await self._client.request(method, target, payload, headers)
            self._pacer.observe(
                webhook, status=answer.status, headers=answer.headers, body=answer.document
            )
            return answer

        return call

    async def probe(self, url: str) -> Outcome:
        """Whether a switched-off task's webhook is back. A Discord webhook is asked with GET,
        which posts nothing: 2xx is success; 401, 403, 404 and 410 are permanent; anything else
        is transient. Other targets are not contacted: their next regular occurrence is the
        test, so the probe succeeds at once."""
        try:
            check_url_target(url, allow_private=self._targets)
        except UnsafeTargetError as exc:
            return Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message=f"refused: {exc}")
        if not is_discord_webhook_url(url, self._discord_hosts):
            message = "resumed without a request: the next occurrence tests the webhook"
            return Outcome(kind=OutcomeKind.SUCCESS, message=message)
        sent_at = self._clock()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(min(self._timeout, PROBE_TIMEOUT_SECONDS)):
                answer = await self._client.get(url)
        except Exception as exc:  # every failure becomes an outcome
            return replace(self._failure_from(exc, started), sent_at=sent_at)
        outcome = classify_probe(answer.status, body=answer.body, duration_ms=_elapsed_ms(started))
        return replace(outcome, sent_at=sent_at)

    async def _attempt(self, request: Callable[[], Awaitable[Answer]]) -> Outcome:
        """The request(s) of one attempt within the total deadline, classified."""
        sent_at = self._clock()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                answer = await request()
        except Exception as exc:  # every failure becomes an outcome
            return replace(self._failure_from(exc, started), sent_at=sent_at)
        outcome = classify(
            answer.status,
            headers=answer.headers,
            body=answer.body,
            document=answer.document,
            duration_ms=_elapsed_ms(started),
        )
        return replace(outcome, sent_at=sent_at)

    def _failure_from(self, exc: Exception, started: float) -> Outcome:
        """The outcome of a request that got no answer. The error itself decides, except that
        a refusal by the address guard counts wherever it sits in the chain of causes."""
        elapsed = _elapsed_ms(started)
        refusal = _guard_refusal(exc)
        permanent, transient = OutcomeKind.PERMANENT_FAILURE, OutcomeKind.TRANSIENT_FAILURE
        if refusal is not None:
            return Outcome(kind=permanent, message=f"refused: {refusal}", duration_ms=elapsed)
        if isinstance(exc, TimeoutError):
            message = f"timed out after {self._timeout:g} s"
            return Outcome(kind=transient, message=message, duration_ms=elapsed)
        if isinstance(exc, aiohttp.InvalidURL) or (
            isinstance(exc, ValueError) and not isinstance(exc, OSError | aiohttp.ClientError)
        ):
            # A URL the HTTP stack cannot use (bad IDNA, control characters): no retry helps.
            message = f"invalid webhook URL: {type(exc).__name__}"
            return Outcome(kind=permanent, message=message, duration_ms=elapsed)
        if isinstance(exc, aiohttp.ClientError | OSError):
            # Refused or reset connections, malformed or cut-short answers: try again later.
            return Outcome(kind=transient, message=_network_error(exc), duration_ms=elapsed)
        # Anything else is unexpected; still an outcome, so the occurrence cannot loop forever.
        message = f"delivery error: {type(exc).__name__}"
        return Outcome(kind=permanent, message=message, duration_ms=elapsed)

    async def close(self) -> None:
        await self._client.close()


def classify(
    status: int,
    *,
    headers: dict[str, str],
    body: str,
    document: object = None,
    duration_ms: int = 0,
) -> Outcome:
    """The outcome of an HTTP answer (headers lower-cased; `body` the whole text read;
    `document` the parsed JSON body)."""
    common = {
        "http_status": status,
        "response_body": scrub_optional(body, limit=RESPONSE_BODY_CHARS),
        "duration_ms": duration_ms,
    }
    if 200 <= status < 300:
        message_id = _message_id(document)
        suffix = f", Discord message {message_id}" if message_id else ""
        return Outcome(
            kind=OutcomeKind.SUCCESS,
            message=f"Delivered (HTTP {status}{suffix})",
            message_id=message_id,
            **common,
        )
    if status == 429:
        wait = retry_after_seconds(headers, document)
        return Outcome(
            kind=OutcomeKind.RATE_LIMITED,
            message="rate limited (HTTP 429)",
            retry_after=wait,
            **common,
        )
    if status >= 500 or status in TRANSIENT_4XX:
        message = f"HTTP {status} from webhook"
        return Outcome(kind=OutcomeKind.TRANSIENT_FAILURE, message=message, **common)
    message = _permanent_reason(status, document)
    return Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message=message, **common)


def classify_probe(status: int, *, body: str, duration_ms: int = 0) -> Outcome:
    """The outcome of a GET of a Discord webhook (see `Sender.probe`)."""
    common = {
        "http_status": status,
        "response_body": scrub_optional(body, limit=RESPONSE_BODY_CHARS),
        "duration_ms": duration_ms,
    }
    if 200 <= status < 300:
        return Outcome(
            kind=OutcomeKind.SUCCESS, message=f"webhook answered HTTP {status}", **common
        )
    if status in PROBE_PERMANENT:
        message = _permanent_reason(status, _json(body))
        return Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message=message, **common)
    message = f"HTTP {status} from webhook"
    return Outcome(kind=OutcomeKind.TRANSIENT_FAILURE, message=message, **common)


def _message_id(document: object) -> str | None:
    """The created message's id in a Discord reply (a snowflake), if it has a sane one."""
    value = document.get("id") if isinstance(document, dict) else None
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = scrub(str(value))[:MESSAGE_ID_CHARS]
    return text or None


def _permanent_reason(status: int, document: object) -> str:
    detail = document.get("message") if isinstance(document, dict) else None
    said = f": {scrub(str(detail)[:200])}" if detail else ""
    if 300 <= status < 400:
        return f"webhook answered with a redirect (HTTP {status}), which is not followed"
    if status in (404, 410):
        return f"webhook no longer exists (HTTP {status}){said}"
    if status in (401, 403):
        return f"webhook refused the request (HTTP {status}){said}"
    return f"webhook rejected the request (HTTP {status}){said}"


def _network_error(cause: BaseException) -> str:
    """A short description of a failed connection: what the OS said, never the URL."""
    os_error = getattr(cause, "os_error", None) or (cause if isinstance(cause, OSError) else None)
    code = getattr(os_error, "errno", None)
    if isinstance(code, int) and code > 0:
        return f"network error: {os.strerror(code).lower()}"
    return f"network error: {type(cause).__name__}"


def _guard_refusal(exc: BaseException) -> UnsafeTargetError | None:
    """The address guard's refusal in `exc`'s chain of causes, if there is one."""
    seen: BaseException | None = exc
    for _ in range(10):  # chains are short; never loop on a cycle
        if seen is None or isinstance(seen, UnsafeTargetError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _json(body: str) -> object:
    """The body as JSON, or None (not JSON, or nested too deep for the parser)."""
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
