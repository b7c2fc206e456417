"""The dashboard in a real Chromium, against the service running as its own process with its
scheduler and a Discord-like receiver: sign in, create a task through the form (a field error
first), watch its first delivery arrive on the task page, pause it, filter the logs, sign out;
a task sending to two webhooks typed one per line; CSRF refusals; a read-only key; a
phone-sized screen and the keyboard."""

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.receiver import WebhookReceiver
from harness.service import ServiceProcess
from harness.waiting import wait_until
from tests.browser.conftest import StaticSite
from tests.conftest import TEST_TOKEN

WEBHOOK_TOKEN = "dashboard-webhook-secret-0123456789"
DEADLINE_MS = 15_000


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    """The service with its scheduler; the receiver on 127.0.0.1 counts as Discord."""
    env = {
        "DATABASE_URL": database_url,
        "API_TOKEN": TEST_TOKEN,
        "SCHEDULER_ENABLED": "true",
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "DISCORD_EXTRA_HOSTS": "127.0.0.1",
        "RETRY_BACKOFF_BASE_SECONDS": "0.2",
    }
    process = ServiceProcess(env, tmp_path / "service.log")
    try:
        yield process.start()
    finally:
        process.stop_quietly()


@pytest.fixture
def api(service: ServiceProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=10) as client:
        yield client


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEADLINE_MS)
    yield context.new_page()
    context.close()


def sign_in(page, base: str, credential: str = TEST_TOKEN) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_label("API token or API key").fill(credential)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui")


def a_task(api: httpx.Client, receiver: WebhookReceiver, **fields) -> dict:
    body = {
        "name": "Daily rules",
        "schedule": "0 9 * * *",
        "webhook_url": receiver.url("5", WEBHOOK_TOKEN),
        "payload": {"content": "Read the rules"},
    }
    response = api.post("/tasks", json=body | fields)
    assert response.status_code == 201, response.text
    return response.json()


def test_sign_in_create_watch_pause_filter_sign_out(
    page, service: ServiceProcess, receiver: WebhookReceiver, api: httpx.Client
):
    base = service.base_url
    page.goto(f"{base}/ui")
    assert page.url.startswith(f"{base}/ui/login")
    # The token field takes the focus: type and press Enter, no mouse needed.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'token'")
    page.keyboard.type(TEST_TOKEN)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/ui")

    page.get_by_role("link", name="New task").click()
    page.get_by_label("Name").fill("Welcome message")
    page.get_by_label("Schedule (when it repeats)").fill("every 2 seconds")
    page.get_by_label("Timezone").fill("Europe/Paris")
    page.get_by_label("Webhook URL").fill(receiver.url("7", WEBHOOK_TOKEN))
    page.get_by_label("Payload (JSON)").fill('{"content": "Welcome to the server!"}')
    page.get_by_role("button", name="Create task").click()

    error = page.locator("#schedule-error")
    assert "expected 5 fields" in error.inner_text()
    assert page.get_by_label("Schedule (when it repeats)").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Name").input_value() == "Welcome message"  # kept
    assert api.get("/tasks").json()["total"] == 0

    page.get_by_label("Schedule (when it repeats)").fill("@every 2s")
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r".*/ui/tasks/[0-9a-f-]{36}\?done=created$"))
    task_id = page.url.split("/")[-1].split("?")[0]
    assert page.get_by_role("status").inner_text() == "Task created."
    assert page.get_by_role("heading", level=1).inner_text() == "Welcome message"

    def delivered() -> bool:
        page.reload()
        return page.locator("#attempts tr.attempt.success").count() > 0

    wait_until(delivered, timeout=20, interval=0.5, what="the first delivery on the task page")
    first = page.locator("#attempts tr.attempt.success").last
    assert "200" in first.inner_text()
    assert re.search(r"\d{19}", first.locator("td[data-label='Discord message']").inner_text())
    assert receiver.posts("7")[0].body == {"content": "Welcome to the server!"}
    assert receiver.gets("7"), "the form checks a Discord webhook exists, as POST /tasks does"

    page.get_by_role("button", name="Pause").click()
    page.wait_for_url(f"{base}/ui/tasks/{task_id}?done=paused")
    assert page.locator(".status-line .badge").inner_text() == "inactive"
    assert page.get_by_role("button", name="Resume").is_visible()
    assert api.get(f"/tasks/{task_id}").json()["status"] == "inactive"

    page.get_by_role("link", name="Logs", exact=True).click()
    page.get_by_label("Task").select_option(label="Welcome message")
    page.get_by_label("Status").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#no-logs").inner_text() == "No attempts match."
    page.get_by_label("Status").select_option("success")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*status=success"))
    rows = page.locator("#logs tbody tr")
    rows.first.wait_for()
    assert set(rows.locator("td[data-label='Task']").all_inner_texts()) == {"Welcome message"}
    assert f"task_id={task_id}" in page.url and "status=success" in page.url

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/ui/login?done=signed-out")
    assert page.get_by_role("status").inner_text() == "You are signed out."
    page.goto(f"{base}/ui/tasks")
    assert page.url.startswith(f"{base}/ui/login")


