"""The /tasks API over ASGI, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

DISCORD_URL = "https://discord.com/api/webhooks/123456789/secret-token-value"
PLAIN_URL = "https://hooks.example.com/notify"


def new_task(**overrides):
    body = {
        "name": "Stand-up",
        "schedule": "0 9 * * MON-FRI",
        "webhook_url": DISCORD_URL,
        "payload": {"content": "Stand-up!"},
    }
    body.update(overrides)
    return body


def create(client: TestClient, **overrides) -> dict:
    response = client.post("/tasks", json=new_task(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value} has no offset"
    return parsed


def test_create_returns_task_with_defaults_and_next_run(client: TestClient):
    task = create(client)
    assert task["name"] == "Stand-up"
    assert task["status"] == "active"
    assert task["timezone"] == "UTC"
    assert task["catchup"] == "latest"
    assert task["max_retry"] == 3
    assert task["status_reason"] is None
    next_run = parse_instant(task["next_run_at"])
    assert next_run > datetime.now(UTC)
    assert (next_run.hour, next_run.minute) == (9, 0)
    assert next_run.weekday() < 5
    for field in ("created_at", "updated_at"):
        parse_instant(task[field])
    assert "logs" not in task


def test_get_update_delete_round_trip(client: TestClient):
    task = create(client)
    url = f"/tasks/{task['id']}"
    assert client.get(url).json() == task

    updated = client.put(url, json={"name": "Renamed", "max_retry": 5})
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Renamed"
    assert updated.json()["max_retry"] == 5
    assert updated.json()["schedule"] == task["schedule"]
    assert client.get(url).json()["name"] == "Renamed"

    patched = client.patch(url, json={"payload": {"content": "Changed"}})
    assert patched.json()["payload"] == {"content": "Changed"}

    deleted = client.delete(url)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Task deleted successfully"}
    assert client.get(url).status_code == 404


def test_timezone_moves_next_run(client: TestClient):
    task = create(client, schedule="30 8 * * *", timezone="Asia/Kolkata")
    next_run = parse_instant(task["next_run_at"])
    # 08:30 in Kolkata (+05:30, no DST) is 03:00 UTC.
    assert (next_run.astimezone(UTC).hour, next_run.astimezone(UTC).minute) == (3, 0)


def test_one_time_task_without_offset_reads_its_timezone(client: TestClient):
    year = datetime.now(UTC).year + 1
    task = create(client, schedule=None, run_at=f"{year}-01-15T10:00:00", timezone="Europe/Paris")
    assert task["schedule"] is None
    assert parse_instant(task["run_at"]) == datetime(year, 1, 15, 9, 0, tzinfo=UTC)
    assert parse_instant(task["next_run_at"]) == datetime(year, 1, 15, 9, 0, tzinfo=UTC)


def test_switching_between_recurring_and_one_time(client: TestClient):
    task = create(client)
    run_at = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    one_time = client.put(f"/tasks/{task['id']}", json={"run_at": run_at.isoformat()}).json()
    assert one_time["schedule"] is None
    assert parse_instant(one_time["next_run_at"]) == run_at
    recurring = client.put(f"/tasks/{task['id']}", json={"schedule": "@every 5m"}).json()
    assert recurring["run_at"] is None
    assert recurring["schedule"] == "@every 5m"


def test_status_inactive_clears_next_run_and_active_restores_it(client: TestClient):
    task = create(client)
    paused = client.put(f"/tasks/{task['id']}", json={"status": "inactive"}).json()
    assert paused["next_run_at"] is None
    assert paused["status_reason"]
    resumed = client.put(f"/tasks/{task['id']}", json={"status": "active"}).json()
    assert resumed["next_run_at"] == task["next_run_at"]
    assert resumed["status_reason"] is None


def test_list_is_newest_first_with_total_and_paging(client: TestClient):
    ids = [create(client, name=f"task {i}")["id"] for i in range(5)]
    page = client.get("/tasks", params={"skip": 1, "limit": 2}).json()
    assert page["total"] == 5
    assert (page["skip"], page["limit"]) == (1, 2)
    assert [t["id"] for t in page["tasks"]] == [ids[3], ids[2]]
    everything = client.get("/tasks").json()
    assert [t["id"] for t in everything["tasks"]] == ids[::-1]
    assert everything["limit"] == 100


def test_list_filters_by_status_and_search(client: TestClient):
    create(client, name="Daily REPORT")
    create(client, name="weekly report", status="inactive")
    create(client, name="100% done")
    create(client, name="other")
    active = client.get("/tasks", params={"status": "active"}).json()
    assert {t["name"] for t in active["tasks"]} == {"Daily REPORT", "100% done", "other"}
    found = client.get("/tasks", params={"search": "report"}).json()
    assert found["total"] == 2
    assert {t["name"] for t in found["tasks"]} == {"Daily REPORT", "weekly report"}
    both = client.get("/tasks", params={"search": "Report", "status": "inactive"}).json()
    assert [t["name"] for t in both["tasks"]] == ["weekly report"]
    # % is a literal character, not a wildcard.
    literal = client.get("/tasks", params={"search": "%"}).json()
    assert [t["name"] for t in literal["tasks"]] == ["100% done"]


def test_trailing_slash_works_without_redirect(client: TestClient):
    task = create(client)
    listing = client.get("/tasks/", follow_redirects=False)
    assert listing.status_code == 200
    assert listing.json()["total"] == 1
    one = client.get(f"/tasks/{task['id']}/", follow_redirects=False)
    assert one.status_code == 200
    created = client.post("/tasks/", json=new_task(), follow_redirects=False)
    assert created.status_code == 201


@pytest.mark.parametrize("path", ["/tasks/00000000-0000-0000-0000-000000000000", "/tasks/nope"])
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_unknown_task_is_404(client: TestClient, method: str, path: str):
    kwargs = {"json": {"name": "x"}} if method == "put" else {}
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 404
    assert response.json() == {"detail": "Task not found"}


def error_fields(response) -> list[str]:
    assert response.status_code == 422, response.text
    return [str(error["loc"][-1]) for error in response.json()["detail"]]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"schedule": "61 * * * *"}, "schedule"),
        ({"schedule": "every day"}, "schedule"),
        ({"schedule": "@every 0s"}, "schedule"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"webhook_url": "ftp://example.com/hook"}, "webhook_url"),
        ({"webhook_url": "not a url"}, "webhook_url"),
        ({"webhook_url": "http://127.0.0.1:9000/hook"}, "webhook_url"),
        ({"webhook_url": "http://169.254.169.254/latest"}, "webhook_url"),
        ({"webhook_url": "https://a..b.example.com/hook"}, "webhook_url"),
        ({"webhook_url": "https://xn--zz.com/hook"}, "webhook_url"),
        ({"status": "paused"}, "status"),
        ({"max_retry": 21}, "max_retry"),
        ({"max_retry": -1}, "max_retry"),
        ({"payload": ["not", "an", "object"]}, "payload"),
        ({"payload": "text"}, "payload"),
        ({"catchup": "sometimes"}, "catchup"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"schedule": None}, "schedule"),
        ({"run_at": "2030-01-01T00:00:00Z"}, "run_at"),
        ({"run_at": "tomorrow", "schedule": None}, "run_at"),
        ({"payload": {"content": "x" * 2001}}, "payload"),
        ({"payload": {"embeds": [{"title": "t" * 257}]}}, "payload"),
        ({"payload": {}}, "payload"),
    ],
)
def test_bad_task_input_is_422_naming_the_field(client: TestClient, overrides: dict, field: str):
    assert field in error_fields(client.post("/tasks", json=new_task(**overrides)))


def test_non_discord_webhook_accepts_any_json_object(client: TestClient):
    task = create(client, webhook_url=PLAIN_URL, payload={"anything": [1, 2, {"x": None}]})
    assert task["payload"] == {"anything": [1, 2, {"x": None}]}


def test_discord_limit_message_names_the_part(client: TestClient):
    response = client.post("/tasks", json=new_task(payload={"content": "x" * 2001}))
    assert "content" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    "field", ["name", "timezone", "catchup", "webhook_url", "payload", "max_retry", "status"]
)
def test_explicit_null_on_required_field_is_422(client: TestClient, field: str):
    task = create(client)
    assert field in error_fields(client.put(f"/tasks/{task['id']}", json={field: None}))
    assert client.get(f"/tasks/{task['id']}").json() == task


def test_update_is_validated_against_the_merged_task(client: TestClient):
    task = create(client, webhook_url=PLAIN_URL, payload={})
    # Moving an empty payload onto a Discord webhook breaks Discord's "something to send" rule.
    response = client.put(f"/tasks/{task['id']}", json={"webhook_url": DISCORD_URL})
    assert "payload" in error_fields(response)
    clearing = client.put(f"/tasks/{task['id']}", json={"schedule": None})
    assert "schedule" in error_fields(clearing)


def test_a_body_that_is_not_text_is_422(client: TestClient):
    response = client.post(
        "/tasks", content=b"\xff\xfe{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_malformed_json_is_422(client: TestClient):
    response = client.post(
        "/tasks", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "params",
    [
        {"skip": -1},
        {"skip": 10**30},
        {"limit": 0},
        {"limit": 1001},
        {"status": "paused"},
        {"limit": "many"},
    ],
)
def test_bad_list_query_is_422(client: TestClient, params: dict):
    assert set(error_fields(client.get("/tasks", params=params))) <= set(params)


def test_cursor_paging_over_tasks(client: TestClient):
    ids = [create(client, name=f"t{i}")["id"] for i in range(5)]
    first = client.get("/tasks", params={"limit": 2}).json()
    second = client.get("/tasks", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = client.get("/tasks", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    walked = [t["id"] for page in (first, second, third) for t in page["tasks"]]
    assert walked == ids[::-1]
    assert third["next_cursor"] is None


def test_null_payload_on_create_is_an_empty_payload(client: TestClient):
    # The Insignia frontend sends `payload: null` when its payload box is empty.
    task = create(client, webhook_url=PLAIN_URL, payload=None)
    assert task["payload"] == {}
    assert client.get(f"/tasks/{task['id']}").json()["payload"] == {}


def test_null_payload_on_update_clears_it(client: TestClient):
    task = create(client, webhook_url=PLAIN_URL, payload={"text": "hello"})
    whole_form = {**task, "payload": None}
    updated = client.put(f"/tasks/{task['id']}", json=whole_form)
    assert updated.status_code == 200, updated.text
    assert updated.json()["payload"] == {}
    assert client.get(f"/tasks/{task['id']}").json()["payload"] == {}


def test_null_payload_for_discord_still_needs_something_to_send(client: TestClient):
    response = client.post("/tasks", json=new_task(payload=None))
    assert error_fields(response) == ["payload"]
    task = create(client)
    assert error_fields(client.patch(f"/tasks/{task['id']}", json={"payload": None})) == ["payload"]
    assert client.get(f"/tasks/{task['id']}").json() == task
