"""A page on one origin calls the API on another with a bearer token, in a real Chromium: it
reads the answer when its origin is allowed and meets a CORS failure when it is not."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.service import ServiceProcess
from tests.browser.conftest import StaticSite
from tests.conftest import TEST_TOKEN

# What the Insignia frontend does: fetch with an Authorization header (so a preflight first),
# a JSON body on POST, and a trailing slash on the collection paths.
PAGE = """<!doctype html>
<html><body><pre id="result">pending</pre>
<script>
const api = new URLSearchParams(location.search).get("api");
const headers = {"Authorization": "Bearer %(token)s", "Content-Type": "application/json"};
async function run() {
  const created = await fetch(api + "/tasks/", {method: "POST", headers, body: JSON.stringify(
    {name: "From the browser", schedule: "@daily", webhook_url: "https://hooks.example.com/x",
     payload: null})});
  const task = await created.json();
  const listed = await fetch(api + "/tasks/", {headers});
  const logs = await fetch(api + "/task-logs/task/" + task.id, {headers});
  return {created: created.status, payload: task.payload, listed: listed.status,
          total: (await listed.json()).total, logs: logs.status};
}
run().then(
  (value) => { document.getElementById("result").textContent = JSON.stringify(value); },
  (error) => { document.getElementById("result").textContent = "error: " + error; });
</script></body></html>
"""


def serve_page(folder: Path) -> StaticSite:
    folder.mkdir()
    (folder / "index.html").write_text(PAGE % {"token": TEST_TOKEN})
    return StaticSite(folder)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[StaticSite]:
    """The origin the service allows."""
    with serve_page(tmp_path / "site") as running:
        yield running


@pytest.fixture
def other_site(tmp_path: Path) -> Iterator[StaticSite]:
    """Another origin, which the service does not allow."""
    with serve_page(tmp_path / "other") as running:
        yield running


@pytest.fixture
def api(database_url: str, site: StaticSite, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The service in its own process, allowing `site`'s origin only."""
    env = {
        "DATABASE_URL": database_url,
        "API_TOKEN": TEST_TOKEN,
        "SCHEDULER_ENABLED": "false",
        "CORS_ALLOW_ORIGINS": site.origin,
    }
    service = ServiceProcess(env, tmp_path / "service.log")
    try:
        yield service.start()
    finally:
        service.stop_quietly()


def result_in(browser, url: str) -> str:
    page = browser.new_page()
    try:
        page.goto(url)
        locator = page.locator("#result")
        locator.filter(has_not_text="pending").wait_for(timeout=15_000)
        return locator.inner_text()
    finally:
        page.close()


def test_an_allowed_origin_reads_the_answers(browser, api: ServiceProcess, site: StaticSite):
    text = result_in(browser, f"{site.origin}/index.html?api={api.base_url}")
    assert json.loads(text) == {
        "created": 201,
        "payload": {},
        "listed": 200,
        "total": 1,
        "logs": 200,
    }


def test_another_origin_meets_a_cors_failure(browser, api: ServiceProcess, other_site: StaticSite):
    text = result_in(browser, f"{other_site.origin}/index.html?api={api.base_url}")
    assert text.startswith("error: TypeError"), text
    assert "Failed to fetch" in text
