"""Logging setup: readable text by default, one JSON object per line with LOG_FORMAT=json.

Both formats put every piece of a record through `app.redaction.redact`: the message, each
`extra` value, the exception with its traceback and any stack. So no secret part of a URL gets
out, whichever code wrote the line: a delivery error quoting a webhook's answer, an SQL error
listing its parameters, an HTTP library's request line.

The text format also escapes control characters in what it prints (`\\n`, `\\x1b`,
`\\u2028`): a record is one line, and its traceback follows on lines of their own, each
indented, so nothing a record carries can pass for another record.
"""

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from app.redaction import redact

# Attributes every LogRecord has; anything else on a record came from `extra=` and is data.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn repeats its message with terminal colours
}

# Libraries that log full request URLs at INFO or DEBUG; they are kept to warnings and above.
_URL_LOGGING_LIBRARIES = ("httpx", "httpcore", "aiohttp", "hpack")

# What the text format never prints as it is: C0 and C1 controls, DEL, the Unicode line and
# paragraph separators, the bidirectional overrides and isolates (they reorder what a terminal
# shows) and lone surrogates (which no UTF-8 stream can write).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
TRACEBACK_INDENT = "    "
# Nested `extra` values deeper than this are logged as their text.
_MAX_DEPTH = 8


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id (if any) to every record, as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def escape_controls(text: str) -> str:
    """`text` with every character a log line must not hold shown as an escape (`\\n`)."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    """The escape shown for one unprintable character."""
    char = match.group()
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) <= 0xFF else f"\\u{ord(char):04x}"


def _extra_fields(record: logging.LogRecord) -> list[tuple[str, Any]]:
    """The record's fields given in `extra` (and by filters), in order."""
    return [
        (key, value)
        for key, value in record.__dict__.items()
        if key not in _STANDARD_ATTRS and not key.startswith("_")
    ]


def _message(record: logging.LogRecord) -> str:
    """The record's message; one whose arguments do not fit its format shows both instead
    (rather than failing, and having the logging module print them unredacted)."""
    try:
        return record.getMessage()
    except Exception:
        return f"{redact(record.msg)} {redact(record.args)}"


def _loggable(value: Any, depth: int = 0) -> Any:
    """`value` as JSON can hold it, with every text in it redacted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth < _MAX_DEPTH and isinstance(value, dict):
        return {redact(key): _loggable(item, depth + 1) for key, item in value.items()}
    if depth < _MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
        return [_loggable(item, depth + 1) for item in value]
    return redact(value)


class _RedactingFormatter(logging.Formatter):
    """What both formats share: the record's exception and stack as redacted text."""

    def exception_text(self, record: logging.LogRecord) -> str:
        """The exception with its traceback, redacted ("" when there is none)."""
        if record.exc_info:
            return redact(self.formatException(record.exc_info))
        return redact(record.exc_text) if record.exc_text else ""

    def stack_text(self, record: logging.LogRecord) -> str:
        """The stack the record was logged with (`stack_info=True`), redacted, or ""."""
        return redact(self.formatStack(record.stack_info)) if record.stack_info else ""


class JsonFormatter(_RedactingFormatter):
    """One JSON object per line: time, level, logger, event, the fields given in `extra`, and
    `exception` and `stack` when the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": redact(_message(record)),
        }
        for key, value in _extra_fields(record):
            entry[key] = _loggable(value)
        for key, text in (
            ("exception", self.exception_text(record)),
            ("stack", self.stack_text(record)),
        ):
            if text:
                entry[key] = text
        return json.dumps(entry, default=str)


class TextFormatter(_RedactingFormatter):
    """`time level logger: event key=value ...` with the fields given in `extra`, on one line;
    the exception's traceback and the stack follow on lines of their own, indented."""

    def format(self, record: logging.LogRecord) -> str:
        head = f"{self.formatTime(record)} {record.levelname} {record.name}: {_message(record)}"
        fields = [f"{key}={redact(value)}" for key, value in _extra_fields(record)]
        line = " ".join(escape_controls(part) for part in (redact(head), *fields))
        trace = "\n".join(t for t in (self.exception_text(record), self.stack_text(record)) if t)
        if not trace:
            return line
        indented = (TRACEBACK_INDENT + escape_controls(text) for text in trace.split("\n"))
        return "\n".join((line, *indented))


def configure_logging(level: str, fmt: str) -> None:
    """Send this service's logs (and uvicorn's) to stderr in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name in _URL_LOGGING_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
