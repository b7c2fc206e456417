"""task_logs partitioned by month on PostgreSQL: the layout, the conversion migration (0008),
partitions made ahead and dropped by retention, and the plans of the API's log queries."""

import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, event, inspect, text
from sqlalchemy.engine import make_url

from app.db import create_db_engine, create_session_factory, transaction
from app.migrations import alembic_config
from app.models import Task, TaskLog
from app.scheduling import partitions
from app.scheduling.partitions import (
    add_months,
    drop_partitions_before,
    ensure_partitions,
    is_partitioned,
    list_partitions,
    month_start,
    partition_name,
)
from app.scheduling.store import OccurrenceStore
from app.services.task_logs import LogFilters, list_logs

INSERT_TASK = text(
    """
    INSERT INTO tasks (id, name, schedule, timezone, catchup, webhook_url, payload, max_retry,
                       status, created_at, updated_at)
    SELECT gen_random_uuid(), 'task ' || g, '@every 1h', 'UTC', 'latest',
           'https://hooks.example.com/' || g, '{}', 3, 'active', now(), now()
    FROM generate_series(1, :n) AS g
    """
)
INSERT_LOG = text(
    """
    INSERT INTO task_logs (id, task_id, execution_time, status, retry_count, trigger, created_at)
    VALUES (gen_random_uuid(), (SELECT id FROM tasks LIMIT 1), :at, 'success', 0, 'schedule', now())
    """
)
ROWS = text(
    "SELECT id, task_id, execution_time, scheduled_for, status, retry_count, message, "
    "http_status, duration_ms, response_body, trigger, created_at FROM task_logs ORDER BY id"
)
SEQUENCES = text(
    "SELECT count(*) FROM information_schema.sequences WHERE sequence_schema = current_schema()"
)
INDEX_SCANS = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan"})


@contextlib.contextmanager
def fresh_schema(postgres_url: str, revision: str = "head") -> Iterator[str]:
    """A URL to a schema of its own on the test server, migrated to `revision`."""
    server = make_url(postgres_url).set(query={})
    schema = f"test_part_{uuid.uuid4().hex[:10]}"
    admin = create_db_engine(server.render_as_string(hide_password=False))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = server.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        url_text = url.render_as_string(hide_password=False)
        command.upgrade(alembic_config(url_text), revision)
        yield url_text
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def engine_for(url: str) -> Iterator[Engine]:
    engine = create_db_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def database_now(conn: Connection) -> datetime:
    return conn.execute(text("SELECT now()")).scalar_one().astimezone(UTC)


def months_of(conn: Connection) -> set[datetime]:
    return {p.start for p in list_partitions(conn) if p.start is not None}


def where_rows_are(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        text("SELECT tableoid::regclass::text, count(*) FROM task_logs GROUP BY 1")
    ).all()
    return dict(rows)  # type: ignore[arg-type]


# -- the layout ----------------------------------------------------------------------------------


def test_layout_after_upgrade_to_head(database_url: str):
    """PostgreSQL: a partitioned table keyed by (id, execution_time), with a default partition
    and the months from the current one to three ahead. SQLite: one table keyed by id, and the
    partition functions do nothing."""
    with engine_for(database_url) as engine, engine.begin() as conn:
        key = inspect(conn).get_pk_constraint("task_logs")["constrained_columns"]
        if conn.dialect.name == "sqlite":
            assert key == ["id"]
            assert not is_partitioned(conn)
            assert list_partitions(conn) == []
            now = datetime.now(UTC)
            assert ensure_partitions(conn, now) == []
            assert drop_partitions_before(conn, now) == []
            return
        assert key == ["id", "execution_time"]
        partitioned = conn.execute(
            text(
                "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'task_logs'::regclass"
            )
        ).scalar()
        assert partitioned == 1
        current = month_start(database_now(conn))
        assert {add_months(current, n) for n in range(4)} <= months_of(conn)
        assert partitions.DEFAULT_NAME in {p.name for p in list_partitions(conn)}
        assert ensure_partitions(conn, database_now(conn)) == []  # all there already


def test_month_arithmetic():
    moment = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert month_start(moment) == datetime(2026, 11, 1, tzinfo=UTC)
    assert add_months(month_start(moment), 2) == datetime(2027, 1, 1, tzinfo=UTC)
    assert add_months(datetime(2027, 1, 1, tzinfo=UTC), -13) == datetime(2025, 12, 1, tzinfo=UTC)
    # A moment given in another offset belongs to its UTC month.
    east = datetime(2026, 12, 1, 3, 30, tzinfo=timezone(timedelta(hours=5)))
    assert month_start(east) == datetime(2026, 11, 1, tzinfo=UTC)
    assert partition_name(datetime(2026, 3, 1, tzinfo=UTC)) == "task_logs_2026_03"


