"""The save-time check of a Discord webhook: does it exist? (VERIFY_DISCORD_WEBHOOKS)"""

import asyncio

from fastapi import Request

from app.delivery.discord import is_discord_webhook_url
from app.delivery.guard import UnsafeTargetError, check_url_target
from app.errors import InvalidField
from app.models import Task
from app.schemas import TaskUpdate

# A Discord webhook that answers these does not exist, or not with this token.
MISSING = frozenset({401, 404})


async def verify_discord_webhook(request: Request, url: str) -> None:
    """InvalidField on `webhook_url` when a Discord webhook answers GET with 401 or 404; any
    other answer, a timeout or a network failure does not block saving. The GET posts nothing
    and goes through the delivery client (its address checks, its 5 s probe deadline)."""
    settings = request.app.state.settings
    if not settings.verify_discord_webhooks:
        return
    if not is_discord_webhook_url(url, settings.discord_hosts):
        return
    try:
        check_url_target(url, allow_private=settings.private_targets)
    except UnsafeTargetError:
        return  # refused with its own reason by the service's checks
    outcome = await request.app.state.scheduler.sender.probe(url)
    if outcome.http_status in MISSING:
        raise InvalidField(
            "webhook_url",
            f"this Discord webhook does not exist (HTTP {outcome.http_status} when checked; "
            "set VERIFY_DISCORD_WEBHOOKS=false to skip the check)",
        )


async def verify_webhooks(
    request: Request, urls: list[str], *, fan_out: bool, known: frozenset[str] = frozenset()
) -> None:
    """Check the Discord webhooks among `urls` (but the `known` ones) at once; InvalidField
    naming `webhook_url`, or the place in `webhook_urls` for a fan-out task."""
    checked = [(index, url) for index, url in enumerate(urls) if url not in known]
    outcomes = await asyncio.gather(
        *(verify_discord_webhook(request, url) for _, url in checked), return_exceptions=True
    )
    for (index, _), outcome in zip(checked, outcomes, strict=True):
        if isinstance(outcome, InvalidField) and fan_out:
            raise InvalidField("webhook_urls", f"webhook_urls[{index}]: {outcome.message}")
        if isinstance(outcome, BaseException):
            raise outcome


async def verify_update_webhooks(request: Request, data: TaskUpdate, current: Task) -> None:
    """Check the Discord webhooks an update gives that `current` does not already send to."""
    known = frozenset(current.webhook_urls or [current.webhook_url])
    fan_out = data.webhook_urls is not None
    await verify_webhooks(request, data.given_urls, fan_out=fan_out, known=known)
