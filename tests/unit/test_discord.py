"""Unit tests for app.delivery.discord (pure functions, no network)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from app.delivery.discord import (
    is_discord_webhook_url,
    validate_discord_payload,
    with_wait_true,
)

TOKEN = "Zx9_secretTOKENvalue-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN"
WEBHOOK = f"https://discord.com/api/webhooks/123456789012345678/{TOKEN}"

NEEDS_SOMETHING = (
    "payload: a Discord message needs content, embeds, components, files, attachments, "
    "sticker_ids or a poll"
)


# ------------------------------------------------------------ is_discord_webhook_url


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.com/api/webhooks/1/abc",
        WEBHOOK,
        "https://discordapp.com/api/webhooks/1/abc",
        "https://ptb.discord.com/api/webhooks/1/abc",
        "https://canary.discord.com/api/webhooks/1/abc",
        "https://ptb.discordapp.com/api/webhooks/1/abc",
        "https://canary.discordapp.com/api/webhooks/1/abc",
        "https://discord.com/api/v10/webhooks/123/abc",
        "https://discord.com/api/v9/webhooks/123/abc",
        "https://DISCORD.COM/api/webhooks/1/abc",
        "https://Canary.Discord.Com/api/webhooks/1/abc",
        "https://discord.com./api/webhooks/1/abc",
        "https://discord.com:443/api/webhooks/1/abc",
        "https://discord.com/api/webhooks/1/abc?thread_id=5&wait=true",
        "https://discord.com/api/webhooks/1/abc/github",
        # Decision: http on a Discord host is still a Discord webhook URL (token inside).
        "http://discord.com/api/webhooks/1/abc",
        "http://discord.com:80/api/webhooks/1/abc",
        "  https://discord.com/api/webhooks/1/abc  ",
    ],
)
def test_is_discord_webhook_url_positive(url: str) -> None:
    assert is_discord_webhook_url(url) is True


@pytest.mark.parametrize(
    "url",
    [
        "https://discord.com.evil.example/api/webhooks/1/abc",
        "https://evil.com/api/webhooks/1/abc",
        "https://evildiscord.com/api/webhooks/1/abc",
        "https://www.discord.com/api/webhooks/1/abc",
        "https://discord.gg/api/webhooks/1/abc",
        "https://discord.com@evil.com/api/webhooks/1/abc",
        "https://evil.com/?https://discord.com/api/webhooks/1/abc",
        "https://evil.com/https://discord.com/api/webhooks/1/abc",
        "https://discord.com/api/channels/1/messages",
        "https://discord.com/webhooks/1/abc",
        "https://discord.com/api/vx/webhooks/1/abc",
        "https://discord.com/API/webhooks/1/abc",
        "https://discord.com/api/webhooks",
        "https://discord.com:8443/api/webhooks/1/abc",
        "https://discord.com:80/api/webhooks/1/abc",
        "https://discord.com:notaport/api/webhooks/1/abc",
        "ftp://discord.com/api/webhooks/1/abc",
        "discord.com/api/webhooks/1/abc",
        "//discord.com/api/webhooks/1/abc",
        "https://[::1/api/webhooks/1/abc",
        "",
        "not a url",
    ],
)
def test_is_discord_webhook_url_negative(url: str) -> None:
    assert is_discord_webhook_url(url) is False


def test_is_discord_webhook_url_non_string_is_false() -> None:
    assert is_discord_webhook_url(None) is False  # type: ignore[arg-type]


# -------------------------------------------------------------------- with_wait_true


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://discord.com/api/webhooks/1/abc",
            "https://discord.com/api/webhooks/1/abc?wait=true",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?",
            "https://discord.com/api/webhooks/1/abc?wait=true",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?wait=false",
            "https://discord.com/api/webhooks/1/abc?wait=true",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?wait=true",
            "https://discord.com/api/webhooks/1/abc?wait=true",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?thread_id=42",
            "https://discord.com/api/webhooks/1/abc?thread_id=42&wait=true",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?wait=0&thread_id=42",
            "https://discord.com/api/webhooks/1/abc?wait=true&thread_id=42",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?wait&thread_id=42&wait=no",
            "https://discord.com/api/webhooks/1/abc?wait=true&thread_id=42",
        ),
        (
            "https://discord.com/api/webhooks/1/abc?thread_id=42&x=a%20b#frag",
            "https://discord.com/api/webhooks/1/abc?thread_id=42&x=a%20b&wait=true#frag",
        ),
        (
            "https://example.com/hook?waiting=1",
            "https://example.com/hook?waiting=1&wait=true",
        ),
    ],
)
def test_with_wait_true(url: str, expected: str) -> None:
    result = with_wait_true(url)
    assert result == expected
    assert [v for k, v in _query(result) if k == "wait"] == ["true"]


def test_with_wait_true_keeps_thread_id_and_is_idempotent() -> None:
    once = with_wait_true(WEBHOOK + "?thread_id=987654321")
    assert ("thread_id", "987654321") in _query(once)
    assert with_wait_true(once) == once
    assert urlsplit(once).path == urlsplit(WEBHOOK).path


# ------------------------------------------------------------ validate_discord_payload


def test_minimal_payloads_are_valid() -> None:
    assert validate_discord_payload({"content": "hello"}) == []
    assert validate_discord_payload({"embeds": [{"title": "t"}]}) == []
    assert validate_discord_payload({"content": "hi", "username": "bot", "embeds": []}) == []


def _grow(obj: object, path: list[object]) -> None:
    """Append one character to the string found at ``path`` inside ``obj``."""
    for key in path[:-1]:
        obj = obj[key]  # type: ignore[index]
    obj[path[-1]] += "x"  # type: ignore[index]


@pytest.mark.parametrize(
    ("payload", "path", "message"),
    [
        ({"content": "x" * 2000}, ["content"], "content: at most 2000 characters (got 2001)"),
        (
            {"content": "hi", "username": "u" * 80},
            ["username"],
            "username: at most 80 characters (got 81)",
        ),
        (
            {"embeds": [{"title": "t" * 256}]},
            ["embeds", 0, "title"],
            "embeds[0].title: at most 256 characters (got 257)",
        ),
        (
            {"embeds": [{"description": "d" * 4096}]},
            ["embeds", 0, "description"],
            "embeds[0].description: at most 4096 characters (got 4097)",
        ),
        (
            {"embeds": [{"title": "ok"}, {"fields": [{"name": "n" * 256, "value": "v"}]}]},
            ["embeds", 1, "fields", 0, "name"],
            "embeds[1].fields[0].name: at most 256 characters (got 257)",
        ),
        (
            {"embeds": [{"footer": {"text": "f" * 2048}}]},
            ["embeds", 0, "footer", "text"],
            "embeds[0].footer.text: at most 2048 characters (got 2049)",
        ),
        (
            {"embeds": [{"author": {"name": "a" * 256}}]},
            ["embeds", 0, "author", "name"],
            "embeds[0].author.name: at most 256 characters (got 257)",
        ),
    ],
)
def test_each_character_limit_exactly_and_one_over(
    payload: dict, path: list[object], message: str
) -> None:
    # Exactly at the limit: valid. One character more: exactly one message, right path.
    assert validate_discord_payload(payload) == []
    _grow(payload, path)
    assert validate_discord_payload(payload) == [message]


def test_field_value_one_over_in_second_embed_fourth_field() -> None:
    fields = [{"name": f"n{i}", "value": "v"} for i in range(4)]
    payload = {"embeds": [{"title": "t"}, {"fields": fields}]}
    fields[3]["value"] = "v" * 1024
    assert validate_discord_payload(payload) == []
    fields[3]["value"] = "v" * 2000
    assert validate_discord_payload(payload) == [
        "embeds[1].fields[3].value: at most 1024 characters (got 2000)"
    ]


def test_content_limit_message_example() -> None:
    assert validate_discord_payload({"content": "x" * 2001}) == [
        "content: at most 2000 characters (got 2001)"
    ]


def test_title_limit_message_example() -> None:
    assert validate_discord_payload({"embeds": [{"title": "x" * 300}]}) == [
        "embeds[0].title: at most 256 characters (got 300)"
    ]


@pytest.mark.parametrize(("count", "ok"), [(0, True), (1, True), (10, True), (11, False)])
def test_embed_count_limit(count: int, ok: bool) -> None:
    payload = {"content": "hi", "embeds": [{"title": "t"} for _ in range(count)]}
    errors = validate_discord_payload(payload)
    assert errors == ([] if ok else [f"embeds: at most 10 embeds (got {count})"])


@pytest.mark.parametrize(("count", "ok"), [(25, True), (26, False)])
def test_field_count_limit(count: int, ok: bool) -> None:
    fields = [{"name": "n", "value": "v"} for _ in range(count)]
    errors = validate_discord_payload({"embeds": [{"title": "t"}, {"fields": fields}]})
    assert errors == ([] if ok else [f"embeds[1].fields: at most 25 fields (got {count})"])


def _two_embeds_totalling(total: int) -> dict:
    """Two embeds, each part within its own limit, whose counted characters sum to total."""
    first = {
        "title": "a" * 256,
        "description": "b" * 2000,
        "fields": [{"name": "c" * 100, "value": "d" * 500}],
        "footer": {"text": "e" * 100, "icon_url": "https://example.com/" + "z" * 5000},
        "author": {"name": "f" * 44, "url": "https://example.com/" + "z" * 5000},
    }  # 3000 counted characters; URLs do not count
    remaining = total - 3000  # 3000..3100: title 200 + field 2 + the rest in the description
    second = {
        "title": "j" * 200,
        "description": "g" * (remaining - 202),
        "fields": [{"name": "h", "value": "i"}],
    }
    return {"embeds": [first, second]}


def test_embed_total_exactly_6000_across_two_embeds_is_valid() -> None:
    assert validate_discord_payload(_two_embeds_totalling(6000)) == []


@pytest.mark.parametrize("total", [6001, 6100])
def test_embed_total_over_6000_across_two_embeds(total: int) -> None:
    assert validate_discord_payload(_two_embeds_totalling(total)) == [
        f"embeds: all embeds together may hold at most 6000 characters (got {total})"
    ]


def test_total_reported_alongside_per_part_errors() -> None:
    payload = {"embeds": [{"description": "d" * 4097}, {"description": "d" * 2000}]}
    assert validate_discord_payload(payload) == [
        "embeds[0].description: at most 4096 characters (got 4097)",
        "embeds: all embeds together may hold at most 6000 characters (got 6097)",
    ]


def test_content_does_not_count_towards_embed_total() -> None:
    payload = {"content": "x" * 2000, "embeds": [{"description": "d" * 4096}, {"title": "t" * 256}]}
    assert validate_discord_payload(payload) == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"content": 5}, ["content: must be a string"]),
        ({"content": ["a"]}, ["content: must be a string"]),
        ({"content": True}, ["content: must be a string"]),
        ({"content": "hi", "username": 7}, ["username: must be a string"]),
        ({"embeds": {"title": "t"}}, ["embeds: must be a list"]),
        ({"embeds": "title"}, ["embeds: must be a list"]),
        ({"embeds": ["x"]}, ["embeds[0]: must be an object"]),
        ({"embeds": [{"title": "ok"}, None]}, ["embeds[1]: must be an object"]),
        ({"embeds": [{"title": 3}]}, ["embeds[0].title: must be a string"]),
        ({"embeds": [{"description": {}}]}, ["embeds[0].description: must be a string"]),
        ({"embeds": [{"fields": {"name": "n"}}]}, ["embeds[0].fields: must be a list"]),
        ({"embeds": [{"fields": ["n"]}]}, ["embeds[0].fields[0]: must be an object"]),
        (
            {"embeds": [{"fields": [{"name": 1, "value": "v"}]}]},
            ["embeds[0].fields[0].name: must be a string"],
        ),
        ({"embeds": [{"fields": [{"value": "v"}]}]}, ["embeds[0].fields[0].name: is required"]),
        ({"embeds": [{"fields": [{"name": "n"}]}]}, ["embeds[0].fields[0].value: is required"]),
        (
            {"embeds": [{"fields": [{"name": "n", "value": ""}]}]},
            ["embeds[0].fields[0].value: must not be empty"],
        ),
        ({"embeds": [{"footer": "text"}]}, ["embeds[0].footer: must be an object"]),
        ({"embeds": [{"footer": {"text": 1}}]}, ["embeds[0].footer.text: must be a string"]),
        ({"embeds": [{"footer": {}}]}, ["embeds[0].footer.text: is required"]),
        ({"embeds": [{"author": ["a"]}]}, ["embeds[0].author: must be an object"]),
        ({"embeds": [{"author": {"url": "u"}}]}, ["embeds[0].author.name: is required"]),
        ({"components": {}, "content": "hi"}, ["components: must be a list"]),
        ({"sticker_ids": "1", "content": "hi"}, ["sticker_ids: must be a list"]),
        ({"attachments": 1, "content": "hi"}, ["attachments: must be a list"]),
        ({"files": "f", "content": "hi"}, ["files: must be a list"]),
        ({"poll": ["q"], "content": "hi"}, ["poll: must be an object"]),
    ],
)
def test_type_errors_are_reported_not_raised(payload: dict, expected: list[str]) -> None:
    assert validate_discord_payload(payload) == expected


@pytest.mark.parametrize("payload", [None, [], "content", 3])
def test_non_dict_payload(payload: object) -> None:
    assert validate_discord_payload(payload) == ["payload: must be an object"]  # type: ignore[arg-type]


def test_many_problems_are_all_reported() -> None:
    payload = {
        "content": "x" * 2001,
        "embeds": [{"title": "t" * 257}, "bad", {"fields": [{"name": "n", "value": "v" * 1025}]}],
    }
    assert validate_discord_payload(payload) == [
        "content: at most 2000 characters (got 2001)",
        "embeds[0].title: at most 256 characters (got 257)",
        "embeds[1]: must be an object",
        "embeds[2].fields[0].value: at most 1024 characters (got 1025)",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"content": ""},
        {"content": "   \n"},
        {"content": None},
        {"embeds": []},
        {"embeds": None},
        {"content": "", "embeds": [], "components": [], "sticker_ids": [], "attachments": []},
        {"username": "bot", "avatar_url": "https://example.com/a.png", "tts": True},
        {"poll": None, "files": []},
    ],
)
def test_nothing_to_send(payload: dict) -> None:
    assert validate_discord_payload(payload) == [NEEDS_SOMETHING]


@pytest.mark.parametrize(
    "payload",
    [
        {"content": "a"},
        {"embeds": [{"title": "t"}]},
        {"components": [{"type": 1, "components": []}]},
        {"files": ["report.csv"]},
        {"attachments": [{"id": 0, "filename": "a.txt"}]},
        {"sticker_ids": ["123"]},
        {"poll": {"question": {"text": "?"}, "answers": []}},
        {"content": "", "embeds": [{"description": "d"}]},
    ],
)
def test_something_to_send(payload: dict) -> None:
    assert validate_discord_payload(payload) == []


def test_wrongly_typed_content_is_not_also_reported_as_empty() -> None:
    assert validate_discord_payload({"content": 0}) == ["content: must be a string"]


@pytest.mark.parametrize(
    "url",
    [
        "https://relay.example:8443/api/webhooks/1/abc",
        "https://relay.example/api/webhooks/1/abc",
        "https://discord.com/api/webhooks/1/abc",
        "https://example.com/hook",
    ],
)
def test_extra_hosts_answer_alike_however_they_are_given(url: str):
    hosts = ["relay.example:8443"]
    answers = {is_discord_webhook_url(url, kind(hosts)) for kind in (list, tuple, frozenset, set)}
    assert len(answers) == 1
    assert answers.pop() is (url.startswith("https://relay.example:8443") or "discord" in url)