# -- the conversion ------------------------------------------------------------------------------


def _spread_logs(conn: Connection, now: datetime) -> list[datetime]:
    """One task; a log every 5 days over the last 200 days, one far in the past (beyond the
    migration's history) and one far ahead; the times written."""
    conn.execute(INSERT_TASK, {"n": 1})
    times = [now - timedelta(days=5 * k, hours=1) for k in range(41)]
    times += [now - timedelta(days=365 * 7), now + timedelta(days=200)]
    for at in times:
        conn.execute(INSERT_LOG, {"at": at})
    return times


@pytest.mark.postgresql
def test_conversion_keeps_every_row_and_converts_back(postgres_url: str):
    with fresh_schema(postgres_url, "0007") as url, engine_for(url) as engine:
        with engine.begin() as conn:
            now = database_now(conn)
            times = _spread_logs(conn, now)
            before = conn.execute(ROWS).all()
            assert not is_partitioned(conn)
            assert conn.execute(SEQUENCES).scalar() == 0
        command.upgrade(alembic_config(url), "0008")
        with engine.begin() as conn:
            assert is_partitioned(conn)
            assert conn.execute(ROWS).all() == before
            # The months holding rows (not the one 7 years back), this one and 3 ahead.
            current = month_start(now)
            expected = {month_start(t) for t in times if now - timedelta(days=300) < t < now}
            expected |= {add_months(current, n) for n in range(4)}
            assert months_of(conn) == expected
            # The two rows outside every month: in the default partition.
            assert where_rows_are(conn)[partitions.DEFAULT_NAME] == 2
            pk = inspect(conn).get_pk_constraint("task_logs")
            assert pk["constrained_columns"] == ["id", "execution_time"]
            # ids are UUIDs the application makes: no sequence to carry over, before or after.
            assert conn.execute(SEQUENCES).scalar() == 0
        command.upgrade(alembic_config(url), "head")  # the model describes the latest schema
        _write_and_read_through_the_orm(url)
        with engine.connect() as conn:
            converted = conn.execute(ROWS).all()
        assert len(converted) == len(before) + 1
        command.downgrade(alembic_config(url), "0007")
        with engine.begin() as conn:
            kind = conn.execute(
                text("SELECT relkind FROM pg_class WHERE oid = 'task_logs'::regclass")
            )
            assert kind.scalar() == "r"
            assert inspect(conn).get_pk_constraint("task_logs")["constrained_columns"] == ["id"]
            assert conn.execute(ROWS).all() == converted
            assert not [name for name in inspect(conn).get_table_names() if "task_logs_" in name]


def _write_and_read_through_the_orm(url: str) -> None:
    """The model (keyed by id) inserts, finds, updates (across months) and deletes rows."""
    with engine_for(url) as engine:
        factory = create_session_factory(engine)
        with transaction(factory) as session:
            task = session.query(Task).first()
            assert task is not None
            log = TaskLog(task_id=task.id, status="success")
            session.add(log)
            session.flush()
            log_id = log.id
        with transaction(factory) as session:
            found = session.get(TaskLog, log_id)
            assert found is not None
            found.execution_time = found.execution_time - timedelta(days=62)  # another month
        with transaction(factory) as session:
            moved = session.get(TaskLog, log_id)
            assert moved is not None and moved.execution_time < datetime.now(UTC) - timedelta(
                days=60
            )
            extra = TaskLog(task_id=task.id, status="failed")
            session.add(extra)
            session.flush()
            session.delete(extra)


# -- partitions made ahead -----------------------------------------------------------------------


