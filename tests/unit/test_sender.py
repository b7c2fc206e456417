"""Classification of answers and errors, with a fake HTTP client (no network)."""

import asyncio
import errno
import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from app.delivery.client import Answer
from app.delivery.sender import Delivery, Sender, classify

DISCORD = "https://discord.com/api/webhooks/123/secret-token"
PLAIN = "https://hooks.example.com/notify"


@dataclass(frozen=True)
class Request:
    """What the sender asked the client to POST."""

    url: str
    payload: object
    headers: dict[str, str]

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)


class FakeClient:
    """Answers each POST with `handler(request)` (which may be a coroutine, or raise)."""

    def __init__(self, handler) -> None:
        self._handler = handler

    async def post(self, url: str, payload: object, headers: dict[str, str]) -> Answer:
        result = self._handler(Request(url, payload, dict(headers)))
        return await result if asyncio.iscoroutine(result) else result

    async def close(self) -> None:
        pass


def send(handler, url: str = PLAIN, *, timeout: float = 5.0, allow_private: bool = False):
    sender = Sender(
        client=FakeClient(handler), timeout_seconds=timeout, allow_private=allow_private
    )

    async def run():
        try:
            return await sender.send(
                Delivery(url=url, payload={"content": "hi"}, headers={"A": "b"})
            )
        finally:
            await sender.close()

    return asyncio.run(run())


def answer(status: int, body=None, headers=None):
    def handler(request: Request) -> Answer:
        content = "" if body is None else json.dumps(body)
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        return Answer(status, lowered, content)

    return handler


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_success(status):
    outcome = send(answer(status))
    assert outcome.success
    assert outcome.message == f"Delivered (HTTP {status})"
    assert outcome.http_status == status


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
def test_408_and_5xx_are_transient(status):
    outcome = send(answer(status))
    assert not outcome.success
    assert not outcome.permanent
    assert outcome.retry_after is None
    assert outcome.message == f"HTTP {status} from webhook"


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "webhook rejected the request (HTTP 400)"),
        (401, "webhook refused the request (HTTP 401)"),
        (403, "webhook refused the request (HTTP 403)"),
        (404, "webhook no longer exists (HTTP 404)"),
        (410, "webhook no longer exists (HTTP 410)"),
        (413, "webhook rejected the request (HTTP 413)"),
        (422, "webhook rejected the request (HTTP 422)"),
        (301, "webhook answered with a redirect (HTTP 301), which is not followed"),
        (307, "webhook answered with a redirect (HTTP 307), which is not followed"),
    ],
)
def test_other_4xx_and_redirects_are_permanent(status, reason):
    outcome = send(answer(status, headers={"Location": "http://127.0.0.1/"}))
    assert not outcome.success
    assert outcome.permanent
    assert outcome.message == reason


def test_discord_error_message_is_kept():
    outcome = send(answer(404, {"message": "Unknown Webhook", "code": 10015}))
    assert outcome.message == "webhook no longer exists (HTTP 404): Unknown Webhook"


def test_429_reads_discord_retry_after_first_then_the_header():
    body = {"message": "You are being rate limited.", "retry_after": 1.25, "global": False}
    assert send(answer(429, body, {"Retry-After": "2"})).retry_after == 1.25
    assert send(answer(429, None, {"Retry-After": "7"})).retry_after == 7.0
    assert send(answer(429)).retry_after is None
    assert not send(answer(429)).permanent


def test_discord_gets_wait_true_and_the_message_id():
    seen = []

    def handler(request: Request) -> Answer:
        seen.append(request)
        return Answer(200, {}, json.dumps({"id": "1300000000000000001"}))

    outcome = send(handler, DISCORD)
    assert seen[0].query["wait"] == ["true"]
    assert outcome.message == "Delivered (HTTP 200, Discord message 1300000000000000001)"


def test_request_shape():
    seen = []

    def handler(request: Request) -> Answer:
        seen.append(request)
        return Answer(204, {}, "")

    send(handler)
    (request,) = seen
    assert request.url == PLAIN
    assert request.headers == {"A": "b"}
    assert request.payload == {"content": "hi"}


def test_network_errors_are_transient_and_name_no_url():
    def handler(request: Request) -> Answer:
        raise aiohttp.ServerDisconnectedError(f"lost {request.url}")

    outcome = send(handler, DISCORD)
    assert not outcome.success and not outcome.permanent
    assert outcome.message == "network error: ServerDisconnectedError"
    assert "secret-token" not in outcome.message


def test_an_os_error_is_described_by_its_errno():
    def handler(request: Request) -> Answer:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")

    outcome = send(handler)
    assert not outcome.permanent
    assert outcome.message == "network error: connection refused"


def test_an_unusable_url_is_permanent():
    def handler(request: Request) -> Answer:
        raise aiohttp.InvalidURL(request.url)

    outcome = send(handler)
    assert outcome.permanent
    assert outcome.message == "invalid webhook URL: InvalidURL"


def test_the_whole_attempt_has_one_deadline():
    async def handler(request: Request) -> Answer:
        await asyncio.sleep(5)
        return Answer(204, {}, "")

    outcome = send(handler, timeout=0.2)
    assert not outcome.success and not outcome.permanent
    assert outcome.message == "timed out after 0.2 s"


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://2130706433/x", "http://[::1]/"])
def test_literal_private_targets_are_refused_without_a_request(url):
    calls = []
    outcome = send(lambda request: calls.append(request) or Answer(204, {}, ""), url)
    assert outcome.permanent
    assert outcome.message.startswith("refused:")
    assert calls == []


def test_private_targets_allowed_when_configured():
    outcome = send(answer(204), "http://127.0.0.1/hook", allow_private=True)
    assert outcome.success


def test_classify_without_a_body():
    assert classify(204, headers={}, body="").success


def test_an_unexpected_error_is_a_permanent_failure_not_a_crash():
    def handler(request: Request) -> Answer:
        raise KeyError("surprise")

    outcome = send(handler)
    assert outcome.permanent
    assert outcome.message == "delivery error: KeyError"


def test_the_outcome_says_when_the_request_left():
    outcome = send(answer(204))
    assert outcome.sent_at is not None
    assert outcome.sent_at.tzinfo is not None
