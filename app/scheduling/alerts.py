"""Telling ALERT_WEBHOOK_URL about a task the service switched off, brought back, or gave up on.

Discord gets a short text with every mention silenced (`allowed_mentions: {"parse": []}`): a
task named `@everyone` must not ping a channel. Other webhooks also get the fields as data.
"""

import asyncio
import logging
from collections.abc import Collection
from datetime import datetime

from app.delivery.discord import is_discord_webhook_url
from app.delivery.sender import Delivery, Sender
from app.scheduling.attempts import Alert, Job

logger = logging.getLogger(__name__)

DISCORD_CONTENT_CHARS = 2000


HEADLINES = {
    Alert.DEACTIVATED: "was deactivated",
    Alert.RECOVERED: "is active again",
    Alert.GAVE_UP: "will not be tried again by itself",
}


def alert_payload(
    kind: Alert,
    job: Job,
    *,
    reason: str,
    url: str,
    resume_at: datetime | None = None,
    discord_hosts: Collection[str] = (),
) -> dict:
    """The alert's payload: a short text, and for non-Discord webhooks the fields as data."""
    text = f'Task "{job.task_name}" ({job.task_id}) {HEADLINES[kind]}: {reason}'
    payload: dict = {
        "content": text[:DISCORD_CONTENT_CHARS],
        "allowed_mentions": {"parse": []},
    }
    if not is_discord_webhook_url(url, discord_hosts):
        payload |= {
            "event": kind.value,
            "task_id": str(job.task_id),
            "task_name": job.task_name,
            "reason": reason,
            "resume_at": resume_at.isoformat().replace("+00:00", "Z") if resume_at else None,
        }
    return payload


class Alerter:
    """Posts alerts in the background; one failing alert never holds anything up."""

    def __init__(self, *, sender: Sender, url: str, discord_hosts: Collection[str]) -> None:
        self._sender = sender
        self._url = url
        self._discord_hosts = discord_hosts
        self._pending: set[asyncio.Task[object]] = set()

    def send(self, kind: Alert, job: Job, *, reason: str, resume_at: datetime | None) -> None:
        payload = alert_payload(
            kind,
            job,
            reason=reason,
            url=self._url,
            resume_at=resume_at,
            discord_hosts=self._discord_hosts,
        )
        task = asyncio.create_task(self._sender.send(Delivery(url=self._url, payload=payload)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
