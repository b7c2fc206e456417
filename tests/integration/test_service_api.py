"""Authentication, public routes and the OpenAPI document."""

import pytest
from fastapi.testclient import TestClient

PROTECTED = [
    ("get", "/health"),
    ("get", "/tasks"),
    ("post", "/tasks"),
    ("get", "/tasks/00000000-0000-0000-0000-000000000000"),
    ("get", "/task-logs"),
    ("post", "/task-logs"),
    ("get", "/task-logs/task/00000000-0000-0000-0000-000000000000"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token-wrong-token", "Basic abc", "Bearer "]
)
def test_missing_or_wrong_token_is_401(
    client: TestClient, method: str, path: str, authorization: str | None
):
    headers = {} if authorization is None else {"Authorization": authorization}
    client.headers.pop("Authorization")
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "detail" in response.json()


def test_health_with_token(client: TestClient):
    assert client.get("/health").json() == {"status": "healthy"}


@pytest.mark.parametrize("path", ["/", "/livez", "/readyz", "/openapi.json", "/docs"])
def test_public_routes_need_no_token(client: TestClient, path: str):
    client.headers.pop("Authorization")
    assert client.get(path).status_code == 200


def test_readyz_reports_database(client: TestClient):
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"


def test_openapi_describes_the_api_with_examples(client: TestClient):
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    for path in ("/tasks", "/tasks/{task_id}", "/task-logs", "/task-logs/task/{task_id}"):
        assert path in paths
    assert document["components"]["schemas"]["TaskCreate"]["examples"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
