"""The alert payload for a deactivated task."""

import uuid
from datetime import UTC, datetime

from app.domain import Trigger
from app.scheduling.alerts import alert_payload
from app.scheduling.attempts import Alert, Job

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
    payload = alert_payload(Alert.DEACTIVATED, the_job, reason="HTTP 404", url=url)
    assert payload["allowed_mentions"] == {"parse": []}
    assert (
        payload["content"] == f'Task "@everyone look" ({the_job.task_id}) was deactivated: HTTP 404'
    )
    assert set(payload) == {"content", "allowed_mentions"}


def test_other_webhooks_also_get_the_fields_as_data():
    the_job = job("nightly")
    resume_at = NOW.replace(hour=1)
    payload = alert_payload(
        Alert.DEACTIVATED,
        the_job,
        reason="HTTP 500",
        url="https://hooks.example.com/alerts",
        resume_at=resume_at,
    )
    assert payload["event"] == "task_deactivated"
    assert payload["resume_at"] == "2026-03-01T01:00:00Z"
    assert payload["task_id"] == str(the_job.task_id)
    assert payload["reason"] == "HTTP 500"


def test_the_content_fits_in_a_discord_message():
    url = "https://discord.com/api/webhooks/1/t"
    payload = alert_payload(Alert.GAVE_UP, job("x" * 3000), reason="r", url=url)
    assert len(payload["content"]) == 2000


def test_recovery_and_giving_up_say_so():
    the_job = job("nightly")
    url = "https://discord.com/api/webhooks/1/t"
    recovered = alert_payload(Alert.RECOVERED, the_job, reason="webhook answered HTTP 200", url=url)
    assert "is active again" in recovered["content"]
    gave_up = alert_payload(Alert.GAVE_UP, the_job, reason="webhook no longer exists", url=url)
    assert "will not be tried again by itself" in gave_up["content"]
