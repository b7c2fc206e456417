"""Recognising Discord webhook URLs, and the URLs of their messages.

Decision on ``http://``: a URL on a Discord host with a webhook path counts as a Discord webhook
URL whatever its scheme is (http or https). It still carries the webhook token, so it must be
redacted like any other, and payloads sent to it are subject to the same limits.
"""

import re
from collections.abc import Collection
from functools import lru_cache
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

DISCORD_HOSTS = frozenset(
    f"{prefix}{domain}"
    for domain in ("discord.com", "discordapp.com")
    for prefix in ("", "ptb.", "canary.")
)
_DEFAULT_PORTS = {"https": 443, "http": 80}

# /api/webhooks/... or /api/v10/webhooks/...; group 1 is everything up to and including
# "webhooks/", group 2 the rest ("{id}/{token}/...").
_WEBHOOK_PATH = re.compile(r"^(/api/(?:v\d+/)?webhooks/)(.*)$", re.DOTALL)


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
    Discord-compatible relay, or a test double. Remembered for hashable `extra_hosts` (the
    settings' frozenset): every delivery asks it, and the answer depends on nothing else."""
    if isinstance(extra_hosts, frozenset | tuple):
        return _is_discord_remembered(url, extra_hosts)
    return _is_discord(url, extra_hosts)


@lru_cache(maxsize=4096)
def _is_discord_remembered(url: str, extra_hosts: frozenset[str] | tuple[str, ...]) -> bool:
    return _is_discord(url, extra_hosts)


def _is_discord(url: str, extra_hosts: Collection[str]) -> bool:
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


def message_url(url: str, message_id: str) -> str:
    """The URL of one message the webhook posted (`…/messages/{id}`), for PATCH and DELETE:
    the webhook's query (its `thread_id`) kept, `wait` dropped."""
    parts = urlsplit(url)
    query = "&".join(
        piece
        for piece in parts.query.split("&")
        if piece and unquote(piece.split("=", 1)[0].replace("+", " ")) != "wait"
    )
    path = parts.path.rstrip("/") + f"/messages/{message_id}"
    return urlunsplit(parts._replace(path=path, query=query))
