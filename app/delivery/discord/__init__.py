"""Everything Discord means, in one place: recognising its webhook URLs (`urls`), the limits
of what a webhook may post (`limits`), pacing requests under its rate limits (`pacing`), and
the operations on the messages a webhook posted (`messages`). The sender asks this package;
nothing else in the service knows Discord's rules."""

from app.delivery.discord.limits import (
    CONTENT_MAX,
    EMBED_TOTAL_MAX,
    EMBEDS_MAX,
    USERNAME_MAX,
    validate_discord_payload,
)
from app.delivery.discord.pacing import DiscordPacer, retry_after_seconds
from app.delivery.discord.urls import is_discord_webhook_url, webhook_id, with_wait_true

__all__ = [
    "CONTENT_MAX",
    "EMBEDS_MAX",
    "EMBED_TOTAL_MAX",
    "USERNAME_MAX",
    "DiscordPacer",
    "is_discord_webhook_url",
    "retry_after_seconds",
    "validate_discord_payload",
    "webhook_id",
    "with_wait_true",
]
