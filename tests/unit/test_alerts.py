"""The alert payload for a deactivated task."""

import uuid
from datetime import UTC, datetime

from app.domain import Trigger
from app.scheduling.alerts import deactivation_alert
from app.scheduling.attempts import Job

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def job(name: str) -> Job:
    return Job(
        occurrence_id=uuid.uuid4(),
        task_id=uuid.uuid4(),
        scheduled_for=NOW,
        trigger=Trigger.SCHEDULE,
        attempt=0,
        webhook_url="https://hooks.example.com/x",
        payload={},
        max_retry=3,
        task_name=name,
        task_version=NOW,
        lease_expires_at=NOW,
    )


def test_discord_alerts_mention_nobody_whatever_the_task_is_called():
    the_job = job("@everyone look")
    url = "https://discord.com/api/webhooks/1/token"
    payload = deactivation_alert(the_job, "HTTP 404", url=url)
    assert payload["allowed_mentions"] == {"parse": []}
    assert (
        payload["content"] == f'Task "@everyone look" ({the_job.task_id}) was deactivated: HTTP 404'
    )
    assert set(payload) == {"content", "allowed_mentions"}


def test_other_webhooks_also_get_the_fields_as_data():
    the_job = job("nightly")
    payload = deactivation_alert(the_job, "HTTP 500", url="https://hooks.example.com/alerts")
    assert payload["event"] == "task_deactivated"
    assert payload["task_id"] == str(the_job.task_id)
    assert payload["reason"] == "HTTP 500"


def test_the_content_fits_in_a_discord_message():
    payload = deactivation_alert(job("x" * 3000), "r", url="https://discord.com/api/webhooks/1/t")
    assert len(payload["content"]) == 2000
