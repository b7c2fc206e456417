"""log_attempt: one event per attempt, at its outcome's level, with the webhook's host only."""

import logging
from dataclasses import replace

import pytest

from app.delivery.outcome import Outcome, OutcomeKind
from app.scheduling.attempts import Attempt, Step
from app.scheduling.recorder import log_attempt
from tests.unit.test_attempts import NOW, job

CASES = [
    (OutcomeKind.SUCCESS, "", logging.INFO, "delivery succeeded"),
    (OutcomeKind.TRANSIENT_FAILURE, "HTTP 500 from webhook", logging.WARNING, "delivery failed: "),
    (OutcomeKind.PERMANENT_FAILURE, "HTTP 404", logging.WARNING, "delivery failed: "),
    (OutcomeKind.DEFERRED, "paced", logging.DEBUG, "delivery deferred: "),
]


def attempt(kind: OutcomeKind, message: str) -> Attempt:
    delivery = replace(job(), webhook_url="https://discord.com/api/webhooks/1/secret-token")
    outcome = Outcome(kind=kind, message=message, http_status=204)
    return Attempt(job=delivery, outcome=outcome, started_at=NOW)


@pytest.mark.parametrize(("kind", "message", "level", "starts"), CASES)
def test_each_outcome_is_logged_at_its_level(caplog, kind, message, level, starts):
    caplog.set_level(logging.DEBUG, logger="app.scheduling.recorder")
    log_attempt(attempt(kind, message), Step.RETRY_SCHEDULED)
    (record,) = caplog.records
    assert record.levelno == level
    assert record.getMessage() == starts + message
    assert record.host == "discord.com"
    assert "secret-token" not in record.getMessage() + str(vars(record))


@pytest.mark.parametrize(("kind", "message", "level", "starts"), CASES)
def test_nothing_is_built_below_the_logged_level(caplog, kind, message, level, starts):
    caplog.set_level(level + 10, logger="app.scheduling.recorder")
    log_attempt(attempt(kind, message), Step.RETRY_SCHEDULED)
    assert caplog.records == []
