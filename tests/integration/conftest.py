"""Fixtures for tests that drive the service over its HTTP API."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import create_db_engine, create_session_factory
from app.main import create_app
from harness.receiver import WebhookReceiver
from tests.conftest import TEST_TOKEN


def before_resume(task: dict) -> str:
    """A deactivated task's reason without the health ladder's note (which must be there)."""
    reason, separator, _ = task["status_reason"].partition("; trying again at ")
    assert separator, f"no resume time in {task['status_reason']!r}"
    return reason


def start_client(settings: Settings) -> TestClient:
    client = TestClient(create_app(settings))
    client.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    return client


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client for a running app (lifespan included) that sends the API token."""
    with start_client(settings) as test_client:
        yield test_client


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A Discord-like webhook receiver on 127.0.0.1."""
    with WebhookReceiver() as running:
        yield running


# The scheduler on, fast retries and short leases, the receiver on 127.0.0.1 allowed.
SCHEDULING = {
    "scheduler_enabled": True,
    "allow_private_webhook_targets": True,
    "retry_backoff_base_seconds": 0.2,
    "retry_backoff_max_seconds": 2.0,
    "delivery_timeout_seconds": 2.0,
    "scheduler_lease_seconds": 4.0,
    "misfire_grace_seconds": 2.0,
    "shutdown_grace_seconds": 1.0,
}


@pytest.fixture
def scheduling_settings(settings: Settings) -> Settings:
    """Settings with the scheduler on, fast retries and short leases, private targets allowed."""
    return settings.model_copy(update=SCHEDULING)


@pytest.fixture
def service(scheduling_settings: Settings) -> Iterator[TestClient]:
    """A running app with its scheduler."""
    with start_client(scheduling_settings) as test_client:
        yield test_client


@pytest.fixture
def db(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the test database, to look at (or arrange) rows directly."""
    engine = create_db_engine(settings.database_url)
    yield create_session_factory(engine)
    engine.dispose()
