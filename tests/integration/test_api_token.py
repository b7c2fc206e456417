"""With API_TOKEN unset the service generates a token once and keeps using it."""

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parents[2]


def start_and_read_token(settings: Settings) -> str:
    with TestClient(create_app(settings)) as client:
        token = client.app.state.api_token
        assert client.get("/health").status_code == 401
        authorized = client.get("/health", headers={"Authorization": f"Bearer {token}"})
        assert authorized.status_code == 200
        return token


def test_generated_token_is_random_kept_and_shown(settings: Settings, caplog):
    unset = settings.model_copy(update={"api_token": None})
    first = start_and_read_token(unset)
    assert len(first) >= 32
    assert "python main.py token" in caplog.text
    assert first not in caplog.text
    assert start_and_read_token(unset) == first

    env = {**os.environ, "DATABASE_URL": settings.database_url}
    env.pop("API_TOKEN", None)
    shown = subprocess.run(
        [sys.executable, "main.py", "token"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert shown.stdout.strip() == first


def test_configured_token_wins(settings: Settings):
    assert start_and_read_token(settings) == settings.api_token.get_secret_value()
