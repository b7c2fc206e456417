"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis).

The service runs as a real process on a fresh SQLite file; schemathesis generates valid and
invalid input for every operation (examples, coverage, fuzzing and stateful phases). No answer
may be a 500, and every answer must match its documented status codes, content types, headers
and response schemas. A fixed seed keeps CI repeatable; run `schemathesis run` by hand (see the
command in the failure output) with other seeds to explore further.
"""

import subprocess
import sys
from pathlib import Path

from harness.service import ServiceProcess
from tests.conftest import TEST_TOKEN

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)
SEED = "20261122"


def test_api_answers_match_its_own_documentation(tmp_path: Path):
    service = ServiceProcess(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'fuzz.db'}",
            "API_TOKEN": TEST_TOKEN,
            "SCHEDULER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
        },
        tmp_path / "service.log",
    ).start()
    try:
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"{service.base_url}/openapi.json",
                "--header",
                f"Authorization: Bearer {TEST_TOKEN}",
                "--checks",
                CHECKS,
                "--max-examples",
                "30",
                "--seed",
                SEED,
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        service.terminate()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
