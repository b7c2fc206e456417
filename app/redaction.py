"""Hiding the secret parts of URLs, wherever a text is logged.

`redact(text)` finds every URL in a text (`scheme://...` up to whitespace, a quote, `<`, `>`, a
backslash or a control character; trailing `.,;:!?)]}` stay outside) and replaces its secret
parts with `***`. The scheme, the host and port, and the rest of the URL stay as they were,
character for character:

* a userinfo password: `https://user:***@host/`;
* every query value, and the fragment: `?wait=***&sig=***`, `#***`;
* a Discord webhook token, on any host (relays, test doubles): `/api[/vN]/webhooks/<id>/***`;
* a Telegram bot token: `/bot<id>:***/sendMessage`;
* everything after a Slack-style `/services/`: `/services/***`;
* in http(s) and ws(s) URLs, any other path segment of 16 or more characters that is not all
  digits: Teams, Mattermost and most other webhooks carry a generated key there, while ids made
  of digits (Discord's snowflakes) are harmless.

The Discord, Telegram and Slack paths and `sig=`-like query parameters are hidden where they
stand without a scheme and host too (an HTTP request line: `POST /api/webhooks/1/*** HTTP/1.1`).
A text with no URL and no such path comes back unchanged. `redact` never raises: should the text
defeat it, the whole text is withheld rather than risk a secret.

`url_host(url)` is what logs name a target by, with the task id: the host, never the path.
"""

import re
from urllib.parse import urlsplit

__all__ = ["REDACTED", "WITHHELD", "redact", "url_host"]

REDACTED = "***"
WITHHELD = "<text withheld: it could not be redacted>"

# What ends a URL in running text: whitespace, quotes, angle brackets, backslashes (escapes in
# a repr or in JSON), backticks and control characters. Punctuation at its very end is prose.
_STOP = r"\s\"'<>\\`\x00-\x1f\x7f"
_TRAILING = ".,;:!?)]}"
_URL = re.compile(rf"[a-z][a-z0-9+.\-]{{0,30}}://[^{_STOP}]*", re.IGNORECASE)
# A password after "scheme://user:", up to the host's "@"; also in a second URL that follows
# the first one without a space (a comma-separated list).
_PASSWORD = re.compile(r"(://[^/?#@:]*:)[^/?#]*@")

# A secret that runs to the end of its path segment, its last character not prose punctuation.
_SEGMENT_SECRET = rf"[^/?#{_STOP}]*[^/?#{_STOP}{re.escape(_TRAILING)}]"
_DISCORD = re.compile(rf"(/api/(?:v\d{{1,3}}/)?webhooks/[^/?#{_STOP}]+/){_SEGMENT_SECRET}", re.I)
_TELEGRAM = re.compile(rf"(/bot\d{{1,20}}:){_SEGMENT_SECRET}", re.IGNORECASE)
_SLACK = re.compile(r"(/services/)[^?#]+", re.IGNORECASE)
# Outside a URL, only a path shaped like Slack's: /services/T.../B.../<secret>.
_SLACK_BARE = re.compile(rf"(/services/)T[A-Z0-9]+/B[A-Z0-9]+/{_SEGMENT_SECRET}")
_SECRET_PARAMETER = re.compile(
    r"([?&][\w.\-]{0,40}(?:sig|token|key|secret|code|pass|auth)[\w.\-]{0,40}=)"
    rf"[^&#{_STOP}]*[^&#{_STOP}{re.escape(_TRAILING)}]",
    re.IGNORECASE,
)
_HIDE = rf"\1{REDACTED}"
_PATH_RULES = (_DISCORD, _TELEGRAM, _SLACK)
_TEXT_RULES = (_DISCORD, _TELEGRAM, _SLACK_BARE, _SECRET_PARAMETER)

_KEY_SEGMENT_MIN = 16
_WEB_SCHEMES = ("http", "https", "ws", "wss")


def redact(text: object) -> str:
    """`text` (or `str()` of any other value) with the secret parts of every URL in it replaced
    by `***`; never raises."""
    try:
        if not isinstance(text, str):
            text = str(text)
        if "/" in text or "=" in text:
            for pattern in _TEXT_RULES:
                text = pattern.sub(_HIDE, text)
        if "://" in text:
            text = _URL.sub(_redact_match, text)
        return text
    except Exception:  # logging must go on, and nothing unredacted may go out
        return WITHHELD


def url_host(url: str) -> str:
    """The host of `url`, lower-case, without userinfo or port ("" when there is none)."""
    try:
        return urlsplit(url.strip()).hostname or ""
    except (ValueError, AttributeError, TypeError):
        return ""


def _redact_match(match: re.Match[str]) -> str:
    """One URL found in a text, redacted; trailing punctuation is left as it was."""
    found = match.group()
    url = found.rstrip(_TRAILING)
    return _redact_url(url) + found[len(url) :]


def _redact_url(url: str) -> str:
    """One `scheme://...` URL with its secret parts replaced by `***`, the rest verbatim."""
    scheme, _, rest = _PASSWORD.sub(rf"\1{REDACTED}@", url).partition("://")
    rest, hash_sign, fragment = rest.partition("#")
    rest, question_mark, query = rest.partition("?")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    path = _redact_path(path, web=scheme.lower().endswith(_WEB_SCHEMES))
    query = _redact_query(query)
    fragment = REDACTED if fragment else ""
    return f"{scheme}://{authority}{path}{question_mark}{query}{hash_sign}{fragment}"


def _redact_path(path: str, *, web: bool) -> str:
    """A URL's path with Discord, Telegram and Slack secrets hidden, and (`web`) long keys."""
    for pattern in _PATH_RULES:
        path = pattern.sub(_HIDE, path)
    if not web:
        return path
    return "/".join(_redact_segment(segment) for segment in path.split("/"))


def _redact_segment(segment: str) -> str:
    """A path segment, or `***` if it looks like a generated key."""
    if len(segment) < _KEY_SEGMENT_MIN or segment.isdigit() or REDACTED in segment:
        return segment
    return REDACTED


def _redact_query(query: str) -> str:
    """A query string with every value hidden; the parameter names stay."""
    return "&".join(_redact_parameter(parameter) for parameter in query.split("&"))


def _redact_parameter(parameter: str) -> str:
    """`name=***` for `name=value`; a bare parameter (which may be a key itself) is hidden."""
    name, equals, value = parameter.partition("=")
    if equals:
        return f"{name}={REDACTED}" if value else parameter
    return REDACTED if parameter else parameter
