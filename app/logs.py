"""Logging setup: readable text by default, one JSON object per line with LOG_FORMAT=json."""

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came from `extra=` and is data.
_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn repeats its message with terminal colours
}


# A Discord webhook URL's last segment is its secret token; whatever logs a URL, it goes out as ***.
_WEBHOOK_TOKEN = re.compile(r"(/api/(?:v\d+/)?webhooks/[^/\s\"']+/)[^\s?#\"'&]+")
# Libraries that log full request URLs at INFO or DEBUG; they are kept to warnings and above.
_URL_LOGGING_LIBRARIES = ("httpx", "httpcore", "aiohttp", "hpack")


request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id (if any) to every record, as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return True


def redact_secrets(line: str) -> str:
    """`line` with any webhook token replaced by ***."""
    return _WEBHOOK_TOKEN.sub(r"\1***", line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, and the fields given in `extra`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger: event key=value ...` with the fields given in `extra`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        ]
        return redact_secrets(f"{line} {' '.join(fields)}" if fields else line)


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
