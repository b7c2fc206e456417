"""No secret part of a webhook URL reaches the logs, whatever happens to the webhook.

The service runs at DEBUG (so SQLAlchemy logs every statement with its parameters, and the HTTP
libraries their requests) and delivers to Discord-, Slack-, Teams- and Telegram-style URLs and
one with a password, all on the local receiver; some answer with errors that quote the URL back,
one cannot be reached at all, and two tasks are refused when saved. Everything the project's own
formatters print, text and JSON, is then searched for the secrets.
"""

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.config import Settings
from app.db import create_db_engine
from app.logs import TRACEBACK_INDENT, JsonFormatter, RequestIdFilter, TextFormatter
from harness.network import free_port
from harness.receiver import Answer, WebhookReceiver
from harness.waiting import wait_until
from tests.integration.conftest import start_client

# Distinctive strings, so that finding one in a log line can only mean a leak.
DISCORD_SECRET = "dsc0rdT0kenLEAK-9f2e7a"
DISCORD_FAILING_SECRET = "dsc0rdG0neLEAK-9f2e7a"
SLACK_SECRET = "sl4ckS3cretLEAK9f2e7a"
TEAMS_SIG = "t3amsS1gLEAK9f2e7a"
TELEGRAM_SECRET = "t3legramT0kenLEAK-9f2e7a"
PASSWORD = "p4sswordLEAK9f2e7a"
UNREACHABLE_SECRET = "unr3achableLEAK9f2e7a"
REFUSED_SECRET = "r3fusedLEAK9f2e7a"
DATABASE_SECRET = "d4tabaseLEAK9f2e7a"
SECRETS = [
    DISCORD_SECRET,
    DISCORD_FAILING_SECRET,
    SLACK_SECRET,
    TEAMS_SIG,
    TELEGRAM_SECRET,
    PASSWORD,
    UNREACHABLE_SECRET,
    REFUSED_SECRET,
    DATABASE_SECRET,
]
TELEGRAM_PATH = f"/bot123456:{TELEGRAM_SECRET}/sendMessage"
FORGED = "FORGED-LINE 2026-01-01 00:00:00,000 INFO app: all good"
# Libraries that log URLs; the service keeps them at WARNING, this test does not.
CHATTY_LOGGERS = ("httpx", "httpcore", "aiohttp", "hpack", "sqlalchemy")


class Capture(logging.Handler):
    """Keeps what a formatter prints for every record, and any error it raised."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(formatter)
        self.addFilter(RequestIdFilter())
        self.lines: list[str] = []
        self.errors: list[Exception] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception as exc:
            self.errors.append(exc)


@pytest.fixture
def captured() -> Iterator[tuple[Capture, Capture]]:
    """Text and JSON output of every record, the root logger and the chatty ones at DEBUG."""
    root = logging.getLogger()
    handlers = (Capture(TextFormatter()), Capture(JsonFormatter()))
    loggers = [root, *(logging.getLogger(name) for name in CHATTY_LOGGERS)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield handlers
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@pytest.fixture
def service_settings(scheduling_settings: Settings) -> Settings:
    """The receiver on 127.0.0.1 counts as Discord (for `/api/webhooks/` paths)."""
    return scheduling_settings.model_copy(update={"discord_extra_hosts": "127.0.0.1"})


def quoting(status: int, url: str) -> Answer:
    """An error answer that quotes the request's URL back, with a line break to forge a line."""
    return Answer(status, {"message": f"no such hook: {url}\n{FORGED}", "code": 10015})


def targets(receiver: WebhookReceiver) -> dict[str, str]:
    """The webhook URLs, by name, all on the receiver but the unreachable one."""
    base = f"http://127.0.0.1:{receiver.port}"
    return {
        "discord": f"{base}/api/webhooks/111/{DISCORD_SECRET}",
        "discord_gone": f"{base}/api/webhooks/222/{DISCORD_FAILING_SECRET}",
        "slack": f"{base}/services/T0LOGS/B0LOGS/{SLACK_SECRET}",
        "teams": f"{base}/workflows/a1/triggers/manual/paths/invoke?api-version=2016-06-01"
        f"&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={TEAMS_SIG}",
        "telegram": f"{base}{TELEGRAM_PATH}",
        "userinfo": f"http://hooks:{PASSWORD}@127.0.0.1:{receiver.port}/hooks/basic/user1",
        "unreachable": f"http://127.0.0.1:{free_port()}/api/webhooks/333/{UNREACHABLE_SECRET}",
    }


