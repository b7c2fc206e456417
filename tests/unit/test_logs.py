"""Log output: formats, extra fields, no URL secret ever, and no line that is not ours."""

import asyncio
import json
import logging
import sys

import pytest
from sqlalchemy.exc import IntegrityError

from app.delivery.client import GuardedResolver
from app.delivery.guard import UnsafeTargetError
from app.logs import TRACEBACK_INDENT, JsonFormatter, TextFormatter, escape_controls

TOKEN = "AbC-123_secretTOKENvalue"
URL = f"https://discord.com/api/webhooks/123456/{TOKEN}?wait=true"
SIG = "teamsSIGNATUREsecret"
TEAMS = f"https://x.webhook.office.com/workflows/1/invoke?api-version=1&sig={SIG}"
FORMATTERS = [JsonFormatter(), TextFormatter()]


def record(message: str, *args, exc_info=None, **extra) -> logging.LogRecord:
    entry = logging.makeLogRecord(
        {"msg": message, "args": args, "levelname": "INFO", "exc_info": exc_info}
    )
    entry.__dict__.update(extra)
    return entry


def raised(exc: BaseException):
    """`exc` as `sys.exc_info()` sees it once raised (with a traceback)."""
    try:
        raise exc
    except BaseException:
        return sys.exc_info()


@pytest.mark.parametrize("formatter", FORMATTERS)
def test_webhook_tokens_are_redacted_in_messages_and_fields(formatter):
    line = formatter.format(record("HTTP Request: POST %s", URL, url=URL, urls=[TEAMS]))
    assert TOKEN not in line
    assert SIG not in line
    assert "/api/webhooks/123456/***" in line
    assert "discord.com" in line


@pytest.mark.parametrize("formatter", FORMATTERS)
def test_secrets_in_exceptions_and_tracebacks_are_redacted(formatter):
    # SQLAlchemy's message lists the statement's parameters: the webhook URL among them.
    error = IntegrityError("INSERT INTO tasks VALUES (?, ?)", (URL, TEAMS), Exception(URL))
    line = formatter.format(record("could not save", exc_info=raised(error)))
    assert "IntegrityError" in line
    assert "[parameters: " in line
    assert TOKEN not in line
    assert SIG not in line


@pytest.mark.parametrize("formatter", FORMATTERS)
def test_a_stack_is_redacted_too(formatter):
    entry = record(f"at {URL}")
    entry.stack_info = f'Stack (most recent call last):\n  File "x.py", line 1, in {URL}'
    line = formatter.format(entry)
    assert TOKEN not in line
    assert "Stack (most recent call last)" in line


class Unprintable:
    def __str__(self):
        raise RuntimeError(URL)


@pytest.mark.parametrize("formatter", FORMATTERS)
def test_a_record_that_cannot_be_formatted_still_gives_a_redacted_line(formatter):
    line = formatter.format(record("sent to %s and %s", URL, broken=Unprintable()))
    assert "sent to %s and %s" in line
    assert "/api/webhooks/123456/***" in line
    assert "<text withheld: it could not be redacted>" in line
    assert TOKEN not in line


def test_json_lines_carry_event_and_extra_fields():
    entry = json.loads(
        JsonFormatter().format(record("delivery failed", task_id="t1", step="retry"))
    )
    assert entry["event"] == "delivery failed"
    assert (entry["task_id"], entry["step"], entry["level"]) == ("t1", "retry", "INFO")


def test_json_keeps_the_shape_of_extra_values_and_redacts_every_text_in_them():
    line = JsonFormatter().format(
        record("x", count=3, ok=True, none=None, nested={"urls": [URL, 1.5]}, obj=ValueError(URL))
    )
    entry = json.loads(line)
    assert (entry["count"], entry["ok"], entry["none"]) == (3, True, None)
    assert entry["nested"] == {
        "urls": ["https://discord.com/api/webhooks/123456/***?wait=***", 1.5]
    }
    assert entry["obj"] == "https://discord.com/api/webhooks/123456/***?wait=***"
    assert TOKEN not in line


def test_json_exceptions_stay_on_one_line():
    line = JsonFormatter().format(record("boom", exc_info=raised(ValueError(f"bad\n{URL}"))))
    assert "\n" not in line
    assert TOKEN not in json.loads(line)["exception"]


FORGED = "2026-01-01 00:00:00,000 INFO app: forged"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("a\tb", "a\\tb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00", "nul\\x00"),
        ("del\x7f", "del\\x7f"),
        ("next\x85line", "next\\x85line"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("vt\x0bff\x0cfs\x1c", "vt\\x0bff\\x0cfs\\x1c"),
        ("bidi\u202e\u2066", "bidi\\u202e\\u2066"),
        ("lone\ud800", "lone\\ud800"),
        ("plain é ✓ 日本 \\n", "plain é ✓ 日本 \\n"),
    ],
)
def test_control_characters_are_escaped(raw, shown):
    assert escape_controls(raw) == shown


def test_text_values_cannot_forge_a_log_line():
    line = TextFormatter().format(
        record(
            "delivery failed: %s",
            f"webhook said \r\n{FORGED}",
            error=f"x\n{FORGED}",
            reason=f"\u2028{FORGED}\x1b[2K\ud800",
        )
    )
    assert line.splitlines() == [line]  # one line, whatever splitlines() counts as a break
    assert "webhook said \\r\\n2026-01-01" in line
    assert "error=x\\n2026-01-01" in line
    assert "reason=\\u20282026-01-01" in line
    assert "\\x1b[2K\\ud800" in line
    line.encode()  # a lone surrogate would not survive this


def test_text_tracebacks_follow_on_indented_lines():
    exc_info = raised(ValueError(f"bad\n{FORGED}\r{URL}"))
    line = TextFormatter().format(record("delivery crashed", exc_info=exc_info, task_id="t1"))
    first, *trace = line.split("\n")
    assert first.endswith("delivery crashed task_id=t1")
    assert trace[0] == f"{TRACEBACK_INDENT}Traceback (most recent call last):"
    assert all(text.startswith(TRACEBACK_INDENT) for text in trace)
    assert f"{TRACEBACK_INDENT}{FORGED}\\r" in trace[-1]
    assert TOKEN not in line


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
