"""Discord pacing, on a fake clock."""

import asyncio
from datetime import UTC, datetime

import pytest

from app.delivery.discord import DiscordPacer, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def turn(pacer: DiscordPacer, webhook: str = "w", max_wait: float = 0.0):
    async def run():
        return await pacer.wait_turn(webhook, max_wait=max_wait)

    return asyncio.run(run())


def test_an_exhausted_bucket_defers_until_it_refills():
    clock = Clock()
    pacer = DiscordPacer(clock=clock)
    assert turn(pacer) is None
    headers = {
        "x-ratelimit-limit": "5",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset-after": "1.5",
    }
    pacer.observe("w", status=204, headers=headers, body=None)
    pacer.finished("w")
    assert turn(pacer) == 1.5
    clock.now += 1.5
    assert turn(pacer) is None  # refilled


def test_a_remaining_bucket_sends_at_once():
    clock = Clock()
    pacer = DiscordPacer(clock=clock, global_rate=1e9)
    headers = {
        "x-ratelimit-limit": "5",
        "x-ratelimit-remaining": "3",
        "x-ratelimit-reset-after": "2",
    }
    pacer.observe("w", status=204, headers=headers, body=None)
    assert turn(pacer) is None


def test_the_global_rate_spaces_requests_across_webhooks():
    clock = Clock()
    pacer = DiscordPacer(clock=clock, global_rate=10)
    assert turn(pacer, "a") is None
    pacer.finished("a")
    assert turn(pacer, "b") == pytest.approx(0.1)  # the next global slot is 0.1 s away


def test_a_global_429_pauses_every_webhook():
    clock = Clock()
    pacer = DiscordPacer(clock=clock, global_rate=1e9)
    pacer.observe("a", status=429, headers={}, body={"retry_after": 3.0, "global": True})
    assert turn(pacer, "b") == 3.0


def test_a_webhook_429_pauses_only_that_webhook():
    clock = Clock()
    pacer = DiscordPacer(clock=clock, global_rate=1e9)
    pacer.observe("a", status=429, headers={}, body={"retry_after": 2.0, "global": False})
    assert turn(pacer, "a") == 2.0
    assert turn(pacer, "b") is None


def test_many_invalid_answers_pause_all_discord_traffic():
    clock = Clock()
    pacer = DiscordPacer(clock=clock, global_rate=1e9)
    for _ in range(2500):
        pacer.observe("a", status=401, headers={}, body=None)
    assert turn(pacer, "b") == 60.0


def test_one_request_at_a_time_per_webhook():
    pacer = DiscordPacer(global_rate=1e9)

    async def run():
        first = await pacer.wait_turn("w", max_wait=1.0)
        second = asyncio.create_task(pacer.wait_turn("w", max_wait=1.0))
        await asyncio.sleep(0.05)
        blocked = not second.done()
        pacer.finished("w")
        return first, blocked, await second

    assert asyncio.run(run()) == (None, True, None)


def test_retry_after_sources():
    assert retry_after_seconds({}, {"retry_after": 0.75}) == 0.75
    assert retry_after_seconds({"retry-after": "3"}, None) == 3.0
    assert retry_after_seconds({"retry-after": "soon"}, {"retry_after": "x"}) is None
    assert retry_after_seconds({}, {"retry_after": -1}) is None


def test_retry_after_as_an_http_date_and_absurd_values():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = {"retry-after": "Thu, 01 Jan 2026 12:00:30 GMT"}
    assert retry_after_seconds(header, None, now=now) == 30.0
    assert retry_after_seconds({}, {"retry_after": 1e12}) == 86_400.0
    assert retry_after_seconds({"retry-after": "nan"}, None) is None
