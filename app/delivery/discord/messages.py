"""The requests a run makes to a Discord webhook, by the task's `discord_mode`.

* `post`: `POST ?wait=true`, a new message each time.
* `edit`: `PATCH …/messages/{id}` of the message the task posted last; if Discord says that
  message is gone (404, Unknown Message), a new one is posted and kept instead.
* `replace`: `DELETE …/messages/{id}` of the previous message (already gone is fine), then a new
  one is posted.

A deletion `delete_after_seconds` after a post is `DELETE …/messages/{id}`; a message that is
already gone counts as deleted. Every request keeps the webhook's `thread_id`.
"""

from collections.abc import Awaitable, Callable

from app.delivery.client import Answer
from app.delivery.discord.urls import message_url, with_wait_true
from app.domain import DiscordMode

# (method, url, JSON payload or None) -> the answer
Call = Callable[[str, str, object | None], Awaitable[Answer]]


def _ok_or_gone(answer: Answer) -> bool:
    return 200 <= answer.status < 300 or answer.status == 404


async def run_mode(
    call: Call, url: str, payload: object, *, mode: DiscordMode, message_id: str | None
) -> Answer:
    """Make the requests of one run; the answer that decides its outcome (the last one, or the
    deletion's when `replace` could not delete the previous message)."""
    if message_id and mode is DiscordMode.EDIT:
        edited = await call("PATCH", message_url(url, message_id), payload)
        if edited.status != 404:
            return edited
    elif message_id and mode is DiscordMode.REPLACE:
        deleted = await call("DELETE", message_url(url, message_id), None)
        if not _ok_or_gone(deleted):
            return deleted
    return await call("POST", with_wait_true(url), payload)


async def delete_message(call: Call, url: str, message_id: str) -> Answer:
    """Delete a message the webhook posted; a 404 (already gone) is answered as 204."""
    answer = await call("DELETE", message_url(url, message_id), None)
    if answer.status == 404:
        return Answer(204, answer.headers, "")
    return answer
