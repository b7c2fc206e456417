"""Fixtures for tests that drive the service over its HTTP API."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import TEST_TOKEN


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client for a running app (lifespan included) that sends the API token."""
    with TestClient(create_app(settings)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
        yield test_client