def script_answers(receiver: WebhookReceiver, urls: dict[str, str]) -> None:
    """Slack fails once then succeeds; Discord's second hook, Teams and Telegram fail for good;
    all of them quote what was asked (the receiver keys scripts by the third path segment)."""
    receiver.script("B0LOGS", quoting(500, urls["slack"]))
    receiver.script("222", quoting(404, urls["discord_gone"]))
    receiver.script("triggers", quoting(403, urls["teams"]))
    receiver.script("", quoting(401, TELEGRAM_PATH))


def create_soon(client: TestClient, name: str, url: str) -> str:
    """A one-time task due in 0.3 s, with one retry; its id."""
    body = {
        "name": name,
        "run_at": (datetime.now(UTC) + timedelta(seconds=0.3)).isoformat(),
        "webhook_url": url,
        "payload": {"content": f"hello {name}"},
        "max_retry": 1,
    }
    response = client.post("/tasks", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def refuse(client: TestClient, url: str) -> None:
    """A task whose URL is refused: 422, and the answer does not quote the secret either."""
    body = {"name": "refused", "schedule": "@every 1h", "webhook_url": url}
    response = client.post("/tasks", json=body)
    assert response.status_code == 422, response.text
    assert REFUSED_SECRET not in response.text


def wait_until_done(client: TestClient, task_ids: list[str]) -> None:
    """Until every one-time task has ended (inactive), whatever its outcome."""
    wait_until(
        lambda: all(client.get(f"/tasks/{i}").json()["status"] == "inactive" for i in task_ids),
        timeout=20,
        what="every task to end",
    )


def log_database_error(database_url: str, url: str) -> None:
    """A real driver's error with a webhook URL among its parameters, logged with its
    traceback as the service logs the unexpected (PostgreSQL also quotes the failing row)."""
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO tasks (id, webhook_url) VALUES (:id, :url)"),
                {"id": "0" * 32, "url": url},
            )
    except Exception:
        logging.getLogger("app").exception("saving a task failed")
    else:
        raise AssertionError("the insert was expected to fail")
    finally:
        engine.dispose()


def run_the_service(settings: Settings, receiver: WebhookReceiver) -> None:
    urls = targets(receiver)
    script_answers(receiver, urls)
    with start_client(settings) as client:
        task_ids = [create_soon(client, name, url) for name, url in urls.items()]
        refuse(client, f"ftp://127.0.0.1/api/webhooks/444/{REFUSED_SECRET}")
        refuse(client, f"http://127.0.0.1:99999/services/T1/B1/{REFUSED_SECRET}")
        wait_until_done(client, task_ids)
        log_database_error(settings.database_url, f"{urls['discord']}{DATABASE_SECRET}")
    # 6 reachable tasks, Slack twice: the receiver saw every request it was meant to.
    assert len(receiver.received()) == 7


def leaks(lines: list[str]) -> list[str]:
    """The lines that hold a secret."""
    return [line for line in lines if any(secret in line for secret in SECRETS)]


def check_redacted(text_log: Capture, json_log: Capture, port: int) -> None:
    """No secret anywhere, though the URLs did reach the logs, redacted."""
    assert text_log.errors == json_log.errors == []
    assert leaks(text_log.lines) == []
    assert leaks(json_log.lines) == []
    # SQL parameters, answers quoting the URL, the database error: all printed, redacted.
    everything = "\n".join(text_log.lines)
    assert "/api/webhooks/222/***" in everything
    assert "/services/***" in everything
    assert "&sig=***" in everything
    assert "/bot123456:***/sendMessage" in everything
    assert f"hooks:***@127.0.0.1:{port}" in everything
    assert "no such hook: http://127.0.0.1" in everything
    assert "saving a task failed" in everything
    assert "IntegrityError" in everything


def check_attempt_events(json_log: Capture) -> None:
    """Every attempt names its task and host, and nothing more of the URL."""
    attempts = [
        entry
        for entry in map(json.loads, json_log.lines)
        if entry["logger"] == "app.scheduling.recorder"
    ]
    assert len(attempts) >= 9  # 7 tasks; Slack and the unreachable one twice
    assert {entry["host"] for entry in attempts} == {"127.0.0.1"}
    assert all(entry["task_id"] for entry in attempts)
    assert any(FORGED in entry["event"] for entry in attempts)


def check_one_line_per_record(text_log: Capture) -> None:
    """A webhook's answer with a line break in it forges no line of the text log."""
    for record in text_log.lines:
        first, *rest = record.split("\n")
        assert first[:4].isdigit(), first  # a record starts with its time
        assert all(line.startswith(TRACEBACK_INDENT) for line in rest), rest
    assert any(f"\\n{FORGED}" in record for record in text_log.lines)


def test_no_url_secret_reaches_the_logs(captured, service_settings, receiver):
    text_log, json_log = captured
    run_the_service(service_settings, receiver)
    check_redacted(text_log, json_log, receiver.port)
    check_attempt_events(json_log)
    check_one_line_per_record(text_log)
