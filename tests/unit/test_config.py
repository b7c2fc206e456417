"""Settings: typed, fail-fast, no known default secret."""

import ipaddress
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import Settings, available_cpus, cgroup_cpu_quota, normalize_database_url
from app.delivery.guard import ALL_PRIVATE, PUBLIC_ONLY, PrivateTargets


def test_defaults_need_no_configuration(monkeypatch):
    for name in ("DATABASE_URL", "API_TOKEN", "PORT", "HOST"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url == "sqlite:///./insignia.db"
    assert settings.api_token is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.scheduler_enabled is True
    assert settings.allow_private_webhook_targets is False


@pytest.mark.parametrize("token", ["changeme", "secret", "short-token"])
def test_weak_tokens_are_refused(token: str):
    with pytest.raises(ValidationError, match="API_TOKEN"):
        Settings(_env_file=None, api_token=token)


def test_blank_token_means_unset():
    assert Settings(_env_file=None, api_token="  ").api_token is None


def test_token_is_not_shown_in_repr():
    settings = Settings(_env_file=None, api_token="a-long-enough-secret-token")
    assert "a-long-enough-secret-token" not in repr(settings)


def test_environment_is_read(monkeypatch):
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("SCHEDULER_ENABLED", "false")
    settings = Settings(_env_file=None)
    assert (settings.port, settings.log_level, settings.scheduler_enabled) == (9999, "DEBUG", False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("sqlite:///./x.db", "sqlite:///./x.db"),
    ],
)
def test_database_url_uses_psycopg2(url: str, expected: str):
    assert normalize_database_url(url) == expected


def test_env_example_documents_every_setting():
    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize(
    "value",
    ["http://localhost:3000/", "localhost:3000", "http://a.example/app", "ftp://a.example", "*x"],
)
def test_cors_origins_must_be_origins(value: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(_env_file=None, cors_allow_origins=value)


def test_cors_origins_are_a_list() -> None:
    settings = Settings(
        _env_file=None, cors_allow_origins=" https://app.example.com , http://127.0.0.1:3000,"
    )
    assert settings.cors_origins == ["https://app.example.com", "http://127.0.0.1:3000"]
    assert Settings(_env_file=None).cors_origins == []


@pytest.mark.parametrize(
    ("value", "stored", "expected"),
    [
        ("false", False, PUBLIC_ONLY),
        ("0", False, PUBLIC_ONLY),
        ("", False, PUBLIC_ONLY),
        ("TRUE", True, ALL_PRIVATE),
        ("yes", True, ALL_PRIVATE),
        (
            " 127.0.0.1/32, relay.internal ",
            "127.0.0.1/32, relay.internal",
            PrivateTargets(
                networks=(ipaddress.ip_network("127.0.0.1/32"),),
                hosts=frozenset({"relay.internal"}),
            ),
        ),
    ],
)
def test_private_targets_are_read_from_the_environment(monkeypatch, value, stored, expected):
    monkeypatch.setenv("ALLOW_PRIVATE_WEBHOOK_TARGETS", value)
    settings = Settings(_env_file=None)
    assert settings.allow_private_webhook_targets == stored
    assert settings.private_targets == expected


@pytest.mark.parametrize(
    "value", ["10.0.0.0/33", "10.0.0.1/8", "2130706433", "*.internal", "true,10.0.0.0/8", "a b"]
)
def test_malformed_private_targets_fail_naming_the_setting(monkeypatch, value):
    monkeypatch.setenv("ALLOW_PRIVATE_WEBHOOK_TARGETS", value)
    with pytest.raises(ValidationError, match="ALLOW_PRIVATE_WEBHOOK_TARGETS"):
        Settings(_env_file=None)


@pytest.mark.parametrize("value", [3, 1.0, ["10.0.0.0/8"], None])
def test_private_targets_of_another_type_fail_naming_the_setting(value):
    with pytest.raises(ValidationError, match="ALLOW_PRIVATE_WEBHOOK_TARGETS must be"):
        Settings(_env_file=None, allow_private_webhook_targets=value)


def test_a_plain_bool_still_sets_private_targets():
    settings = Settings(_env_file=None, allow_private_webhook_targets=True)
    assert settings.private_targets == ALL_PRIVATE
    # model_copy runs no validators: the accessor reads whatever the field holds.
    assert (
        settings.model_copy(update={"allow_private_webhook_targets": False}).private_targets
        == PUBLIC_ONLY
    )
    listed = settings.model_copy(update={"allow_private_webhook_targets": "10.0.0.0/8"})
    assert listed.private_targets == PrivateTargets(networks=(ipaddress.ip_network("10.0.0.0/8"),))


@pytest.mark.parametrize("value", ["secret", "whsec_", "whsec_c2hvcnQ=", "whsec_not base64!"])
def test_a_malformed_signing_secret_stops_the_service(value: str) -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SIGNING_SECRET"):
        Settings(_env_file=None, webhook_signing_secret=value)


def test_a_signing_secret_of_the_standard_form_is_taken() -> None:
    secret = "whsec_" + "A" * 32
    assert Settings(_env_file=None, webhook_signing_secret=secret).default_signing_secret == secret
    assert Settings(_env_file=None, webhook_signing_secret="").default_signing_secret is None


def test_workers_default_to_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.delenv("WORKERS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    assert Settings(_env_file=None).worker_count == 3
    assert Settings(_env_file=None, workers=1).worker_count == 1


@pytest.mark.parametrize("value", ["0", "-1", "65", "two"])
def test_workers_must_be_a_sensible_count(monkeypatch, value: str):
    monkeypatch.setenv("WORKERS", value)
    with pytest.raises(ValidationError, match="workers"):
        Settings(_env_file=None)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("max 100000", 3), ("200000 100000", 2), ("150000 100000", 2), ("50000 100000", 1)],
)
def test_workers_follow_a_container_cpu_quota(monkeypatch, tmp_path, content, expected):
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2}, raising=False)
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(content + "\n")
    assert available_cpus(cpu_max) == expected


@pytest.mark.parametrize("content", [None, "", "garbage", "0 0", "1 x"])
def test_an_unreadable_cpu_quota_is_no_limit(tmp_path, content):
    cpu_max = tmp_path / "cpu.max"
    if content is not None:
        cpu_max.write_text(content)
    assert cgroup_cpu_quota(cpu_max) is None
