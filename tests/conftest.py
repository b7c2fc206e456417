"""Shared fixtures: the same tests run on SQLite and on PostgreSQL.

PostgreSQL tests run when TEST_DATABASE_URL names a server (as .ci/run does); each test session
works in a schema of its own, so runs never see each other's rows, and tables are emptied before
every test. With REQUIRE_POSTGRES=1 an unreachable server fails the run instead of skipping, and a
run in which no PostgreSQL test passed fails too.
"""

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from app.config import Settings, normalize_database_url
from app.db import create_db_engine
from app.migrations import upgrade_database
from app.models import Base

TEST_TOKEN = "test-token-0123456789abcdef"
PG_URL = os.environ.get("TEST_DATABASE_URL")
REQUIRE_POSTGRES = os.environ.get("REQUIRE_POSTGRES") == "1"
_postgres_passed = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _postgres_passed
    if report.when == "call" and report.passed and "postgresql" in report.keywords:
        _postgres_passed += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_POSTGRES and exitstatus == 0 and _postgres_passed == 0:
        print("\nREQUIRE_POSTGRES=1 but no PostgreSQL test passed")
        session.exitstatus = 1


def pytest_report_header() -> str:
    return f"PostgreSQL tests: {'on' if PG_URL else 'off (set TEST_DATABASE_URL)'}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (cheaper than migrating every time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh, migrated schema of the test server."""
    if not PG_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("REQUIRE_POSTGRES=1 but TEST_DATABASE_URL is not set")
        pytest.skip("TEST_DATABASE_URL is not set")
    base = normalize_database_url(PG_URL)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        admin.dispose()
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at TEST_DATABASE_URL is unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    try:
        upgrade_database(url_text)
        yield url_text
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _empty_tables(engine: Engine) -> None:
    """Delete every row, children first. DELETE, not TRUNCATE: a test leaves few rows, and
    TRUNCATE of the partitioned task_logs (a dozen partitions) costs about 45 ms a test."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated database: a fresh SQLite file, or the emptied PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = create_db_engine(url)
    try:
        _empty_tables(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for a test service: its own database, a known token, no .env file."""
    return Settings(
        _env_file=None,
        database_url=database_url,
        api_token=TEST_TOKEN,
        scheduler_enabled=False,
        allow_private_webhook_targets=False,
        # No test reaches discord.com; the save-time check is tested against the receiver.
        verify_discord_webhooks=False,
    )
