"""Discord webhook recognition, payload limits and URL helpers.

Pure functions, no I/O. The limits follow the Discord developer documentation
(https://discord.com/developers/docs/resources/message and .../resources/webhook):

* ``content`` at most 2000 characters, ``username`` at most 80;
* at most 10 embeds; per embed: title 256, description 4096, at most 25 fields,
  field name 256, field value 1024, footer text 2048, author name 256;
* the title, description, field names, field values, footer text and author name of
  *all* embeds of one message together at most 6000 characters.

Characters are counted as Python ``len()`` of the string. Validation never raises: type
problems (``content`` not a string, an embed that is not an object, ...) are reported as
messages, each starting with the JSON path of the offending part.

Decision on ``http://``: a URL on a Discord host with a webhook path counts as a Discord
webhook URL whatever its scheme is (http or https). It still carries the webhook token,
so it must be redacted like any other, and payloads sent to it are subject to the same
limits. Whether plain http is an acceptable target at all is not decided here.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

__all__ = [
    "CONTENT_MAX",
    "EMBEDS_MAX",
    "EMBED_TOTAL_MAX",
    "USERNAME_MAX",
    "is_discord_webhook_url",
    "validate_discord_payload",
    "webhook_id",
    "with_wait_true",
]

CONTENT_MAX = 2000
USERNAME_MAX = 80
EMBEDS_MAX = 10
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
EMBED_FIELD_NAME_MAX = 256
EMBED_FIELD_VALUE_MAX = 1024
EMBED_FOOTER_TEXT_MAX = 2048
EMBED_AUTHOR_NAME_MAX = 256
EMBED_TOTAL_MAX = 6000

DISCORD_HOSTS = frozenset(
    f"{prefix}{domain}"
    for domain in ("discord.com", "discordapp.com")
    for prefix in ("", "ptb.", "canary.")
)
_DEFAULT_PORTS = {"https": 443, "http": 80}

# /api/webhooks/... or /api/v10/webhooks/...; group 1 is everything up to and including
# "webhooks/", group 2 the rest ("{id}/{token}/...").
_WEBHOOK_PATH = re.compile(r"^(/api/(?:v\d+/)?webhooks/)(.*)$", re.DOTALL)

# Keys that make a message non-empty ("files" is the multipart upload, not a JSON key,
# but callers may pass it along).
_SENDABLE_KEYS = ("content", "embeds", "components", "files", "attachments", "sticker_ids", "poll")
_LIST_KEYS = ("components", "files", "attachments", "sticker_ids")


# --------------------------------------------------------------------------- URLs


def _split(url: str) -> SplitResult | None:
    """urlsplit that returns None instead of raising (bad IPv6 brackets, non-strings)."""
    if not isinstance(url, str):
        return None
    try:
        return urlsplit(url.strip())
    except ValueError:
        return None


def _port(parts: SplitResult) -> int | None:
    """The explicit port, None if absent, -1 if present but invalid."""
    try:
        return parts.port
    except ValueError:
        return -1


def _is_discord_parts(parts: SplitResult, extra_hosts: Collection[str] = ()) -> bool:
    if parts.scheme not in _DEFAULT_PORTS:
        return False
    host = (parts.hostname or "").lower()
    if host.endswith("."):
        host = host[:-1]
    port = _port(parts)
    if host in extra_hosts or (port is not None and f"{host}:{port}" in extra_hosts):
        return _WEBHOOK_PATH.match(parts.path) is not None
    if host not in DISCORD_HOSTS:
        return False
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        return False
    return _WEBHOOK_PATH.match(parts.path) is not None


def is_discord_webhook_url(url: str, extra_hosts: Collection[str] = ()) -> bool:
    """True if ``url`` is an http(s) URL on a Discord host with an ``/api[/vN]/webhooks/`` path.

    ``extra_hosts`` (lower-case ``host`` or ``host:port``) are treated as Discord too: a
    Discord-compatible relay, or a test double."""
    parts = _split(url)
    return parts is not None and _is_discord_parts(parts, extra_hosts)


def webhook_id(url: str) -> str:
    """The webhook's id segment of a Discord webhook URL ("" when there is none)."""
    parts = _split(url)
    match = _WEBHOOK_PATH.match(parts.path) if parts is not None else None
    return match.group(2).split("/", 1)[0] if match else ""


def with_wait_true(url: str) -> str:
    """Return ``url`` with ``wait=true`` in its query, replacing any ``wait``; others kept."""
    parts = urlsplit(url)
    pieces: list[str] = []
    placed = False
    for piece in parts.query.split("&"):
        if not piece:
            continue
        key = unquote(piece.split("=", 1)[0].replace("+", " "))
        if key == "wait":
            if not placed:  # replace the first wait= in place, drop any duplicates
                pieces.append("wait=true")
                placed = True
            continue
        pieces.append(piece)
    if not placed:
        pieces.append("wait=true")
    return urlunsplit(parts._replace(query="&".join(pieces)))


