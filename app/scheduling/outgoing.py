"""What a job sends: its payload, rendered when the task is a template, checked against
Discord's limits after rendering, with the headers that identify the occurrence."""

from collections.abc import Collection
from datetime import datetime, timedelta

from app.delivery.discord import is_discord_webhook_url, validate_discord_payload
from app.delivery.outcome import Outcome, OutcomeKind
from app.delivery.sender import Delivery
from app.domain import DiscordMode
from app.scheduling.attempts import Job
from app.templates import TemplateContext, TemplateError, render_payload

# After a rotation, the replaced secret still signs (alongside the new one) for a day.
PREVIOUS_SECRET_VALID = timedelta(hours=24)
# Discord's message flag for "no push or desktop notification" (quiet hours, mode silent).
SUPPRESS_NOTIFICATIONS = 1 << 12


def occurrence_headers(job: Job) -> dict[str, str]:
    """Headers that identify the occurrence, constant across retries, so receivers can dedupe."""
    return {
        "Idempotency-Key": str(job.occurrence_id),
        "X-Insignia-Task-Id": str(job.task_id),
        "X-Insignia-Scheduled-For": job.scheduled_for.isoformat().replace("+00:00", "Z"),
        "X-Insignia-Attempt": str(job.attempt + 1),
        "X-Insignia-Trigger": job.trigger.value,
    } | ({"X-Insignia-Fire-Kind": job.fire_kind} if job.fire_kind else {})


def template_context(job: Job) -> TemplateContext:
    """The names a template sees for this job (the same for every attempt but `attempt`)."""
    return TemplateContext(
        task_id=job.task_id,
        task_name=job.task_name,
        timezone=job.timezone,
        scheduled_for=job.scheduled_for,
        occurrence_id=job.occurrence_id,
        attempt=job.attempt + 1,
        run_number=job.run_number or 1,
        next_run_at=job.next_run_at,
    )


def signing_secrets(job: Job, *, default_secret: str | None, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery is signed with: the task's own (and, for a day after a rotation,
    the one it replaced), else the service's WEBHOOK_SIGNING_SECRET, else none."""
    if job.signing_secret is None:
        return (default_secret,) if default_secret else ()
    rotated = job.signing_rotated_at
    if job.previous_signing_secret and rotated and now - rotated < PREVIOUS_SECRET_VALID:
        return (job.signing_secret, job.previous_signing_secret)
    return (job.signing_secret,)


def delivery_for(
    job: Job,
    *,
    discord_hosts: Collection[str] = (),
    default_secret: str | None = None,
    now: datetime | None = None,
) -> Delivery | Outcome:
    """The request to make for this job, or the permanent failure that stops it unsent (a
    template that cannot be rendered, a rendered Discord payload over Discord's limits).
    Deliveries to other webhooks are signed (see `app.delivery.signing`)."""
    discord = is_discord_webhook_url(job.webhook_url, discord_hosts)
    payload = _rendered(job, discord=discord)
    if isinstance(payload, Outcome):
        return payload
    if discord and job.fire_kind == "silent" and _posts(job):
        payload = silenced(payload)
    secrets = () if discord else signing_secrets(job, default_secret=default_secret, now=now)
    return Delivery(
        url=job.webhook_url,
        payload=payload,
        headers=occurrence_headers(job),
        mode=job.discord_mode,
        message_id=job.discord_message_id,
        signing_secrets=secrets,
    )


def silenced(payload: dict) -> dict:
    """The payload with Discord's SUPPRESS_NOTIFICATIONS flag added to any flags it has: the
    message is posted, and nobody is pinged."""
    flags = payload.get("flags")
    return payload | {"flags": (flags if isinstance(flags, int) else 0) | SUPPRESS_NOTIFICATIONS}


def _posts(job: Job) -> bool:
    """Whether the job posts a new message (an edit notifies nobody and takes no such flag)."""
    return job.discord_mode is not DiscordMode.EDIT or job.discord_message_id is None


def _rendered(job: Job, *, discord: bool) -> dict | Outcome:
    """The payload to send, or why it cannot be sent."""
    if not job.template:
        return job.payload
    try:
        payload = render_payload(job.payload, template_context(job))
    except TemplateError as exc:
        return Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message=f"template: {exc}")
    problems = validate_discord_payload(payload) if discord else []
    if problems:
        message = "rendered payload over Discord's limits: " + "; ".join(problems)
        return Outcome(kind=OutcomeKind.PERMANENT_FAILURE, message=message[:1000])
    return payload
