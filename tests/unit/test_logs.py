"""Log output: formats, extra fields, and no webhook token ever."""

import asyncio
import json
import logging

import pytest

from app.delivery.client import GuardedResolver
from app.delivery.guard import UnsafeTargetError
from app.logs import JsonFormatter, TextFormatter, redact_secrets

TOKEN = "AbC-123_secretTOKENvalue"
URL = f"https://discord.com/api/webhooks/123456/{TOKEN}?wait=true"


def record(message: str, *args, **extra) -> logging.LogRecord:
    entry = logging.makeLogRecord({"msg": message, "args": args, "levelname": "INFO"})
    entry.__dict__.update(extra)
    return entry


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_webhook_tokens_are_redacted_in_messages_and_fields(formatter):
    line = formatter.format(record("HTTP Request: POST %s", URL, url=URL))
    assert TOKEN not in line
    assert "/api/webhooks/123456/***" in line


def test_json_lines_carry_event_and_extra_fields():
    entry = json.loads(
        JsonFormatter().format(record("delivery failed", task_id="t1", step="retry"))
    )
    assert entry["event"] == "delivery failed"
    assert (entry["task_id"], entry["step"], entry["level"]) == ("t1", "retry", "INFO")


def test_versioned_api_paths_are_redacted_too():
    assert TOKEN not in redact_secrets(f"https://discord.com/api/v10/webhooks/1/{TOKEN}")


class FakeResolver:
    def __init__(self, addresses):
        self.addresses = addresses

    async def resolve(self, host, port=0, family=0):
        return [{"hostname": host, "host": a, "port": port} for a in self.addresses]


def resolve_with(addresses, *, allow_private=False):
    async def run():
        resolver = GuardedResolver(allow_private=allow_private)
        resolver._inner = FakeResolver(addresses)
        return await resolver.resolve("hooks.example.com", 443)

    return asyncio.run(run())


def test_connect_time_check_refuses_private_answers():
    with pytest.raises(UnsafeTargetError, match="non-public"):
        resolve_with(["93.184.216.34", "10.0.0.7"])
    assert len(resolve_with(["93.184.216.34"])) == 1
    assert len(resolve_with(["10.0.0.7"], allow_private=True)) == 1