# ----------------------------------------------------------------------- payloads


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _has_something(value: Any) -> bool:
    """Whether a sendable key holds something; wrongly typed values count (reported elsewhere)."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() != ""
    if isinstance(value, (list, tuple, dict)):
        return len(value) > 0
    return True


def _check_text(
    errors: list[str], path: str, value: Any, limit: int, *, required: bool = False
) -> int:
    """Check one string field; return the length that counts towards the embed total."""
    if value is None:
        if required:
            errors.append(f"{path}: is required")
        return 0
    if not isinstance(value, str):
        errors.append(f"{path}: must be a string")
        return 0
    if required and value.strip() == "":
        errors.append(f"{path}: must not be empty")
    if len(value) > limit:
        errors.append(f"{path}: at most {limit} characters (got {len(value)})")
    return len(value)


def _check_object(errors: list[str], path: str, value: Any) -> bool:
    """True if ``value`` is a dict; records a type error unless it is None/absent."""
    if value is None:
        return False
    if not isinstance(value, dict):
        errors.append(f"{path}: must be an object")
        return False
    return True


def _check_embed(errors: list[str], path: str, embed: Any) -> int:
    """Validate one embed; return its number of characters counting towards the total."""
    if not isinstance(embed, dict):
        errors.append(f"{path}: must be an object")
        return 0
    total = _check_text(errors, f"{path}.title", embed.get("title"), EMBED_TITLE_MAX)
    total += _check_text(
        errors, f"{path}.description", embed.get("description"), EMBED_DESCRIPTION_MAX
    )

    total += _check_fields(errors, f"{path}.fields", embed.get("fields"))

    footer = embed.get("footer")
    if _check_object(errors, f"{path}.footer", footer):
        total += _check_text(
            errors, f"{path}.footer.text", footer.get("text"), EMBED_FOOTER_TEXT_MAX, required=True
        )

    author = embed.get("author")
    if _check_object(errors, f"{path}.author", author):
        total += _check_text(
            errors, f"{path}.author.name", author.get("name"), EMBED_AUTHOR_NAME_MAX, required=True
        )
    return total


def _check_fields(errors: list[str], path: str, fields: Any) -> int:
    """Validate an embed's fields; return their characters counting towards the total."""
    if fields is None:
        return 0
    if not _is_list(fields):
        errors.append(f"{path}: must be a list")
        return 0
    if len(fields) > EMBED_FIELDS_MAX:
        errors.append(f"{path}: at most {EMBED_FIELDS_MAX} fields (got {len(fields)})")
    total = 0
    for i, field in enumerate(fields):
        fpath = f"{path}[{i}]"
        if not isinstance(field, dict):
            errors.append(f"{fpath}: must be an object")
            continue
        total += _check_text(
            errors, f"{fpath}.name", field.get("name"), EMBED_FIELD_NAME_MAX, required=True
        )
        total += _check_text(
            errors, f"{fpath}.value", field.get("value"), EMBED_FIELD_VALUE_MAX, required=True
        )
    return total


def validate_discord_payload(payload: dict) -> list[str]:
    """Return the problems with a Discord execute-webhook payload; an empty list means valid."""
    if not isinstance(payload, dict):
        return ["payload: must be an object"]
    errors: list[str] = []

    _check_text(errors, "content", payload.get("content"), CONTENT_MAX)
    _check_text(errors, "username", payload.get("username"), USERNAME_MAX)

    embeds = payload.get("embeds")
    if embeds is not None:
        if not _is_list(embeds):
            errors.append("embeds: must be a list")
        else:
            if len(embeds) > EMBEDS_MAX:
                errors.append(f"embeds: at most {EMBEDS_MAX} embeds (got {len(embeds)})")
            total = sum(_check_embed(errors, f"embeds[{i}]", e) for i, e in enumerate(embeds))
            if total > EMBED_TOTAL_MAX:
                errors.append(
                    f"embeds: all embeds together may hold at most {EMBED_TOTAL_MAX} "
                    f"characters (got {total})"
                )

    for key in _LIST_KEYS:
        value = payload.get(key)
        if value is not None and not _is_list(value):
            errors.append(f"{key}: must be a list")
    _check_object(errors, "poll", payload.get("poll"))

    if not any(_has_something(payload.get(key)) for key in _SENDABLE_KEYS):
        errors.append(
            "payload: a Discord message needs content, embeds, components, files, "
            "attachments, sticker_ids or a poll"
        )
    return errors