@pytest.mark.postgresql
def test_replicas_making_partitions_at_once_make_each_once(postgres_url: str):
    with fresh_schema(postgres_url) as url, engine_for(url) as engine:
        with engine.connect() as conn:
            start = add_months(month_start(database_now(conn)), 12)
        barrier = threading.Barrier(4)
        results: list[Any] = []

        def replica() -> None:
            with engine.begin() as conn:
                barrier.wait()
                results.append(ensure_partitions(conn, start, months_ahead=3))

        threads = [threading.Thread(target=replica) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        made = sorted(name for names in results for name in names)
        assert len(results) == 4
        assert made == [partition_name(add_months(start, n)) for n in range(4)]
        with engine.connect() as conn:
            assert {add_months(start, n) for n in range(4)} <= months_of(conn)


@pytest.mark.postgresql
def test_rows_waiting_in_the_default_partition_move_into_their_new_month(postgres_url: str):
    with fresh_schema(postgres_url) as url, engine_for(url) as engine:
        with engine.begin() as conn:
            conn.execute(INSERT_TASK, {"n": 1})
            later = add_months(month_start(database_now(conn)), 6)
            conn.execute(INSERT_LOG, {"at": later + timedelta(days=3)})
            conn.execute(INSERT_LOG, {"at": later + timedelta(days=40)})  # the month after
            assert where_rows_are(conn) == {partitions.DEFAULT_NAME: 2}
        with engine.begin() as conn:
            assert ensure_partitions(conn, later, months_ahead=0) == [partition_name(later)]
        with engine.begin() as conn:
            assert where_rows_are(conn) == {partition_name(later): 1, partitions.DEFAULT_NAME: 1}
            assert len(conn.execute(ROWS).all()) == 2


@pytest.mark.postgresql
def test_a_busy_table_makes_partition_work_wait_for_the_next_call(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
):
    """A long query holds task_logs: dropping a partition (which locks the table) gives up
    after LOCK_WAIT instead of queueing every other query behind it, and the caller's
    transaction carries on with its own lock timeout."""
    monkeypatch.setattr(partitions, "LOCK_WAIT", "200ms")
    with fresh_schema(postgres_url) as url, engine_for(url) as engine:
        with engine.connect() as conn:
            current = month_start(database_now(conn))
        with engine.begin() as reader:
            reader.execute(text("SELECT count(*) FROM task_logs"))  # holds ACCESS SHARE
            with engine.begin() as conn:
                assert drop_partitions_before(conn, add_months(current, 1)) == []
                setting = conn.execute(text("SHOW lock_timeout")).scalar()
                assert setting == "0"
        with engine.begin() as conn:
            assert drop_partitions_before(conn, add_months(current, 1)) == [partition_name(current)]


# -- retention -----------------------------------------------------------------------------------


@pytest.mark.postgresql
def test_retention_drops_old_months_then_deletes_the_rows_left_past_the_cutoff(postgres_url: str):
    retention = timedelta(days=45, hours=12)
    with fresh_schema(postgres_url) as url, engine_for(url) as engine:
        with engine.begin() as conn:
            now = database_now(conn)
            ensure_partitions(conn, add_months(month_start(now), -6), months_ahead=9)
            conn.execute(INSERT_TASK, {"n": 1})
            times = [now - timedelta(days=3 * k) for k in range(61)]  # 180 days back
            times.append(now - timedelta(days=400))  # before every month: the default partition
            for at in times:
                conn.execute(INSERT_LOG, {"at": at})
        cutoff = now - retention
        with engine.begin() as conn:
            dropped = drop_partitions_before(conn, cutoff)
        expected = {p for p in range(-6, 1) if add_months(month_start(now), p + 1) <= cutoff}
        assert sorted(dropped) == sorted(
            partition_name(add_months(month_start(now), p)) for p in expected
        )
        leftover = [t for t in times if t < cutoff and t >= month_start(cutoff)]
        deleted = _prune_in_batches(url, retention)
        assert deleted == len(leftover) + 1  # + the default partition's old row
        with engine.connect() as conn:
            kept = sorted(row.execution_time for row in conn.execute(ROWS))
            assert kept == sorted(t for t in times if t >= cutoff)
            assert month_start(cutoff) in months_of(conn)
            assert all(p.end is None or p.end > cutoff for p in list_partitions(conn))


def test_the_store_keeps_months_ahead_and_drops_the_expired(database_url: str):
    """What the scheduler's maintenance calls: on PostgreSQL, months made ahead and whole old
    months dropped; on SQLite, nothing to do."""
    with engine_for(database_url) as engine:
        store = OccurrenceStore(create_session_factory(engine))
        if engine.dialect.name != "postgresql":
            assert store.maintain_log_partitions(retention=timedelta(days=1)) == ([], [])
            return
        with engine.begin() as conn:
            now = database_now(conn)
            old = add_months(month_start(now), -3)
            ensure_partitions(conn, old, months_ahead=0)
            conn.execute(text(f"DROP TABLE {partition_name(add_months(month_start(now), 2))}"))
        created, dropped = store.maintain_log_partitions(retention=timedelta(days=40))
        assert partition_name(add_months(month_start(now), 2)) in created
        assert partition_name(old) in dropped
        assert store.maintain_log_partitions(retention=None) == ([], [])


def _prune_in_batches(url: str, retention: timedelta) -> int:
    """The store's batched delete, two rows at a time, as the maintenance routine runs it."""
    with engine_for(url) as engine:
        store = OccurrenceStore(create_session_factory(engine))
        deleted = 0
        while (batch := store.prune_logs(retention=retention, limit=2)) > 0:
            deleted += batch
        return deleted


# -- the API's queries ---------------------------------------------------------------------------


def _fill_for_plans(conn: Connection, now: datetime) -> None:
    """400 tasks with 500 logs each over the last 125 days (one in 50 failed), in monthly
    partitions made for them; then ANALYZE, as autovacuum would."""
    ensure_partitions(conn, add_months(month_start(now), -5), months_ahead=8)
    conn.execute(INSERT_TASK, {"n": 400})
    conn.execute(
        text(
            """
            INSERT INTO task_logs (id, task_id, execution_time, scheduled_for, status,
                                   retry_count, message, http_status, duration_ms, trigger,
                                   created_at)
            SELECT gen_random_uuid(), t.id,
                   :now - (g * 6 * 3600 + (hashtext(t.id::text) & 21599)) * interval '1 second',
                   :now - g * interval '6 hours',
                   CASE WHEN g % 50 = 0 THEN 'failed' ELSE 'success' END, 0,
                   'Delivered (HTTP 204)', 204, 35, 'schedule', :now
            FROM tasks t CROSS JOIN generate_series(1, 500) AS g
            """
        ),
        {"now": now},
    )
    conn.execute(text("ANALYZE task_logs"))


def _statements_of(engine: Engine, filters: LogFilters) -> list[tuple[str, Any]]:
    """The SELECTs on task_logs that the service's list_logs sends for these filters."""
    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if "FROM task_logs" in statement and not statement.startswith("EXPLAIN"):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with transaction(create_session_factory(engine)) as session:
            page, _, _ = list_logs(session, filters=filters, skip=0, limit=100)
            assert len(page) == 100
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def _scans(plan: dict, partitions: set[str]) -> list[tuple[str, str]]:
    """(node type, partition read) of every scan node in a JSON plan; an index scan's partition
    is told by its relation's name or by its index's (named after the partition)."""
    found = []
    if "Scan" in plan["Node Type"]:
        name = plan.get("Relation Name") or plan["Index Name"]
        read = next(p for p in partitions if name == p or name.startswith(f"{p}_"))
        found.append((plan["Node Type"], read))
    for child in plan.get("Plans", []):
        found += _scans(child, partitions)
    return found


def _explain(engine: Engine, statement: str, parameters: Any) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar()
        names = {p.name for p in list_partitions(conn)}
    return _scans(plan[0]["Plan"], names)


@pytest.mark.postgresql
def test_the_api_log_queries_use_indexes_and_prune_by_time(postgres_url: str):
    """With 200,000 rows analyzed, the page and count queries of GET /task-logs by task, by
    status and by time read every partition that holds rows through an index (a sequential scan
    only of an empty partition, which reads nothing); by time, only the window's month."""
    with fresh_schema(postgres_url) as url, engine_for(url) as engine:
        with engine.begin() as conn:
            now = database_now(conn)
            _fill_for_plans(conn, now)
            task_id = conn.execute(text("SELECT id FROM tasks ORDER BY name LIMIT 1")).scalar()
            holding = set(where_rows_are(conn))
        since, until = now - timedelta(days=20, hours=6), now - timedelta(days=20)
        window = {partition_name(month_start(since)), partition_name(month_start(until))}
        cases = {
            "task": (LogFilters(task_id=task_id), holding),
            "status": (LogFilters(status="failed"), holding),
            "time": (LogFilters(since=since, until=until), window),
        }
        for case, (filters, expected) in cases.items():
            statements = _statements_of(engine, filters)
            assert len(statements) == 2, case  # the page, and its bounded count
            for statement, parameters in statements:
                scans = _explain(engine, statement, parameters)
                by_index = {read for kind, read in scans if kind in INDEX_SCANS}
                sequential = {read for kind, read in scans if kind == "Seq Scan"}
                assert expected <= by_index, (case, scans)
                assert not sequential & holding, (case, scans)
                if case == "time":
                    assert {read for _, read in scans} == window, scans
