"""API keys with scopes (SPEC §11), on SQLite and PostgreSQL: a table of scope x route family,
expiry, revocation, hidden webhook secrets for read-only keys, hashed storage."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.models import ApiKey
from app.services.api_keys import hash_key
from harness.waiting import wait_until

SECRET = "s3cr3t-webhook-token-value"
TASK = {
    "name": "Nightly",
    "schedule": "@daily",
    "webhook_url": f"https://discord.com/api/webhooks/123/{SECRET}",
    "payload": {"content": "hi"},
}


def new_key(client: TestClient, *scopes: str, **fields) -> str:
    response = client.post("/api-keys", json={"name": "k", "scopes": list(scopes)} | fields)
    assert response.status_code == 201, response.text
    assert response.json()["key"].startswith("isk_")
    return response.json()["key"]


def as_key(client: TestClient, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# (method, path, scope needed); {task} and {log} are filled in.
ROUTES = [
    ("GET", "/tasks", "tasks:read"),
    ("GET", "/tasks/{task}", "tasks:read"),
    ("GET", "/tasks/{task}/next-runs", "tasks:read"),
    ("POST", "/tasks", "tasks:write"),
    ("PATCH", "/tasks/{task}", "tasks:write"),
    ("POST", "/tasks/{task}/execute", "tasks:write"),
    ("POST", "/tasks/{task}/pause", "tasks:write"),
    ("POST", "/tasks/{task}/preview", "tasks:write"),
    ("GET", "/task-logs", "logs:read"),
    ("GET", "/task-logs/{log}", "logs:read"),
    ("GET", "/task-logs/task/{task}", "logs:read"),
    ("POST", "/task-logs", "logs:write"),
    ("PATCH", "/task-logs/{log}", "logs:write"),
    ("GET", "/api-keys", "admin"),
    ("POST", "/scheduler/run", "admin"),
]
BODIES = {
    ("POST", "/tasks"): TASK,
    ("PATCH", "/tasks/{task}"): {"name": "renamed"},
    ("POST", "/task-logs"): {"task_id": "{task}", "status": "success"},
    ("PATCH", "/task-logs/{log}"): {"message": "edited"},
}
SCOPES = ["tasks:read", "tasks:write", "logs:read", "logs:write", "admin"]


@pytest.fixture
def world(client: TestClient) -> dict[str, str]:
    task = client.post("/tasks", json=TASK).json()
    log = client.post("/task-logs", json={"task_id": task["id"], "status": "success"}).json()
    return {"task": task["id"], "log": log["id"]}


@pytest.mark.parametrize("scope", SCOPES)
def test_each_scope_opens_exactly_its_routes(client: TestClient, world, scope: str):
    key = new_key(client, scope)
    for method, path, needed in ROUTES:
        body = BODIES.get((method, path))
        if body and "task_id" in body:
            body = body | {"task_id": world["task"]}
        response = client.request(
            method, path.format(**world), json=body, headers=as_key(client, key)
        )
        allowed = scope == needed or scope == "admin"
        if allowed:
            assert response.status_code < 400, (scope, method, path, response.text)
        else:
            assert response.status_code == 403, (scope, method, path, response.text)
            assert response.json() == {"detail": f"this key lacks the scope {needed}"}
    assert client.get("/health", headers=as_key(client, key)).status_code == 200


def test_a_read_only_key_sees_webhook_urls_without_their_secret(client: TestClient, world):
    reader = as_key(client, new_key(client, "tasks:read"))
    one = client.get(f"/tasks/{world['task']}", headers=reader).json()
    listed = client.get("/tasks", headers=reader).json()["tasks"][0]
    for seen in (one, listed):
        assert SECRET not in seen["webhook_url"]
        assert seen["webhook_url"] == "https://discord.com/api/webhooks/123/***"
    writer = as_key(client, new_key(client, "tasks:read", "tasks:write"))
    assert SECRET in client.get(f"/tasks/{world['task']}", headers=writer).json()["webhook_url"]


def test_expired_and_revoked_keys_are_401(client: TestClient, db):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    expiring = new_key(client, "tasks:read", expires_at=soon.isoformat())
    assert client.get("/tasks", headers=as_key(client, expiring)).status_code == 200
    wait_until(
        lambda: client.get("/tasks", headers=as_key(client, expiring)).status_code == 401,
        timeout=5,
        what="the key to expire",
    )
    revoked = new_key(client, "admin")
    key_id = client.get("/api-keys").json()["api_keys"][0]["id"]
    assert client.delete(f"/api-keys/{key_id}").json()["revoked_at"] is not None
    response = client.get("/tasks", headers=as_key(client, revoked))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_keys_are_stored_hashed_and_never_shown_again(client: TestClient, db):
    key = new_key(client, "logs:read")
    listed = client.get("/api-keys").text
    assert key not in listed
    with db() as session:
        rows = session.scalars(select(ApiKey)).all()
        stored = [(row.key_hash, row.name) for row in rows]
    assert stored == [(hash_key(key), "k")]
    assert all(key not in str(value) for value in stored[0])


def test_last_used_at_is_noted(client: TestClient):
    key = new_key(client, "tasks:read")
    assert client.get("/api-keys").json()["api_keys"][0]["last_used_at"] is None
    client.get("/tasks", headers=as_key(client, key))
    assert client.get("/api-keys").json()["api_keys"][0]["last_used_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["tasks:delete"]}, "scopes"),
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["admin"], "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "", "scopes": ["admin"]}, "name"),
        ({"name": "x", "scopes": ["admin"], "key": "isk_mine"}, "key"),
    ],
)
def test_bad_key_requests_are_422(client: TestClient, body, field):
    response = client.post("/api-keys", json=body)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", field]]


def test_wrong_looking_keys_are_401_not_500(client: TestClient):
    for token in ("isk_", "isk_" + "x" * 500, "isk_notakey", "isk_" + "\\u0000"):
        response = client.get("/tasks", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_the_openapi_document_shows_each_routes_scope(client: TestClient):
    document = client.get("/openapi.json").json()
    create = document["paths"]["/tasks"]["post"]["security"]
    listing = document["paths"]["/task-logs"]["get"]["security"]
    assert create == [{"HTTPBearer": ["tasks:write"]}]
    assert listing == [{"HTTPBearer": ["logs:read"]}]
    assert document["paths"]["/api-keys"]["get"]["security"] == [{"HTTPBearer": ["admin"]}]
