"""Discord's limits on what a webhook may post, checked without sending anything.

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
"""

from typing import Any

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
THREAD_NAME_MAX = 100
APPLIED_TAGS_MAX = 5

# Keys that make a message non-empty ("files" is the multipart upload, not a JSON key,
# but callers may pass it along).
_SENDABLE_KEYS = ("content", "embeds", "components", "files", "attachments", "sticker_ids", "poll")
_LIST_KEYS = ("components", "files", "attachments", "sticker_ids")


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


def _check_forum_post(errors: list[str], payload: dict) -> None:
    """`thread_name` (a new forum post) 1-100 characters; `applied_tags` at most 5 tag ids."""
    if "thread_name" in payload:
        _check_text(errors, "thread_name", payload["thread_name"], THREAD_NAME_MAX, required=True)
    tags = payload.get("applied_tags")
    if tags is None:
        return
    if not _is_list(tags) or not all(isinstance(tag, str | int) for tag in tags):
        errors.append("applied_tags: must be a list of tag ids")
    elif len(tags) > APPLIED_TAGS_MAX:
        errors.append(f"applied_tags: at most {APPLIED_TAGS_MAX} tags (got {len(tags)})")


def validate_discord_payload(payload: dict) -> list[str]:
    """Return the problems with a Discord execute-webhook payload; an empty list means valid."""
    if not isinstance(payload, dict):
        return ["payload: must be an object"]
    errors: list[str] = []

    _check_text(errors, "content", payload.get("content"), CONTENT_MAX)
    _check_text(errors, "username", payload.get("username"), USERNAME_MAX)
    _check_forum_post(errors, payload)

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
