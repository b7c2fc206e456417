"""Text that every database and log line can hold.

PostgreSQL refuses NUL characters in text, and no UTF-8 codec encodes an unpaired surrogate
(which `json.loads` happily produces from `"\\ud800"`). Whatever comes from outside and is
stored or logged goes through `scrub` first.
"""

import re

REPLACEMENT = "\ufffd"
# NUL, and any surrogate code point (a paired one never survives decoding into a str).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def is_storable(text: str) -> bool:
    """Whether `text` has no NUL character and no unpaired surrogate."""
    return _UNSTORABLE.search(text) is None


def scrub(text: str) -> str:
    """`text` with NUL characters and unpaired surrogates replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def scrub_optional(text: str | None, *, limit: int | None = None) -> str | None:
    """`scrub` for a value that may be missing, cut to `limit` characters first."""
    if text is None:
        return None
    return scrub(text if limit is None else text[:limit])


def plain(text: str | None) -> str | None:
    """Printable ASCII only (the last resort when a value still cannot be written)."""
    if text is None:
        return None
    return "".join(c if " " <= c <= "~" else "?" for c in text)
