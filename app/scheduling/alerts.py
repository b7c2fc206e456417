"""Telling ALERT_WEBHOOK_URL about a task the service switched off.

Discord gets a short text with every mention silenced (`allowed_mentions: {"parse": []}`): a
task named `@everyone` must not ping a channel. Other webhooks also get the fields as data.
"""

import asyncio
import logging
from collections.abc import Collection

from app.delivery.discord import is_discord_webhook_url
from app.delivery.sender import Delivery, Sender
from app.scheduling.attempts import Job

logger = logging.getLogger(__name__)

DISCORD_CONTENT_CHARS = 2000


def deactivation_alert(
    job: Job, reason: str, *, url: str, discord_hosts: Collection[str] = ()
) -> dict:
    """The alert's payload for a deactivated task."""
    text = f'Task "{job.task_name}" ({job.task_id}) was deactivated: {reason}'
    payload: dict = {
        "content": text[:DISCORD_CONTENT_CHARS],
        "allowed_mentions": {"parse": []},
    }
    if not is_discord_webhook_url(url, discord_hosts):
        payload |= {
            "event": "task_deactivated",
            "task_id": str(job.task_id),
            "task_name": job.task_name,
            "reason": reason,
        }
    return payload


class Alerter:
    """Posts alerts in the background; one failing alert never holds anything up."""

    def __init__(self, *, sender: Sender, url: str, discord_hosts: Collection[str]) -> None:
        self._sender = sender
        self._url = url
        self._discord_hosts = discord_hosts
        self._pending: set[asyncio.Task[object]] = set()

    def deactivated(self, job: Job, reason: str) -> None:
        payload = deactivation_alert(job, reason, url=self._url, discord_hosts=self._discord_hosts)
        task = asyncio.create_task(self._sender.send(Delivery(url=self._url, payload=payload)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
