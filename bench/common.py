"""What the benchmarks share: throw-away databases, the receiver process, percentiles."""

import contextlib
import math
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import normalize_database_url
from app.db import create_db_engine
from harness.receiver_process import ReceiverProcess

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
BENCH_TOKEN = "bench-token-0123456789abcdef"


def service_env(database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a benchmarked `python main.py`: the given database, the benchmark
    token, the local receiver allowed, warnings only (the log is not what is measured)."""
    return {
        "DATABASE_URL": database_url,
        "API_TOKEN": BENCH_TOKEN,
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "LOG_LEVEL": "WARNING",
    } | overrides


@contextlib.contextmanager
def temporary_database(kind: str) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    base = normalize_database_url(os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES))
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_db_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextlib.contextmanager
def running_receiver() -> Iterator[str]:
    """harness.receiver_process in a process of its own; yields its base URL."""
    receiver = ReceiverProcess()
    try:
        yield receiver.start().base_url
    finally:
        receiver.stop()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (fraction in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
