"""Authentication, public routes, the OpenAPI document and the running process."""

import gc

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.integration.conftest import start_client

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


@pytest.mark.parametrize(
    ("page", "assets"),
    [
        ("/docs", ["/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"]),
        ("/redoc", ["/docs-assets/redoc.standalone.js"]),
    ],
)
def test_the_docs_work_offline(client: TestClient, page: str, assets: list[str]):
    client.headers.pop("Authorization")
    html = client.get(page).text
    assert "cdn." not in html and "fonts.googleapis" not in html
    for asset in assets:
        assert asset in html
        assert client.get(asset).status_code == 200


def test_every_operation_has_a_short_id_and_typed_answers(client: TestClient):
    document = client.get("/openapi.json").json()
    seen = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            seen.append(operation["operationId"])
            assert operation["operationId"].isidentifier(), (path, method)
            assert len(operation["operationId"]) <= 24, operation["operationId"]
            for code, answer in operation["responses"].items():
                for content in answer.get("content", {}).values():
                    assert content.get("schema") not in (None, {}), (path, method, code)
    assert len(seen) == len(set(seen))
    assert {"create_task", "list_task_logs", "patch_task", "run_scheduler_pass"} <= set(seen)


def test_each_closed_vocabulary_is_one_named_component(client: TestClient):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for name, values in {
        "TaskStatus": ["active", "inactive"],
        "Catchup": ["latest", "none", "all"],
        "LogStatus": ["success", "failed"],
        "Trigger": ["schedule", "catchup", "manual", "probe", "delete"],
        "ReadyStatus": ["ready", "not ready"],
        "DiscordMode": ["post", "edit", "replace"],
        "Scope": ["tasks:read", "tasks:write", "logs:read", "logs:write", "admin"],
        "FireKind": ["normal", "silent", "deferred"],
        "QuietMode": ["skip", "silent", "defer"],
    }.items():
        assert schemas[name]["enum"] == values
    # No inline copy of a vocabulary anywhere else: a generated client gets one class each.
    assert len(list(enums_in(document))) == 9


def enums_in(node: object):
    """Every `enum` list in a JSON document."""
    if isinstance(node, dict):
        if isinstance(node.get("enum"), list):
            yield node["enum"]
        for value in node.values():
            yield from enums_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from enums_in(value)


def test_a_running_service_keeps_its_startup_objects_out_of_full_collections(settings: Settings):
    with start_client(settings) as running:
        assert running.get("/livez").status_code == 200
        # Modules, routes, schemas and the engine: over 100,000 tracked objects here.
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