def test_several_webhooks_typed_one_per_line_each_get_every_run(
    page, service: ServiceProcess, receiver: WebhookReceiver, api: httpx.Client
):
    base = service.base_url
    sign_in(page, base)
    page.goto(f"{base}/ui/tasks/new")
    page.get_by_label("Name").fill("Two channels")
    page.get_by_label("Schedule (when it repeats)").fill("@every 2s")
    # Enter in the field starts the next line; it does not send the form.
    urls = page.get_by_label("Webhook URL")
    urls.click()
    page.keyboard.type(receiver.url("8", WEBHOOK_TOKEN))
    page.keyboard.press("Enter")
    page.keyboard.type(receiver.url("9", WEBHOOK_TOKEN))
    assert api.get("/tasks").json()["total"] == 0
    page.get_by_label("Payload (JSON)").fill('{"content": "Both of you"}')
    page.get_by_role("button", name="Create task").click()
    page.wait_for_url(re.compile(r".*/ui/tasks/[0-9a-f-]{36}\?done=created$"))
    task_id = page.url.split("/")[-1].split("?")[0]
    task = api.get(f"/tasks/{task_id}").json()
    assert task["webhook_urls"] == [
        receiver.url("8", WEBHOOK_TOKEN),
        receiver.url("9", WEBHOOK_TOKEN),
    ]
    wait_until(
        lambda: receiver.posts("8") and receiver.posts("9"),
        timeout=20,
        interval=0.2,
        what="the first run at both webhooks",
    )
    assert receiver.posts("8")[0].key != receiver.posts("9")[0].key  # each its own delivery
    # The edit form shows both, one per line.
    page.goto(f"{base}/ui/tasks/{task_id}/edit")
    shown = page.get_by_label("Webhook URL").input_value().split("\n")
    assert shown == task["webhook_urls"]


def test_forms_without_the_csrf_token_change_nothing(
    page, service: ServiceProcess, receiver: WebhookReceiver, api: httpx.Client, tmp_path: Path
):
    task = a_task(api, receiver)
    base = service.base_url
    sign_in(page, base)
    # From the dashboard's own origin, with the session cookie but no token: 403.
    refused = page.request.post(f"{base}/ui/tasks/{task['id']}/pause", form={"x": "1"})
    assert refused.status == 403
    assert "CSRF token" in refused.text()
    # A page elsewhere with a form that posts itself. Another port of the same host is the
    # same site: the cookie goes along, the missing token stops it. Another host name is
    # another site: SameSite=Strict keeps the cookie home and the browser lands on sign-in.
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    target = f"{base}/ui/tasks/{task['id']}/pause"
    (folder / "index.html").write_text(
        f'<form method="post" action="{target}"><input name="csrf_token" value="guessed">'
        "</form><script>document.forms[0].submit()</script>"
    )
    with StaticSite(folder) as elsewhere:
        page.goto(f"{elsewhere.origin}/index.html")
        page.wait_for_url(target)
        assert "CSRF token" in page.locator("main").inner_text()
        other_site = elsewhere.origin.replace("127.0.0.1", "localhost")
        page.goto(f"{other_site}/index.html")
        page.wait_for_url(re.compile(rf"^{re.escape(base)}/ui/login"))
    assert api.get(f"/tasks/{task['id']}").json()["status"] == "active"


def test_a_read_only_key_gets_a_read_only_dashboard(
    page, service: ServiceProcess, receiver: WebhookReceiver, api: httpx.Client
):
    task = a_task(api, receiver)
    key = api.post("/api-keys", json={"name": "mods", "scopes": ["tasks:read", "logs:read"]})
    base = service.base_url
    sign_in(page, base, key.json()["key"])
    page.goto(f"{base}/ui/tasks/{task['id']}")
    assert page.get_by_role("heading", level=1).inner_text() == "Daily rules"
    for name in ("Run now", "Pause", "Resume", "Save changes", "Create task"):
        assert page.get_by_role("button", name=name).count() == 0, name
    for name in ("Edit", "Delete…", "New task"):
        assert page.get_by_role("link", name=name).count() == 0, name
    assert WEBHOOK_TOKEN not in page.content()
    assert "/api/webhooks/5/***" in page.locator(".facts .url").inner_text()
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    for action in ("pause", "run", "delete"):
        refused = page.request.post(
            f"{base}/ui/tasks/{task['id']}/{action}", form={"csrf_token": csrf}
        )
        assert refused.status == 403, action
        assert "lacks the scope tasks:write" in refused.text()
    created = page.request.post(
        f"{base}/ui/tasks/new", form={"csrf_token": csrf, "name": "x", "schedule": "@daily"}
    )
    assert created.status == 403
    assert page.goto(f"{base}/ui/tasks/new").status == 403
    assert api.get(f"/tasks/{task['id']}").json()["status"] == "active"
    assert api.get("/tasks").json()["total"] == 1


def test_every_page_fits_a_phone_and_answers_the_keyboard(
    browser, service: ServiceProcess, receiver: WebhookReceiver, api: httpx.Client
):
    task = a_task(api, receiver, name="A rather long task name for a small phone screen")
    base = service.base_url
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    context.set_default_timeout(DEADLINE_MS)
    phone = context.new_page()
    try:
        sign_in(phone, base)
        for path in ("/ui", "/ui/tasks", f"/ui/tasks/{task['id']}", "/ui/tasks/new", "/ui/logs"):
            phone.goto(base + path)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, (path, width)
        phone.goto(f"{base}/ui/tasks")
        phone.keyboard.press("Tab")
        assert phone.evaluate("document.activeElement.textContent") == "Skip to content"
        phone.keyboard.press("Enter")
        phone.keyboard.press("Tab")
        phone.keyboard.press("Tab")
        assert phone.evaluate("document.activeElement.id") in {"search", "status"}
        outline = phone.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"  # the focus can be seen
    finally:
        context.close()
