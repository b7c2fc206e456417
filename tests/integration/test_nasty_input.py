"""Nasty input on every route with a body or a query, on SQLite and PostgreSQL: each case is
answered 4xx (never 500), a 422 names exactly the wrong field once, and nothing half-written
stays in the database."""

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

PLAIN_URL = "https://hooks.example.com/notify"
TASK = {"name": "Nightly", "schedule": "@daily", "webhook_url": PLAIN_URL, "payload": {"a": 1}}
LONG_VALID_CRON = ",".join(map(str, range(60))) + " " + ",".join(map(str, range(24))) + " * * *"


def nested(depth: int) -> dict:
    """A payload `depth` objects deep."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def raw(document: Any) -> str:
    """JSON text with every non-ASCII character escaped, so lone surrogates survive as `\\ud800`
    escapes (an HTTP client would refuse to encode them)."""
    return json.dumps(document, ensure_ascii=True)


def crafted_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


OVERFLOW = "0001-01-01T00:00:00+14:00"
OVERFLOW_LATE = "9999-12-31T23:59:59-14:00"
CURSOR_ID = "5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10"

# (id, method, path, JSON body as text or None, query, expected status, field named or None)
CASES = [
    # tasks: datetimes that overflow when converted
    ("run_at-year-1", "POST", "/tasks", raw(TASK | {"schedule": None, "run_at": OVERFLOW}),
     None, 422, "run_at"),
    ("run_at-naive-year-9999", "POST", "/tasks",
     raw(TASK | {"schedule": None, "run_at": "9999-12-31T23:00", "timezone": "Etc/GMT+12"}),
     None, 422, "run_at"),
    ("run_at-year-9999-shown-in-tz", "POST", "/tasks",
     raw(TASK | {"schedule": None, "run_at": "9999-12-31T23:00Z", "timezone": "Pacific/Kiritimati"}),  # noqa: E501
     None, 422, "run_at"),
    # tasks: payloads
    ("payload-900-deep", "POST", "/tasks", raw(TASK | {"payload": nested(900)}), None, 422, None),
    ("payload-33-deep", "POST", "/tasks", raw(TASK | {"payload": nested(33)}), None, 422, "payload"),  # noqa: E501
    ("payload-nul-string", "POST", "/tasks", raw(TASK | {"payload": {"c": "a\x00b"}}),
     None, 422, "payload"),
    ("payload-nul-key", "POST", "/tasks", raw(TASK | {"payload": {"\x00": 1}}), None, 422, "payload"),  # noqa: E501
    ("payload-surrogate", "POST", "/tasks", raw(TASK | {"payload": {"c": ["\ud800"]}}),
     None, 422, "payload"),
    ("payload-nan", "POST", "/tasks", '{"name": "n", "schedule": "@daily", "webhook_url": "'
     + PLAIN_URL + '", "payload": {"x": NaN}}', None, 422, "payload"),
    ("payload-over-max-payload-bytes", "POST", "/tasks",
     raw(TASK | {"payload": {"c": "x" * 70_000}}), None, 422, "payload"),
    ("payload-a-list", "POST", "/tasks", raw(TASK | {"payload": [1, 2]}), None, 422, "payload"),
    ("body-over-max-request-bytes", "POST", "/tasks",
     raw(TASK | {"payload": {"c": "x" * 2_000_000}}), None, 413, None),
    # tasks: strings
    ("name-surrogate", "POST", "/tasks", raw(TASK | {"name": "a\ud800"}), None, 422, "name"),
    ("name-nul", "POST", "/tasks", raw(TASK | {"name": "a\x00b"}), None, 422, "name"),
    ("name-too-long", "POST", "/tasks", raw(TASK | {"name": "n" * 201}), None, 422, "name"),
    ("url-nul", "POST", "/tasks", raw(TASK | {"webhook_url": PLAIN_URL + "\x00"}),
     None, 422, "webhook_url"),
    ("timezone-nul", "POST", "/tasks", raw(TASK | {"timezone": "UTC\x00"}), None, 422, "timezone"),
    ("cron-over-200", "POST", "/tasks", raw(TASK | {"schedule": LONG_VALID_CRON}),
     None, 422, "schedule"),
    # tasks: integers, unknown fields, wrong shapes
    ("max_retry-huge", "POST", "/tasks", raw(TASK | {"max_retry": 10**30}), None, 422, "max_retry"),
    ("unknown-field", "POST", "/tasks", raw(TASK | {"max_retries": 10}), None, 422, "max_retries"),
    ("unknown-case", "POST", "/tasks", raw(TASK | {"Status": "inactive"}), None, 422, "Status"),
    ("body-a-list", "POST", "/tasks", "[]", None, 422, None),
    ("body-null", "POST", "/tasks", "null", None, 422, None),
    # updates
    ("patch-unknown", "PATCH", "/tasks/{task}", raw({"nmae": "x"}), None, 422, "nmae"),
    ("patch-timezone", "PATCH", "/tasks/{task}", raw({"timezone": "Mars/Olympus"}),
     None, 422, "timezone"),
    ("patch-run_at-overflow", "PATCH", "/tasks/{task}", raw({"run_at": OVERFLOW}),
     None, 422, "run_at"),
    ("put-deep-payload", "PUT", "/tasks/{task}", raw({"payload": nested(40)}), None, 422, "payload"),  # noqa: E501
    ("put-surrogate-name", "PUT", "/tasks/{task}", raw({"name": "\udfff"}), None, 422, "name"),
    # task lists
    ("search-nul", "GET", "/tasks", None, {"search": "a\x00b"}, 422, "search"),
    ("cursor-overflow", "GET", "/tasks", None,
     {"cursor": crafted_cursor(f"{OVERFLOW}|{CURSOR_ID}")}, 422, "cursor"),
    ("cursor-garbage", "GET", "/tasks", None, {"cursor": "%%%"}, 422, "cursor"),
    ("status-unknown", "GET", "/tasks", None, {"status": "paused"}, 422, "status"),
    ("skip-huge", "GET", "/tasks", None, {"skip": 10**30}, 422, "skip"),
    ("next-runs-count-huge", "GET", "/tasks/{task}/next-runs", None, {"count": 10**30},
     422, "count"),
    ("scheduler-run-nan", "POST", "/scheduler/run", None, {"max_seconds": "nan"},
     422, "max_seconds"),
    # task logs
    ("log-execution_time-overflow", "POST", "/task-logs",
     raw({"task_id": "{task}", "status": "success", "execution_time": OVERFLOW}),
     None, 422, "execution_time"),
    ("log-retry_count-huge", "POST", "/task-logs",
     raw({"task_id": "{task}", "status": "success", "retry_count": 10**30}),
     None, 422, "retry_count"),
    ("log-duration-huge", "POST", "/task-logs",
     raw({"task_id": "{task}", "status": "success", "duration_ms": 10**12}),
     None, 422, "duration_ms"),
    ("log-message-nul", "POST", "/task-logs",
     raw({"task_id": "{task}", "status": "success", "message": "a\x00"}), None, 422, "message"),
    ("log-body-surrogate", "POST", "/task-logs",
     raw({"task_id": "{task}", "status": "success", "response_body": "\ud800"}),
     None, 422, "response_body"),
    ("log-unknown", "POST", "/task-logs",
     raw({"task_id": "{task}", "status": "success", "statuss": "x"}), None, 422, "statuss"),
    ("log-put-unknown", "PUT", "/task-logs/{log}", raw({"colour": "red"}), None, 422, "colour"),
    ("log-put-overflow", "PUT", "/task-logs/{log}", raw({"scheduled_for": OVERFLOW_LATE}),
     None, 422, "scheduled_for"),
    ("logs-since-overflow", "GET", "/task-logs", None, {"since": OVERFLOW}, 422, "since"),
    ("logs-until-overflow", "GET", "/task-logs", None, {"until": OVERFLOW_LATE}, 422, "until"),
    ("logs-task_id-garbage", "GET", "/task-logs", None, {"task_id": "x\x00"}, 422, "task_id"),
    ("task-logs-since-overflow", "GET", "/task-logs/task/{task}", None, {"since": OVERFLOW},
     422, "since"),
    ("task-logs-cursor-overflow", "GET", "/task-logs/task/{task}", None,
     {"cursor": crafted_cursor(f"{OVERFLOW}|{CURSOR_ID}")}, 422, "cursor"),
]  # fmt: skip


@pytest.fixture
def existing(client: TestClient) -> dict[str, str]:
    """A task and a log row for the routes that need one."""
    task = client.post("/tasks", json=TASK)
    assert task.status_code == 201
    log = client.post("/task-logs", json={"task_id": task.json()["id"], "status": "success"})
    assert log.status_code == 201
    return {"task": task.json()["id"], "log": log.json()["id"]}


def counts(client: TestClient) -> tuple[int, int]:
    return client.get("/tasks").json()["total"], client.get("/task-logs").json()["total"]


@pytest.mark.parametrize(
    ("method", "path", "body", "query", "status", "field"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_nasty_input_is_refused_by_name(
    client: TestClient, existing, method, path, body, query, status, field
):
    before = counts(client)
    content = None if body is None else body.replace("{task}", existing["task"]).encode()
    response = client.request(
        method,
        path.format(**existing),
        content=content,
        params=query,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if field is not None:
        assert [error["loc"] for error in detail] == [[_where(path, query), field]]
        assert "input" not in detail[0]
        assert not detail[0]["msg"].startswith("Value error")
    assert counts(client) == before  # nothing half-written
    assert client.get(f"/tasks/{existing['task']}").json()["name"] == TASK["name"]


def _where(path: str, query: dict | None) -> str:
    return "query" if query else "body"


def test_read_only_fields_of_a_get_are_accepted_back(client: TestClient):
    task = client.post("/tasks", json=TASK).json()
    back = task | {"logs": [], "name": "Renamed"}
    response = client.put(f"/tasks/{task['id']}", json=back)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "Renamed"
    assert response.json()["id"] == task["id"]
    created = client.post("/tasks", json=task | {"name": "Copy"})
    assert created.status_code == 201
    assert created.json()["id"] != task["id"]  # the id sent back is ignored, not reused
    log = client.post("/task-logs", json={"task_id": task["id"], "status": "success"}).json()
    assert client.put(f"/task-logs/{log['id']}", json=log).status_code == 200


def test_search_with_a_colon_word_is_counted(client: TestClient):
    for n in range(3):
        client.post("/tasks", json=TASK | {"name": f"deploy :rocket {n}"})
    page = client.get("/tasks", params={"search": "deploy :rocket", "limit": 1, "skip": 1})
    assert page.status_code == 200, page.text
    assert page.json()["total"] == 3


def test_a_chunked_body_over_the_limit_is_413(client: TestClient):
    def chunks():
        yield b'{"name": "big", "payload": {"c": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}}'

    response = client.post("/tasks", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "MAX_REQUEST_BYTES" in response.json()["detail"]
