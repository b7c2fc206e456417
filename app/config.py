"""Service settings, read from the environment and from `.env`.

Every setting is typed and checked when the service starts, so a typo fails loudly instead of
running with a surprise. There is no default API token: when `API_TOKEN` is unset the service
generates one on first start and keeps it in the database (see `app.tokens`).
"""

import math
import os
import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.delivery.guard import (
    ALL_PRIVATE,
    PUBLIC_ONLY,
    SETTING,
    PrivateTargets,
    parse_private_targets,
)
from app.delivery.signing import is_secret

DEFAULT_DATABASE_URL = "sqlite:///./insignia.db"
MIN_TOKEN_LENGTH = 16
# What a browser sends in `Origin`: scheme, host, optional port; nothing after.
_ORIGIN = re.compile(r"^https?://[^/\s,?#]+$", re.IGNORECASE)
# Placeholder values seen in examples and templates; refusing them keeps a copied example from
# becoming a production secret.
PLACEHOLDER_TOKENS = frozenset(
    {"changeme", "change-me", "secret", "your-secret-token", "your-api-token", "token", "password"}
)


class Settings(BaseSettings):
    """Typed configuration; see the README's configuration table for each setting's meaning."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = DEFAULT_DATABASE_URL
    api_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    scheduler_enabled: bool = True
    # Service processes in one container; unset: one per CPU this process may run on.
    workers: int | None = Field(default=None, ge=1, le=64)
    # false, true, or a list of networks and host names; read it through `private_targets`.
    allow_private_webhook_targets: bool | str = False
    retry_backoff_base_seconds: float = Field(default=2.0, gt=0)
    retry_backoff_max_seconds: float = Field(default=600.0, gt=0)
    delivery_timeout_seconds: float = Field(default=15.0, gt=0)
    scheduler_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    scheduler_lease_seconds: float = Field(default=60.0, gt=0)
    scheduler_batch_size: int = Field(default=100, ge=1, le=1000)
    max_concurrent_deliveries: int = Field(default=100, ge=1, le=10_000)
    misfire_grace_seconds: float = Field(default=60.0, ge=0)
    max_rate_limit_wait_seconds: float = Field(default=300.0, ge=0)
    auto_resume_first_seconds: float = Field(default=300.0, gt=0)
    auto_resume_max_seconds: float = Field(default=21_600.0, gt=0)
    auto_resume_give_up_seconds: float = Field(default=7 * 86_400.0, gt=0)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0, le=60)
    log_retention_days: int = Field(default=90, ge=0)
    startup_database_wait_seconds: float = Field(default=60.0, ge=0)
    discord_extra_hosts: str = ""
    verify_discord_webhooks: bool = True
    webhook_signing_secret: SecretStr | None = None
    alert_webhook_url: str | None = None
    cors_allow_origins: str = ""
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024, le=256 * 1024 * 1024)
    max_payload_bytes: int = Field(default=64 * 1024, ge=2, le=16 * 1024 * 1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("allow_private_webhook_targets", mode="before")
    @classmethod
    def _check_private_targets(cls, value: object) -> bool | str:
        if not isinstance(value, bool | str):
            raise ValueError(f"{SETTING} must be true, false or a list of networks and host names")
        targets = parse_private_targets(value)  # ValueError naming the setting when malformed
        if targets in (PUBLIC_ONLY, ALL_PRIVATE):
            return targets == ALL_PRIVATE
        return str(value).strip()

    @field_validator("alert_webhook_url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_signing_secret", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("webhook_signing_secret")
    @classmethod
    def _signing_secret_form(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not is_secret(value.get_secret_value()):
            raise ValueError(
                "WEBHOOK_SIGNING_SECRET must be whsec_ followed by base64 of at least 16 bytes; "
                "generate one with: python -c 'import base64, secrets; "
                'print("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())\''
            )
        return value

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("api_token")
    @classmethod
    def _refuse_weak_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value()
        if token.lower() in PLACEHOLDER_TOKENS or len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"API_TOKEN must be at least {MIN_TOKEN_LENGTH} characters and not a placeholder; "
                "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, value: str) -> str:
        for origin in split_list(value):
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"{origin!r} is not an origin: give scheme://host[:port] "
                    "(no path, no trailing slash), or *"
                )
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_delivery(self) -> "Settings":
        if self.scheduler_lease_seconds <= self.delivery_timeout_seconds:
            raise ValueError(
                "SCHEDULER_LEASE_SECONDS must be longer than DELIVERY_TIMEOUT_SECONDS, or work "
                "still being delivered would be taken over by another scheduler"
            )
        return self

    @cached_property
    def discord_hosts(self) -> frozenset[str]:
        """Hosts (or host:port) treated as Discord besides discord.com and its variants (read
        for every delivery: computed once)."""
        return frozenset(host.lower() for host in split_list(self.discord_extra_hosts))

    @property
    def default_signing_secret(self) -> str | None:
        """WEBHOOK_SIGNING_SECRET's value, if set."""
        value = self.webhook_signing_secret
        return value.get_secret_value() if isinstance(value, SecretStr) else value

    @property
    def cors_origins(self) -> list[str]:
        """Browser origins allowed to call the API from other sites (empty: CORS is off)."""
        # Browsers send the scheme and host in lower case; compare like with like.
        return [origin.lower() for origin in split_list(self.cors_allow_origins)]

    @property
    def private_targets(self) -> PrivateTargets:
        """Which non-public webhook targets may be contacted. Read the setting through here:
        `model_copy(update=...)` skips validators, so the field may hold any bool or string."""
        return parse_private_targets(self.allow_private_webhook_targets)

    @property
    def worker_count(self) -> int:
        """How many service processes to run: WORKERS, else the CPUs available to this one."""
        return self.workers or available_cpus()

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy should use (psycopg2 for PostgreSQL)."""
        return normalize_database_url(self.database_url)


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cpus(cgroup_cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The CPUs this process may use: those it may run on (its affinity where the system says,
    else all), fewer when a container's CPU quota (cgroup v2 `cpu.max`) allows less."""
    affinity = getattr(os, "sched_getaffinity", None)
    cpus = len(affinity(0)) if affinity is not None else os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_cpu_max)
    return max(1, min(cpus, quota) if quota is not None else cpus)


def cgroup_cpu_quota(path: Path) -> int | None:
    """The CPUs a cgroup v2 `cpu.max` file ("quota period", or "max period") allows, rounded
    up; None when there is no such file or no limit."""
    try:
        quota, period = path.read_text().split()[:2]
        return math.ceil(int(quota) / int(period)) if quota != "max" else None
    except (OSError, ValueError, ZeroDivisionError):
        return None


def split_list(value: str) -> list[str]:
    """The non-empty items of a comma-separated setting, stripped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def normalize_database_url(url: str) -> str:
    """Map `postgres://` and `postgresql://` to psycopg2, which is the driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    """Settings read once per process from the environment and `.env`."""
    return Settings()
