"""The occurrence store's transactions (claims and records), directly against the database."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from app.db import create_db_engine, create_session_factory, transaction
from app.delivery.outcome import Outcome, OutcomeKind
from app.models import Occurrence, Task, TaskLog
from app.scheduling.attempts import Attempt, RetryPolicy, Step
from app.scheduling.store import _INSERT_LOGS, _RECORD_TASK, OccurrenceStore

LEASE = timedelta(seconds=30)
GRACE = timedelta(seconds=60)


def add_due_tasks(factory, count: int, due: datetime) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    with transaction(factory) as session:
        for i, task_id in enumerate(ids):
            session.add(
                Task(
                    id=task_id,
                    name=f"t{i}",
                    schedule="@every 1h",
                    timezone="UTC",
                    catchup="latest",
                    webhook_url="https://hooks.example.com/x",
                    payload={},
                    max_retry=3,
                    status="active",
                    next_run_at=due,
                    created_at=due - timedelta(hours=1),
                    updated_at=due,
                )
            )
    return ids


POLICY = RetryPolicy(backoff_base_seconds=1, backoff_max_seconds=10, max_rate_limit_wait_seconds=60)


def claim(factory, owner: str, limit: int = 1000):
    store = OccurrenceStore(factory)
    return store.claim(owner=owner, limit=limit, lease=LEASE, grace=GRACE).jobs


def test_concurrent_claimers_never_take_the_same_occurrence(database_url: str):
    engines = [create_db_engine(database_url) for _ in range(4)]
    factories = [create_session_factory(engine) for engine in engines]
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    ids = add_due_tasks(factories[0], 200, due)
    claimed: list = []
    lock = threading.Lock()

    def claimer(factory, name: str) -> None:
        while True:
            jobs = claim(factory, name, limit=7)
            if not jobs:
                return
            with lock:
                claimed.extend(jobs)

    threads = [threading.Thread(target=claimer, args=(f, f"c{i}")) for i, f in enumerate(factories)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()
    assert sorted(job.task_id for job in claimed) == sorted(ids)
    assert {job.scheduled_for for job in claimed} == {due}


def test_a_second_claim_of_the_same_occurrence_inserts_nothing(database_url: str):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    (task_id,) = add_due_tasks(factory, 1, due)
    (job,) = claim(factory, "first")
    # Put the task back as if its next_run_at had never moved (a clock step, a stale replica).
    with transaction(factory) as session:
        session.execute(update(Task).where(Task.id == task_id).values(next_run_at=due))
    assert claim(factory, "second") == []
    with transaction(factory) as session:
        rows = session.scalar(select(func.count()).select_from(Occurrence))
        owner = session.get(Occurrence, job.occurrence_id).lease_owner
    engine.dispose()
    assert rows == 1
    assert owner == "first"


def test_an_expired_lease_is_claimed_again_with_the_same_identity(database_url: str):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    add_due_tasks(factory, 1, datetime.now(UTC) - timedelta(seconds=1))
    (first,) = claim(factory, "dead")
    assert claim(factory, "alive") == []  # leased
    with transaction(factory) as session:
        session.execute(
            update(Occurrence).values(available_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    (second,) = claim(factory, "alive")
    engine.dispose()
    assert second.occurrence_id == first.occurrence_id
    assert second.scheduled_for == first.scheduled_for


def test_a_catch_up_burst_leases_only_what_was_asked_and_leaves_the_rest_available(
    database_url: str,
):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    (task_id,) = add_due_tasks(factory, 1, now - timedelta(hours=20))
    with transaction(factory) as session:
        session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(catchup="all", created_at=now - timedelta(hours=21))
        )
    first = claim(factory, "a", limit=4)
    with transaction(factory) as session:
        rows = session.scalars(select(Occurrence)).all()
    second = claim(factory, "b", limit=100)
    engine.dispose()
    assert len(rows) == 21  # twenty missed hours and the current one became occurrences...
    assert len(first) == 4  # ...but only as many as asked were leased
    assert {row.lease_owner for row in rows} == {"a", None}
    assert len(second) == 17  # the rest went to whoever had room
    assert not {job.occurrence_id for job in first} & {job.occurrence_id for job in second}


def test_waiting_occurrences_of_an_inactive_task_are_finished_not_claimed(database_url: str):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    add_due_tasks(factory, 1, datetime.now(UTC) - timedelta(seconds=1))
    (job,) = claim(factory, "holder")
    with transaction(factory) as session:
        # The task is paused while its occurrence is held, then the holder hands it back.
        session.execute(update(Task).values(status="inactive", next_run_at=None))
        session.execute(update(Occurrence).values(available_at=datetime.now(UTC), lease_owner=None))
    assert claim(factory, "other") == []
    with transaction(factory) as session:
        occurrence = session.get(Occurrence, job.occurrence_id)
        finished, available = occurrence.finished_at, occurrence.available_at
    engine.dispose()
    assert finished is not None
    assert available is None


def test_an_edit_made_while_in_flight_is_not_undone_by_the_outcome(database_url: str):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    due = datetime.now(UTC) - timedelta(seconds=1)
    (task_id,) = add_due_tasks(factory, 1, due)
    with transaction(factory) as session:
        session.execute(update(Task).values(schedule=None, run_at=due))
    (job,) = claim(factory, "me")
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    with transaction(factory) as session:  # the user reschedules the one-time task meanwhile
        session.execute(
            update(Task).values(run_at=tomorrow, next_run_at=tomorrow, updated_at=datetime.now(UTC))
        )
    outcome = Outcome(kind=OutcomeKind.SUCCESS, message="Delivered (HTTP 204)", http_status=204)
    attempt = Attempt(job=job, outcome=outcome, started_at=datetime.now(UTC))
    (decision,) = OccurrenceStore(factory).record([attempt], owner="me", policy=POLICY)
    with transaction(factory) as session:
        task = session.get(Task, task_id)
        status, next_run = task.status, task.next_run_at
    engine.dispose()
    assert decision.step is Step.DELIVERED
    assert status == "active"
    assert next_run == tomorrow


def one_claimed_job(factory, **task_values):
    (task_id,) = add_due_tasks(factory, 1, datetime.now(UTC) - timedelta(seconds=1))
    if task_values:
        with transaction(factory) as session:
            session.execute(update(Task).where(Task.id == task_id).values(**task_values))
    (job,) = claim(factory, "me")
    return job


def test_an_answer_that_cannot_be_stored_is_recorded_stripped_not_dropped(database_url: str):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    job = one_claimed_job(factory)
    # Built by hand, past the sender's scrubbing: no database can store a lone surrogate.
    outcome = Outcome(
        kind=OutcomeKind.SUCCESS,
        message="Delivered \ud800 (HTTP 200)",
        http_status=200,
        response_body="body \ud800",
    )
    attempt = Attempt(job=job, outcome=outcome, started_at=datetime.now(UTC))
    (decision,) = OccurrenceStore(factory).record([attempt], owner="me", policy=POLICY)
    with transaction(factory) as session:
        log = session.scalars(select(TaskLog)).one()
        occurrence = session.get(Occurrence, job.occurrence_id)
        message, body, finished = log.message, log.response_body, occurrence.finished_at
    engine.dispose()
    assert decision.step is Step.DELIVERED
    assert message == "Delivered ? (HTTP 200)"
    assert body is None
    assert finished is not None


def test_an_attempt_that_cannot_be_recorded_at_all_still_finishes_its_occurrence(
    database_url: str, monkeypatch
):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    bad, good = one_claimed_job(factory), one_claimed_job(factory)
    store = OccurrenceStore(factory)
    real = store._record

    def failing_for_bad(attempts, **kwargs):
        if any(a.job.occurrence_id == bad.occurrence_id for a in attempts):
            raise RuntimeError("any error at all")
        return real(attempts, **kwargs)

    monkeypatch.setattr(store, "_record", failing_for_bad)
    outcome = Outcome(kind=OutcomeKind.SUCCESS, message="Delivered (HTTP 204)", http_status=204)
    now = datetime.now(UTC)
    attempts = [Attempt(job=job, outcome=outcome, started_at=now) for job in (bad, good)]
    decisions = store.record(attempts, owner="me", policy=POLICY)
    with transaction(factory) as session:
        logged = set(session.scalars(select(TaskLog.task_id)))
        open_rows = session.scalars(select(Occurrence).where(Occurrence.finished_at.is_(None)))
        still_open = list(open_rows)
    engine.dispose()
    assert [d.step for d in decisions] == [Step.DROPPED, Step.DELIVERED]
    assert logged == {good.task_id}
    assert still_open == []  # neither can be claimed, so neither is sent again


def test_bulk_writes_read_back_as_the_orm_writes_them(database_url: str):
    """Rows written through the driver (the record's log INSERT, the task UPDATE) compare and
    read back exactly like rows the ORM wrote: the same instants, text and documents."""
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    due = datetime(1, 1, 1, 2, 0, 0, 1, tzinfo=UTC)  # year 0001, to the microsecond
    (task_id,) = add_due_tasks(factory, 1, due)
    odd = "lone \udcff? no: plain ünïcödé \U0001f600 and 'quotes' %s %(x)s ? ;--"
    odd = odd.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    later = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    targets = [{"status": "active", "note": odd}]
    with transaction(factory) as session:
        session.add(
            TaskLog(task_id=task_id, execution_time=due, scheduled_for=due, status="success")
        )
        _INSERT_LOGS.execute(
            session, [_log_values(task_id, due, odd), _log_values(task_id, later, None)]
        )
        _RECORD_TASK.execute(session, [_task_values(task_id, later, due, odd, targets)])
    with transaction(factory) as session:
        same_instant = session.scalar(
            select(func.count()).select_from(TaskLog).where(TaskLog.execution_time == due)
        )
        in_order = session.execute(
            select(TaskLog.execution_time, TaskLog.message).order_by(TaskLog.execution_time)
        ).all()
        task = session.get(Task, task_id)
        due_now = session.scalar(
            select(func.count()).select_from(Task).where(Task.next_run_at > due)
        )
    engine.dispose()
    assert same_instant == 2  # one from the ORM, one through the driver: equal instants
    assert sorted(in_order[:2], key=str) == sorted([(due, odd), (due, None)], key=str)
    assert in_order[2] == (later, None)
    assert (task.next_run_at, task.last_run_at, task.status_reason) == (later, due, odd)
    assert task.targets == targets
    assert (task.failures, task.status) == (2, "inactive")
    assert due_now == 1


def _log_values(task_id: uuid.UUID, at: datetime, message: str | None) -> dict:
    return {
        "id": uuid.uuid4(),
        "task_id": task_id,
        "execution_time": at,
        "scheduled_for": at,
        "status": "success",
        "retry_count": 0,
        "message": message,
        "http_status": 204,
        "duration_ms": 5,
        "response_body": message,
        "trigger": "schedule",
        "created_at": at,
        "target": 0,
    }


def _task_values(task_id: uuid.UUID, at: datetime, ran: datetime, reason: str, targets) -> dict:
    return {
        "id": task_id,
        "status": "inactive",
        "status_reason": reason,
        "next_run_at": at,
        "last_run_at": ran,
        "last_status": "success",
        "resume_at": None,
        "failures": 2,
        "failing_since": None,
        "status_changed_at": datetime(2026, 11, 30, tzinfo=UTC),
        "discord_message_id": None,
        "targets": targets,
        "not a column": "ignored",
    }


def test_a_bulk_update_naming_a_row_twice_leaves_the_last_values(database_url: str):
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    due = datetime.now(UTC)
    (task_id,) = add_due_tasks(factory, 1, due)
    first = _task_values(task_id, due, due, "first", None)
    last = _task_values(task_id, due + timedelta(hours=1), due, "last", [{"status": "active"}])
    with transaction(factory) as session:
        _RECORD_TASK.execute(session, [first, last])
    with transaction(factory) as session:
        task = session.get(Task, task_id)
    engine.dispose()
    assert (task.status_reason, task.next_run_at, task.targets) == (
        "last",
        due + timedelta(hours=1),
        [{"status": "active"}],
    )
