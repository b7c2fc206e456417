"""The deployment files parse and agree with what the service reads: variable names, the port,
the probe paths."""

import re
from pathlib import Path

import pytest
import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {name.upper() for name in Settings.model_fields}
PROBES = {"/livez", "/readyz"}


def documents(path: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((ROOT / path).read_text()) if doc]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (key=value pairs, continued lines joined)."""
    final_stage = dockerfile().rsplit("\nFROM ", 1)[1].replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in final_stage.splitlines():
        if line.startswith("ENV "):
            env.update(re.findall(r"(\w+)=(\S+)", line))
    return env


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_dockerfile_listens_on_port_for_every_interface_as_non_root():
    env = dockerfile_env()
    assert env["HOST"] == "0.0.0.0"  # noqa: S104 (the container must listen outside itself)
    assert env["PORT"] == "8080"
    assert re.search(r"^EXPOSE 8080$", dockerfile(), flags=re.MULTILINE)
    assert re.search(r"^USER app$", dockerfile(), flags=re.MULTILINE)
    assert 'CMD ["python", "main.py"]' in dockerfile()
    assert "pip install -r requirements.txt" in dockerfile()
    service_names = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
    assert set(env) - service_names <= SETTINGS


def test_dockerfile_copies_what_the_service_needs():
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile(), flags=re.MULTILINE)
    sources = {name for line in copied for name in line.split()}
    assert {"main.py", "alembic.ini", "app", "requirements.txt"} <= sources
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not {"app", "main.py", "alembic.ini", "requirements.txt"} & set(ignored)


def test_compose_waits_for_a_healthy_database_and_uses_known_settings():
    (compose,) = documents("docker-compose.yml")
    db, app = compose["services"]["db"], compose["services"]["scheduler"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(volume.startswith("pgdata:") for volume in db["volumes"])
    assert "pgdata" in compose["volumes"]
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert set(app["environment"]) <= SETTINGS
    assert app["environment"]["DATABASE_URL"].startswith("postgresql://")
    port = app["environment"]["PORT"]
    assert app["ports"] == [f"{port}:{port}"]
    assert f"127.0.0.1:{port}/readyz" in " ".join(app["healthcheck"]["test"])


@pytest.mark.parametrize(
    "path", ["deploy/cloudrun/service.yaml", "deploy/cloudrun/service-request-based.yaml"]
)
def test_cloud_run_services_agree_with_the_service(path: str):
    (service,) = documents(path)
    assert service["kind"] == "Service"
    (container,) = containers(service)
    names = {variable["name"] for variable in container["env"]}
    assert names <= SETTINGS
    assert {"DATABASE_URL", "API_TOKEN"} <= names
    for secret in ("DATABASE_URL", "API_TOKEN"):
        (variable,) = [v for v in container["env"] if v["name"] == secret]
        assert "secretKeyRef" in variable["valueFrom"]
    assert container["ports"][0]["containerPort"] == int(dockerfile_env()["PORT"])
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in PROBES
        assert container[probe]["httpGet"]["port"] == 8080
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    scheduler_on = {v["name"]: v.get("value") for v in container["env"]}["SCHEDULER_ENABLED"]
    if scheduler_on == "true":
        assert annotations["run.googleapis.com/cpu-throttling"] == "false"
        assert int(annotations["autoscaling.knative.dev/minScale"]) >= 1
    else:
        assert scheduler_on == "false"


def test_kubernetes_manifests_agree_with_the_service():
    by_kind = {
        doc["kind"]: doc
        for path in (
            "deploy/k8s/deployment.yaml",
            "deploy/k8s/service.yaml",
            "deploy/k8s/secret.yaml",
        )
        for doc in documents(path)
    }
    deployment, service, secret = by_kind["Deployment"], by_kind["Service"], by_kind["Secret"]
    assert deployment["spec"]["replicas"] == 2
    (container,) = containers(deployment)
    names = {variable["name"] for variable in container["env"]}
    assert names <= SETTINGS
    secret_keys = {
        v["valueFrom"]["secretKeyRef"]["key"] for v in container["env"] if "valueFrom" in v
    }
    assert secret_keys == set(secret["stringData"]) == {"DATABASE_URL", "API_TOKEN"}
    port = {v["name"]: v.get("value") for v in container["env"]}["PORT"]
    assert container["ports"][0]["containerPort"] == int(port)
    probes = {container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
    assert probes == PROBES
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 10


def test_probe_paths_exist_in_the_app():
    from app.main import create_app

    paths = set(create_app(Settings(_env_file=None)).openapi()["paths"])
    assert paths >= PROBES | {"/metrics", "/scheduler/run"}
