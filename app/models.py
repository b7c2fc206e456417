"""SQLAlchemy models. The schema itself lives in Alembic migrations; a test checks they agree."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    false,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC and always returns aware UTC datetimes, also on SQLite (which keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware one is required")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# For optional documents: Python's None is SQL NULL (not the JSON value null).
OptionalJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Indexes that migrations create on PostgreSQL only and the models do not describe (the pg_trgm
# index of task names, migration 0004); comparisons of schema and models leave them out.
DATABASE_ONLY_INDEXES = frozenset({"ix_tasks_name_trgm", "ix_tasks_tags"})


# The monthly partitions of task_logs on PostgreSQL (migration 0008): storage of the one table
# the TaskLog model describes, not tables of their own.
LOG_PARTITION_PREFIX = "task_logs_"


def described_by_models(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's `include_object` hook: False for the indexes in DATABASE_ONLY_INDEXES and for
    the log table's partitions as the database shows them."""
    if type_ == "table" and reflected and compare_to is None:
        return not (name or "").startswith(LOG_PARTITION_PREFIX)
    return not (type_ == "index" and name in DATABASE_ONLY_INDEXES)


class Task(Base):
    """A scheduled webhook: what to send, where, and when."""

    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    schedule: Mapped[str | None] = mapped_column(String(200))
    run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    catchup: Mapped[str] = mapped_column(String(16), default="latest")
    webhook_url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    max_retry: Mapped[int] = mapped_column(Integer, default=3)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # Set by the API on each change (not by the scheduler), so it also tells "edited since".
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    # When the status last changed, whoever changed it (the API or the service itself).
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The health ladder: a task deactivated by transient failures is probed at `resume_at`.
    auto_resume: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    resume_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Templates and Discord's message modes.
    template: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    discord_mode: Mapped[str] = mapped_column(String(16), default="post", server_default="post")
    delete_after_seconds: Mapped[int | None] = mapped_column(Integer)
    discord_message_id: Mapped[str | None] = mapped_column(String(32))
    runs: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Standard Webhooks signatures: the task's secret, and the one it replaced (valid a day).
    signing_secret: Mapped[str | None] = mapped_column(String(128))
    previous_signing_secret: Mapped[str | None] = mapped_column(String(128))
    signing_rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Schedules people have (all empty for a task that uses none of them).
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    max_runs: Mapped[int | None] = mapped_column(Integer)
    schedules: Mapped[list[str] | None] = mapped_column(OptionalJSON)
    exclude: Mapped[list[str] | None] = mapped_column(OptionalJSON)
    quiet_hours: Mapped[dict[str, str] | None] = mapped_column(OptionalJSON)
    # Fan-out: every webhook (the first is also `webhook_url`) and each one's own state.
    webhook_urls: Mapped[list[str] | None] = mapped_column(OptionalJSON)
    targets: Mapped[list[dict[str, Any]] | None] = mapped_column(OptionalJSON)
    tags: Mapped[list[str] | None] = mapped_column(OptionalJSON)

    __table_args__ = (Index("ix_tasks_created_at_id", "created_at", "id"),)

    @property
    def signed(self) -> bool:
        """Whether the task has a signing secret of its own (it is never shown again)."""
        return self.signing_secret is not None


class TaskLog(Base):
    """One delivery attempt of a task (or a row written by hand through the API).

    On PostgreSQL the table is partitioned by month of `execution_time` (migration 0008,
    app.scheduling.partitions), and PostgreSQL requires its primary key to hold the partition
    column: there it is (id, execution_time). The ORM still identifies a row by `id` alone, a
    random UUID, which is the whole key on SQLite."""

    __tablename__ = "task_logs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    execution_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    retry_count: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    target: Mapped[int | None] = mapped_column(Integer)  # which of the task's webhooks

    __table_args__ = (
        Index("ix_task_logs_task_id_execution_time_id", "task_id", "execution_time", "id"),
        Index("ix_task_logs_execution_time_id", "execution_time", "id"),
        Index("ix_task_logs_status_execution_time_id", "status", "execution_time", "id"),
    )


class Occurrence(Base):
    """One firing of a task: claimed once, attempted until it succeeds or gives up.

    `(task_id, target, scheduled_for)` is unique, so the same occurrence of one of the task's
    webhooks can never be claimed twice.
    `available_at` is when a scheduler may next take it: its due time, the time of its next
    retry, or, while a scheduler holds it, the end of that scheduler's lease (so work held by a
    process that died becomes available again). It is NULL once the occurrence is finished.
    """

    __tablename__ = "occurrences"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    trigger: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    rate_limit_wait_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    run_number: Mapped[int | None] = mapped_column(Integer)  # the task's n-th occurrence
    message_id: Mapped[str | None] = mapped_column(String(32))  # what a deletion deletes
    target: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # which webhook
    fire_kind: Mapped[str | None] = mapped_column(String(16))  # silent or deferred (quiet hours)

    __table_args__ = (UniqueConstraint("task_id", "target", "scheduled_for"),)


class ApiKey(Base):
    """A key for the API with its scopes; the key itself is kept only as its SHA-256."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSONDocument)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ServiceSecret(Base):
    """Secrets the service generated for itself, shared by every replica (the API token)."""

    __tablename__ = "service_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
