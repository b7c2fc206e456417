"""A webhook receiver on 127.0.0.1 that answers like Discord, for integration tests.

By default a POST to `/api/webhooks/{id}/{token}` gets 204 with no body, or 200 with the created
message (with an `id`) when the query says `wait=true`. Tests script other answers per webhook
id: 429 with `retry_after`, 404 Unknown Webhook, 500, slow answers, or answers that hang.
"""

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

_message_ids = itertools.count(1_300_000_000_000_000_000)


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    at: datetime
    webhook_id: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: object
    method: str = "POST"
    raw: bytes = b""  # the body exactly as it arrived

    @property
    def key(self) -> str:
        return self.headers.get("idempotency-key", "")

    @property
    def scheduled_for(self) -> str:
        return self.headers.get("x-insignia-scheduled-for", "")


@dataclass(frozen=True)
class Answer:
    """A scripted answer: status, JSON body (None: empty), headers, and a delay before it.
    `raw` replaces the JSON body with exactly these bytes (hostile or malformed answers)."""

    status: int = 204
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None

    def encoded(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return b"" if self.body is None else json.dumps(self.body).encode()


def rate_limited(retry_after: float) -> Answer:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return Answer(429, body, {"Retry-After": str(max(1, round(retry_after)))})


def unknown_webhook() -> Answer:
    return Answer(404, {"message": "Unknown Webhook", "code": 10015})


def server_error() -> Answer:
    return Answer(500, {"message": "Internal Server Error"})


def discord_message(content: str) -> Answer:
    """Discord's answer to a `?wait=true` POST: the created message, as long as its content."""
    message_id = str(next(_message_ids))
    body = {"id": message_id, "type": 0, "content": content, "embeds": [], "author": {}}
    return Answer(200, body)


def slow(seconds: float) -> Answer:
    return Answer(204, None, {}, seconds)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the default 5 resets connections under a burst


class WebhookReceiver:
    """A threaded HTTP server; `requests` lists what arrived, in order."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._scripts: dict[str, list[Answer]] = {}
        self._get_scripts: dict[str, list[Answer]] = {}
        self.messages: dict[str, object] = {}  # the messages the webhooks posted, by id
        self._buckets: dict[str, dict] = {}
        self._over_limit: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server = _Server(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, webhook_id: str = "1", token: str = "hook-token-secret") -> str:
        return f"http://127.0.0.1:{self.port}/api/webhooks/{webhook_id}/{token}"

    def script(self, webhook_id: str, *answers: Answer) -> None:
        """Answer the next requests to this webhook with `answers`, then with the default."""
        with self._lock:
            self._scripts.setdefault(webhook_id, []).extend(answers)

    def script_get(self, webhook_id: str, *answers: Answer) -> None:
        """Answer the next GETs of this webhook (Discord's "get webhook") with `answers`, then
        with 200 and the webhook object."""
        with self._lock:
            self._get_scripts.setdefault(webhook_id, []).extend(answers)

    def posts(self, webhook_id: str | None = None) -> list[Received]:
        return [r for r in self.received(webhook_id) if r.method == "POST"]

    def gets(self, webhook_id: str | None = None) -> list[Received]:
        return [r for r in self.received(webhook_id) if r.method == "GET"]

    def rate_limit(self, webhook_id: str, *, limit: int, per: float) -> None:
        """Give this webhook a Discord-style bucket: `limit` requests per `per` seconds, told in
        X-RateLimit-* headers; a request over it gets 429 with `retry_after`."""
        with self._lock:
            self._buckets[webhook_id] = {"limit": limit, "per": per, "used": 0, "reset": 0.0}

    def rejected(self, webhook_id: str) -> int:
        """How many requests to this webhook its bucket answered with 429."""
        with self._lock:
            return self._over_limit.get(webhook_id, 0)

    def _bucket_answer(self, webhook_id: str, answer: Answer) -> Answer:
        with self._lock:
            bucket = self._buckets.get(webhook_id)
            if bucket is None:
                return answer
            now = time.monotonic()
            if now >= bucket["reset"]:
                bucket["used"], bucket["reset"] = 0, now + bucket["per"]
            reset_after = round(bucket["reset"] - now, 3)
            if bucket["used"] >= bucket["limit"]:
                self._over_limit[webhook_id] = self._over_limit.get(webhook_id, 0) + 1
                limited = rate_limited(reset_after)
                return Answer(
                    limited.status,
                    limited.body,
                    limited.headers
                    | {
                        "X-RateLimit-Limit": str(bucket["limit"]),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset-After": str(reset_after),
                    },
                )
            bucket["used"] += 1
            headers = {
                "X-RateLimit-Limit": str(bucket["limit"]),
                "X-RateLimit-Remaining": str(bucket["limit"] - bucket["used"]),
                "X-RateLimit-Reset-After": str(reset_after),
            }
            return Answer(
                answer.status, answer.body, answer.headers | headers, answer.delay, answer.raw
            )

    def received(self, webhook_id: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if webhook_id is None or r.webhook_id == webhook_id]

    def wait_for(
        self, count: int, *, webhook_id: str | None = None, timeout: float = 10.0
    ) -> list[Received]:
        """Block until at least `count` requests (to that webhook) arrived; fail at the deadline."""
        return self.wait_until(
            lambda got: len(got) >= count,
            webhook_id=webhook_id,
            timeout=timeout,
            what=f"{count} request(s)",
        )

    def wait_until(
        self,
        predicate: Callable[[list[Received]], bool],
        *,
        webhook_id: str | None = None,
        timeout: float = 10.0,
        what: str = "a condition",
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                got = [r for r in self.requests if webhook_id is None or r.webhook_id == webhook_id]
                if predicate(got):
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"receiver: waited {timeout} s for {what} "
                        f"(webhook {webhook_id}); got {len(got)}"
                    )
                self._changed.wait(remaining)

    def _next_answer(self, webhook_id: str, wait: bool) -> Answer:
        with self._lock:
            script = self._scripts.get(webhook_id)
            if script:
                return script.pop(0)
        if wait:
            return Answer(200, {"id": str(next(_message_ids)), "type": 0, "webhook_id": webhook_id})
        return Answer(204)

    def _next_get_answer(self, webhook_id: str) -> Answer:
        with self._lock:
            script = self._get_scripts.get(webhook_id)
            if script:
                return script.pop(0)
        body = {"id": webhook_id, "type": 1, "channel_id": "1", "name": "receiver"}
        return Answer(200, body)

    def _remember(self, answer: Answer) -> None:
        """A 200 with a message (a `?wait=true` POST): the message exists until deleted."""
        if answer.status == 200 and isinstance(answer.body, dict) and "id" in answer.body:
            with self._lock:
                self.messages[str(answer.body["id"])] = answer.body

    def _message_answer(self, method: str, message_id: str, body: object) -> Answer:
        """PATCH or DELETE of a message: 404 Unknown Message unless it exists."""
        with self._lock:
            message = self.messages.get(message_id)
            if message is None:
                return Answer(404, {"message": "Unknown Message", "code": 10008})
            if method == "DELETE":
                del self.messages[message_id]
                return Answer(204)
            edited = dict(message) | (body if isinstance(body, dict) else {})
            self.messages[message_id] = edited
            return Answer(200, edited)

    def _record(self, received: Received) -> None:
        with self._changed:
            self.requests.append(received)
            self._changed.notify_all()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = datetime.now(UTC)
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                segments = parts.path.strip("/").split("/")
                webhook_id = segments[2] if len(segments) >= 3 else ""
                query = parse_qs(parts.query)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver._record(
                    Received(arrived, webhook_id, parts.path, query, headers, body, "POST", raw)
                )
                answer = receiver._next_answer(webhook_id, query.get("wait") == ["true"])
                answer = receiver._bucket_answer(webhook_id, answer)
                receiver._remember(answer)
                self._answer(answer)

            def do_PATCH(self) -> None:
                self._on_message("PATCH")

            def do_DELETE(self) -> None:
                self._on_message("DELETE")

            def _on_message(self, method: str) -> None:
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                webhook_id = segments[2] if len(segments) >= 3 else ""
                got = Received(
                    datetime.now(UTC), webhook_id, parts.path, parse_qs(parts.query), headers,
                    body, method,
                )  # fmt: skip
                receiver._record(got)
                message_id = segments[-1] if "messages" in segments else ""
                self._answer(receiver._message_answer(method, message_id, body))

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                segments = parts.path.strip("/").split("/")
                webhook_id = segments[2] if len(segments) >= 3 else ""
                headers = {k.lower(): v for k, v in self.headers.items()}
                got = Received(
                    datetime.now(UTC), webhook_id, parts.path, parse_qs(parts.query), headers,
                    None, "GET",
                )  # fmt: skip
                receiver._record(got)
                self._answer(receiver._next_get_answer(webhook_id))

            def _answer(self, answer: Answer) -> None:
                if answer.delay:
                    time.sleep(answer.delay)
                payload = answer.encoded()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    if payload:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client went away (timed out, or was killed)
                    pass

            def log_message(self, *_args: object) -> None:
                pass

        return Handler
