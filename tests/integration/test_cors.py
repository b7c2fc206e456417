"""Browser clients on other origins (SPEC §16): preflights and answers with CORS headers on
every route family, with and without the trailing slash, and none at all when CORS is off."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.integration.conftest import start_client

FRONTEND = "http://127.0.0.1:3000"
OTHER = "http://evil.example"
PLAIN_URL = "https://hooks.example.com/notify"
TASK = {"name": "Ping", "schedule": "@daily", "webhook_url": PLAIN_URL, "payload": {"a": 1}}

# One route of each family, with the method the browser asks for in its preflight.
ROUTES = [
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/tasks"),
    ("POST", "/tasks"),
    ("GET", "/tasks/{task_id}"),
    ("PUT", "/tasks/{task_id}"),
    ("PATCH", "/tasks/{task_id}"),
    ("DELETE", "/tasks/{task_id}"),
    ("POST", "/tasks/{task_id}/execute"),
    ("POST", "/tasks/{task_id}/pause"),
    ("GET", "/tasks/{task_id}/next-runs"),
    ("GET", "/task-logs"),
    ("POST", "/task-logs"),
    ("GET", "/task-logs/{log_id}"),
    ("GET", "/task-logs/task/{task_id}"),
    ("POST", "/scheduler/run"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
IDS = {
    "task_id": "5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10",
    "log_id": "0c6f1a1e-1f7e-4f55-8d55-1d4b5c6d7e8f",
}


def cors_client(settings: Settings, origins: str) -> TestClient:
    return start_client(settings.model_copy(update={"cors_allow_origins": origins}))


@pytest.fixture
def allowing(settings: Settings) -> Iterator[TestClient]:
    """A service that allows the frontend's origin."""
    with cors_client(settings, f"{FRONTEND}, http://localhost:3000") as client:
        yield client


def preflight(client: TestClient, method: str, path: str, origin: str):
    return client.options(
        path.format(**IDS),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.parametrize("slash", ["", "/"], ids=["bare", "slash"])
@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_preflight_from_an_allowed_origin(allowing: TestClient, method: str, path: str, slash: str):
    path = path + slash if path != "/" else path
    response = preflight(allowing, method, path, FRONTEND)
    assert response.status_code in (200, 204), response.text
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert method in response.headers["access-control-allow-methods"]
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers
    assert "content-type" in allowed_headers
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(("method", "path"), ROUTES[:6])
def test_preflight_from_another_origin_gets_no_allowance(
    allowing: TestClient, method: str, path: str
):
    response = preflight(allowing, method, path, OTHER)
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 400


def test_preflight_for_a_header_not_allowed_is_refused(allowing: TestClient):
    response = allowing.options(
        "/tasks",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-not-allowed",
        },
    )
    assert response.status_code == 400


def test_actual_requests_carry_the_origin(allowing: TestClient):
    headers = {"Origin": FRONTEND}
    created = allowing.post("/tasks/", json=TASK, headers=headers)
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == FRONTEND
    assert "x-request-id" in created.headers["access-control-expose-headers"].lower()
    task_id = created.json()["id"]
    answers = [
        allowing.get("/tasks/", headers=headers),
        allowing.put(f"/tasks/{task_id}", json=TASK, headers=headers),
        allowing.post(f"/tasks/{task_id}/execute", headers=headers),
        allowing.get("/task-logs/", headers=headers),
        allowing.get(f"/task-logs/task/{task_id}/", headers=headers),
        allowing.delete(f"/tasks/{task_id}", headers=headers),
    ]
    assert [r.status_code for r in answers] == [200, 200, 202, 200, 200, 200]
    for answer in answers:
        assert answer.headers["access-control-allow-origin"] == FRONTEND
        assert "access-control-allow-credentials" not in answer.headers


def test_errors_carry_the_origin_so_the_browser_can_read_them(allowing: TestClient):
    # A browser shows the frontend a 401 or a 422 only if the answer allows its origin.
    unauthorised = allowing.get("/tasks", headers={"Origin": FRONTEND, "Authorization": "Bearer x"})
    assert unauthorised.status_code == 401
    assert unauthorised.headers["access-control-allow-origin"] == FRONTEND
    invalid = allowing.post("/tasks", json={"name": ""}, headers={"Origin": FRONTEND})
    assert invalid.status_code == 422
    assert invalid.headers["access-control-allow-origin"] == FRONTEND


def test_answers_to_another_origin_do_not_allow_it(allowing: TestClient):
    response = allowing.get("/tasks", headers={"Origin": OTHER})
    assert response.status_code == 200  # the server answers; the browser withholds it
    assert "access-control-allow-origin" not in response.headers


def test_wildcard_allows_any_origin_without_credentials(settings: Settings):
    with cors_client(settings, "*") as client:
        pre = preflight(client, "POST", "/tasks/", OTHER)
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "*"
        answer = client.get("/tasks", headers={"Origin": OTHER, "Cookie": "session=x"})
        assert answer.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in answer.headers


def test_no_setting_means_no_cors_headers_at_all(client: TestClient):
    pre = preflight(client, "GET", "/tasks", FRONTEND)
    assert pre.status_code == 405
    assert not [h for h in pre.headers if h.startswith("access-control-")]
    answer = client.get("/tasks", headers={"Origin": FRONTEND})
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.startswith("access-control-")]


def test_origins_compare_without_case(settings: Settings):
    with cors_client(settings, "HTTP://LocalHost:3000") as client:
        response = preflight(client, "GET", "/tasks", "http://localhost:3000")
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
