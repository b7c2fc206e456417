"""The Alembic migrations are the schema: they must produce exactly what the models describe."""

import logging
import subprocess
import sys
import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from app.db import create_db_engine
from app.migrations import alembic_config, upgrade_database
from app.models import Base, described_by_models
from app.scheduling.partitions import list_partitions
from harness import ROOT


def schema_differences(url: str) -> list:
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            partitions = {p.name for p in list_partitions(connection)}
            opts = {"compare_type": True, "include_object": _described(partitions)}
            context = MigrationContext.configure(connection, opts=opts)
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def _described(partitions: set[str]):
    """`described_by_models`, and the monthly partitions of task_logs (PostgreSQL) left out:
    they are the storage of the one table the TaskLog model describes, whose columns, indexes
    and foreign key are compared on the parent. Alembic does not compare primary keys; the
    partitioned key (id, execution_time) is checked in test_partitions.py."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        if type_ == "table" and reflected and compare_to is None and name in partitions:
            return False
        return described_by_models(obj, name, type_, reflected, compare_to)

    return include


def test_migrations_match_models(database_url: str):
    assert schema_differences(database_url) == []


def test_downgrade_and_upgrade_again(database_url: str):
    command.downgrade(alembic_config(database_url), "base")
    upgrade_database(database_url)
    assert schema_differences(database_url) == []


def test_upgrade_is_idempotent(database_url: str):
    upgrade_database(database_url)
    upgrade_database(database_url)
    assert schema_differences(database_url) == []


def test_replicas_starting_together_migrate_safely(database_url: str):
    """Four processes migrate an empty database at the same moment: all succeed."""
    command.downgrade(alembic_config(database_url), "base")
    code = "import sys; from app.migrations import upgrade_database; upgrade_database(sys.argv[1])"
    processes = [
        subprocess.Popen([sys.executable, "-c", code, database_url], cwd=ROOT) for _ in range(4)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0, 0]
    assert schema_differences(database_url) == []


def test_task_names_have_a_trigram_index_on_postgresql(database_url: str):
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            names = {index["name"] for index in inspect(connection).get_indexes("tasks")}
    finally:
        engine.dispose()
    expected = engine.dialect.name == "postgresql"
    assert ("ix_tasks_name_trgm" in names) is expected


@pytest.mark.postgresql
def test_without_pg_trgm_the_migration_warns_and_skips_the_index(
    postgres_url: str, caplog: pytest.LogCaptureFixture
):
    """A role that may not create extensions (no CREATE on the database): the schema is
    complete except for the trigram index, and the migration says why."""
    suffix = uuid.uuid4().hex[:10]
    database, role = f"test_noext_{suffix}", f"noext_{suffix}"
    server = make_url(postgres_url).set(query={})
    admin = create_db_engine(server.render_as_string(hide_password=False))
    autocommit = admin.execution_options(isolation_level="AUTOCOMMIT")
    with autocommit.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    fresh = server.set(database=database)
    fresh_admin = create_db_engine(fresh.render_as_string(hide_password=False))
    try:
        with fresh_admin.begin() as conn:
            conn.execute(text(f'GRANT USAGE, CREATE ON SCHEMA public TO "{role}"'))
        limited = fresh.set(username=role, password=None).render_as_string(hide_password=False)
        with caplog.at_level(logging.WARNING):
            upgrade_database(limited)
        assert "pg_trgm is not available (SQLSTATE 42501)" in caplog.text
        assert schema_differences(limited) == []
        engine = create_db_engine(limited)
        try:
            with engine.connect() as connection:
                names = {index["name"] for index in inspect(connection).get_indexes("tasks")}
        finally:
            engine.dispose()
        assert "ix_tasks_name_trgm" not in names
        assert "ix_tasks_next_run_at" in names
    finally:
        fresh_admin.dispose()
        with autocommit.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
