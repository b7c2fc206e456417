"""The /task-logs API over ASGI, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_tasks_api import create, error_fields

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def add_log(client: TestClient, task_id: str, **overrides) -> dict:
    body = {"task_id": task_id, "status": "success", "http_status": 204}
    body.update(overrides)
    response = client.post("/task-logs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_and_read_log(client: TestClient):
    task = create(client)
    log = add_log(
        client,
        task["id"],
        execution_time="2026-05-01T14:00:00+02:00",
        message="Delivered (HTTP 204)",
        duration_ms=42,
        response_body="",
    )
    assert log["task_id"] == task["id"]
    assert log["execution_time"] in ("2026-05-01T12:00:00Z", "2026-05-01T12:00:00+00:00")
    assert log["retry_count"] == 0
    assert log["trigger"] == "manual"
    assert client.get(f"/task-logs/{log['id']}").json() == log


def test_log_for_unknown_task_is_404(client: TestClient):
    response = client.post(
        "/task-logs",
        json={"task_id": "00000000-0000-0000-0000-000000000000", "status": "success"},
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}


def test_logs_are_newest_first_then_by_id(client: TestClient):
    task = create(client)
    times = [T0 + timedelta(minutes=m) for m in (5, 1, 3)]
    logs = [add_log(client, task["id"], execution_time=t.isoformat()) for t in times]
    same_time = [add_log(client, task["id"], execution_time=T0.isoformat()) for _ in range(3)]
    listing = client.get("/task-logs").json()
    assert listing["total"] == 6
    expected = [logs[0]["id"], logs[2]["id"], logs[1]["id"]]
    expected += sorted((log["id"] for log in same_time), reverse=True)
    assert [log["id"] for log in listing["task_logs"]] == expected


def test_filters_and_paging(client: TestClient):
    first, second = create(client, name="a"), create(client, name="b")
    for minute in range(4):
        add_log(client, first["id"], execution_time=(T0 + timedelta(minutes=minute)).isoformat())
    add_log(client, first["id"], status="failed", http_status=500, execution_time=T0.isoformat())
    add_log(client, second["id"], execution_time=T0.isoformat())

    by_task = client.get("/task-logs", params={"task_id": first["id"]}).json()
    assert by_task["total"] == 5
    assert {log["task_id"] for log in by_task["task_logs"]} == {first["id"]}

    failed = client.get("/task-logs", params={"status": "failed"}).json()
    assert [log["http_status"] for log in failed["task_logs"]] == [500]

    window = {"since": (T0 + timedelta(minutes=1)).isoformat(), "until": "2026-05-01T12:02:00Z"}
    in_window = client.get("/task-logs", params=window).json()
    assert in_window["total"] == 2

    page = client.get("/task-logs", params={"task_id": first["id"], "skip": 1, "limit": 2}).json()
    assert (page["total"], page["skip"], page["limit"]) == (5, 1, 2)
    assert [log["execution_time"][11:16] for log in page["task_logs"]] == ["12:02", "12:01"]


def test_logs_of_one_task(client: TestClient):
    first, second = create(client, name="a"), create(client, name="b")
    add_log(client, first["id"])
    add_log(client, first["id"], status="failed")
    add_log(client, second["id"])
    listing = client.get(f"/task-logs/task/{first['id']}").json()
    assert listing["total"] == 2
    only_failed = client.get(f"/task-logs/task/{first['id']}/", params={"status": "failed"})
    assert only_failed.json()["total"] == 1
    missing = client.get("/task-logs/task/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


def test_update_and_delete_log(client: TestClient):
    task = create(client)
    log = add_log(client, task["id"])
    updated = client.put(f"/task-logs/{log['id']}", json={"status": "failed", "message": "late"})
    assert updated.status_code == 200
    assert (updated.json()["status"], updated.json()["message"]) == ("failed", "late")
    assert "status" in error_fields(client.put(f"/task-logs/{log['id']}", json={"status": None}))
    deleted = client.delete(f"/task-logs/{log['id']}")
    assert deleted.json() == {"message": "Task log deleted successfully"}
    assert client.get(f"/task-logs/{log['id']}").status_code == 404


def test_deleting_a_task_deletes_its_logs(client: TestClient):
    task = create(client)
    log = add_log(client, task["id"])
    client.delete(f"/tasks/{task['id']}")
    assert client.get(f"/task-logs/{log['id']}").status_code == 404
    assert client.get("/task-logs").json()["total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "ok"}, "status"),
        ({"status": "success", "retry_count": -1}, "retry_count"),
        ({"status": "success", "http_status": 99}, "http_status"),
        ({"status": "success", "trigger": "cron"}, "trigger"),
        ({"status": "success", "execution_time": "yesterday"}, "execution_time"),
        ({"status": "success", "response_body": "x" * 1025}, "response_body"),
        ({"status": "success", "task_id": "not-a-uuid"}, "task_id"),
    ],
)
def test_bad_log_input_is_422(client: TestClient, body: dict, field: str):
    task = create(client)
    assert field in error_fields(client.post("/task-logs", json={"task_id": task["id"], **body}))


@pytest.mark.parametrize(
    "params", [{"task_id": "nope"}, {"status": "ok"}, {"since": "soon"}, {"skip": -5}]
)
def test_bad_log_query_is_422(client: TestClient, params: dict):
    assert set(error_fields(client.get("/task-logs", params=params))) == set(params)


def test_cursor_paging_walks_every_log_once_in_order(client: TestClient):
    task = create(client)
    for minute in range(7):
        add_log(client, task["id"], execution_time=(T0 + timedelta(minutes=minute % 3)).isoformat())
    everything = [log["id"] for log in client.get("/task-logs").json()["task_logs"]]
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/task-logs/task/{task['id']}", params=params).json()
        assert page["total"] == 7
        seen += [log["id"] for log in page["task_logs"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_a_bad_cursor_is_422(client: TestClient):
    assert "cursor" in error_fields(client.get("/task-logs", params={"cursor": "garbage!"}))
    assert "cursor" in error_fields(client.get("/tasks", params={"cursor": "Zm9v"}))


def test_a_far_larger_planner_estimate_is_taken_without_counting(
    client: TestClient, monkeypatch, database_url: str
):
    from app.services import pages

    monkeypatch.setattr(pages, "_planner_estimate", lambda session, query: 1_000_000)
    task = create(client)
    for _ in range(5):
        add_log(client, task["id"])
    full_page = client.get("/task-logs", params={"limit": 2}).json()
    assert len(full_page["task_logs"]) == 2
    if database_url.startswith("postgresql"):
        assert (full_page["total"], full_page["total_is_estimate"]) == (1_000_000, True)
    else:  # SQLite has no planner estimate to ask: the count is exact
        assert (full_page["total"], full_page["total_is_estimate"]) == (5, False)
    # A first page that is not full holds every match: its length is the total, exactly.
    everything = client.get("/task-logs").json()
    assert (everything["total"], everything["total_is_estimate"]) == (5, False)


def test_a_large_total_is_an_estimate(client: TestClient, monkeypatch, database_url: str):
    from app.services import pages

    monkeypatch.setattr(pages, "EXACT_COUNT_LIMIT", 3)
    task = create(client)
    for _ in range(5):
        add_log(client, task["id"])
    listing = client.get("/task-logs", params={"limit": 5}).json()
    assert listing["total_is_estimate"] is True
    assert len(listing["task_logs"]) == 5
    assert listing["total"] >= 3
    small = client.get("/task-logs", params={"status": "failed"}).json()
    assert (small["total"], small["total_is_estimate"]) == (0, False)
    # Every filter can be estimated (the estimate renders the filters into SQL).
    params = {
        "task_id": task["id"],
        "status": "success",
        "since": "2000-01-01T00:00:00Z",
        "limit": 5,
    }
    filtered = client.get("/task-logs", params=params).json()
    assert filtered["total_is_estimate"] is True
    assert len(filtered["task_logs"]) == 5
