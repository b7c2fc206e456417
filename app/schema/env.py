"""Alembic environment: migrates the database named by the caller or by DATABASE_URL.

On PostgreSQL the migration runs under a transaction-level advisory lock, so replicas that start
at the same moment migrate one after the other; the later ones find the schema current.
"""

import logging.config

from alembic import context
from sqlalchemy import Connection, text

from app.config import get_settings
from app.db import create_db_engine
from app.models import Base, described_by_models

# An arbitrary constant that names "schema migration" among advisory locks.
MIGRATION_LOCK_ID = 724_310_551

config = context.config
if config.config_file_name and not config.attributes.get("skip_logging_config"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        include_object=described_by_models,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().sqlalchemy_url
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            run_on(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
