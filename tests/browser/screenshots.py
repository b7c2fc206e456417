"""Screenshots of the dashboard for docs/screenshots/, taken in a real Chromium.

Run from the repository's root:

    .venv/bin/python -m tests.browser.screenshots [output folder]

It starts the service on a fresh SQLite file with a Discord-like receiver on 127.0.0.1, creates a
few tasks through the API (one of them failing), waits for their deliveries, then signs in to the
dashboard and photographs the overview, the tasks, one task, the create form with an error and
the logs at 1280 px wide, and the tasks and one task at 375 px.
"""

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from harness import ROOT
from harness.receiver import Answer, WebhookReceiver
from harness.service import ServiceProcess
from harness.waiting import wait_until
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import TEST_TOKEN

OUTPUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 812}


def demo_tasks(receiver: WebhookReceiver) -> list[dict]:
    """What a small Discord community might schedule."""
    tomorrow = (datetime.now(UTC) + timedelta(days=9)).strftime("%Y-%m-%dT18:00:00")
    return [
        {
            "name": "Stand-up reminder",
            "schedule": "0 9 * * MON-FRI",
            "timezone": "Europe/Paris",
            "webhook_url": receiver.url("1", "standup-webhook-token-0123456789"),
            "payload": {"content": "Stand-up in 5 minutes! Grab a coffee."},
        },
        {
            "name": "Raid night",
            "schedule": "30 20 * * FRI",
            "timezone": "America/New_York",
            "webhook_url": receiver.url("2", "raid-webhook-token-0123456789"),
            "payload": {"content": "Raid starts {{ scheduled_for|discord('R') }}!"},
            "template": True,
        },
        {
            "name": "Server status",
            "schedule": "@every 30m",
            "webhook_url": receiver.url("3", "status-webhook-token-0123456789"),
            "payload": {"content": "All systems go."},
        },
        {
            "name": "Patch notes feed",
            "schedule": "*/15 9-17 * * MON-FRI",
            "timezone": "Europe/Berlin",
            "webhook_url": receiver.url("9", "broken-webhook-token-0123456789"),
            "payload": {"content": "New patch notes."},
            "max_retry": 0,
        },
        {
            "name": "Season launch",
            "run_at": tomorrow,
            "timezone": "Asia/Tokyo",
            "webhook_url": receiver.url("4", "launch-webhook-token-0123456789"),
            "payload": {"content": "Season 4 is live!"},
        },
        {
            "name": "Movie night poll",
            "schedule": "0 18 * * SAT,SUN",
            "timezone": "Europe/London",
            "webhook_url": receiver.url("5", "poll-webhook-token-0123456789"),
            "payload": {"content": "What do we watch tonight?"},
            "status": "inactive",
        },
    ]


def prepare(api: httpx.Client, receiver: WebhookReceiver) -> dict[str, str]:
    """Create the demo tasks, run a few now, and wait until their attempts are logged."""
    receiver.script("9", *[Answer(500, {"message": "Internal Server Error"})] * 5)
    ids = {}
    for body in demo_tasks(receiver):
        response = api.post("/tasks", json=body)
        response.raise_for_status()
        ids[body["name"]] = response.json()["id"]
    for name in ("Stand-up reminder", "Server status", "Patch notes feed", "Stand-up reminder"):
        api.post(f"/tasks/{ids[name]}/execute").raise_for_status()
    wait_until(
        lambda: api.get("/task-logs").json()["total"] >= 4, timeout=30, what="4 logged attempts"
    )
    wait_until(
        lambda: api.get(f"/tasks/{ids['Patch notes feed']}").json()["resume_at"],
        timeout=30,
        what="the failing task switched off",
    )
    return ids


def shoot(page: Page, url: str, name: str, folder: Path) -> None:
    """Load `url` and save the whole page as `name`.png."""
    page.goto(url)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/ui/login")
    page.get_by_label("API token or API key").fill(TEST_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/ui")


def photograph(base: str, ids: dict[str, str], folder: Path) -> None:
    """Every main page at desktop width, and two at phone width."""
    standup = f"{base}/ui/tasks/{ids['Stand-up reminder']}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=DESKTOP)
        sign_in(page, base)
        shoot(page, f"{base}/ui", "overview", folder)
        shoot(page, f"{base}/ui/tasks", "tasks", folder)
        shoot(page, standup, "task", folder)
        shoot(page, f"{base}/ui/logs", "logs", folder)
        page.goto(f"{base}/ui/tasks/new")
        page.get_by_label("Name").fill("Weekly digest")
        page.get_by_label("Schedule (when it repeats)").fill("every monday at 9")
        page.get_by_label("Webhook URL").fill("https://discord.com/api/webhooks/123/abc")
        page.get_by_role("button", name="Create task").click()
        page.screenshot(path=str(folder / "new-task-error.png"), full_page=True)
        phone = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=2)
        sign_in(phone, base)
        shoot(phone, f"{base}/ui/tasks", "tasks-375px", folder)
        shoot(phone, standup, "task-375px", folder)
        browser.close()


def main(folder: Path = OUTPUT) -> None:
    """Run the service, fill it, photograph the dashboard into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, WebhookReceiver() as receiver:
        env = {
            "DATABASE_URL": f"sqlite:///{scratch}/demo.db",
            "API_TOKEN": TEST_TOKEN,
            "SCHEDULER_ENABLED": "true",
            "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
            "DISCORD_EXTRA_HOSTS": "127.0.0.1",
            "VERIFY_DISCORD_WEBHOOKS": "false",
            "RETRY_BACKOFF_BASE_SECONDS": "0.2",
        }
        service = ServiceProcess(env, Path(scratch) / "service.log")
        try:
            service.start()
            headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
            with httpx.Client(base_url=service.base_url, headers=headers, timeout=10) as api:
                ids = prepare(api, receiver)
            photograph(service.base_url, ids, folder)
        finally:
            service.stop_quietly()
    print(f"screenshots in {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
