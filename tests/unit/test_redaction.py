"""The one redactor: secret parts of URLs hidden anywhere in a text, everything else untouched."""

import json

import pytest

from app.redaction import REDACTED, WITHHELD, redact, url_host

DISCORD_TOKEN = "dIsCoRdToKeN-0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"
SLACK_SECRET = "sLaCkSeCrEt0123456789abc"
TEAMS_SIG = "tEaMsSiG0123456789abcdefghijklmnopqrstuvwx"
TELEGRAM_TOKEN = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
PASSWORD = "pAsSwOrD-hunter2"

# (URL, what its redacted form is): scheme, host and port stay; secrets become ***.
EXAMPLES = [
    (
        f"https://discord.com/api/webhooks/123456789012345678/{DISCORD_TOKEN}",
        "https://discord.com/api/webhooks/123456789012345678/***",
    ),
    (
        f"https://discord.com/api/webhooks/123456789012345678/{DISCORD_TOKEN}?wait=true",
        "https://discord.com/api/webhooks/123456789012345678/***?wait=***",
    ),
    (
        f"https://canary.discordapp.com/api/v10/webhooks/1/{DISCORD_TOKEN}/messages/1234567890123",
        "https://canary.discordapp.com/api/v10/webhooks/1/***/messages/1234567890123",
    ),
    (
        f"https://ptb.discord.com/api/webhooks/1/{DISCORD_TOKEN}/github",
        "https://ptb.discord.com/api/webhooks/1/***/github",
    ),
    (
        f"http://DISCORD.com:443/API/Webhooks/1/{DISCORD_TOKEN[:5]}",  # short token, any case
        "http://DISCORD.com:443/API/Webhooks/1/***",
    ),
    (
        f"https://relay.example.net:8443/api/webhooks/42/{DISCORD_TOKEN}",  # a relay: any host
        "https://relay.example.net:8443/api/webhooks/42/***",
    ),
    (
        f"https://hooks.slack.com/services/T00000000/B00000000/{SLACK_SECRET}",
        "https://hooks.slack.com/services/***",
    ),
    (
        "https://prod-12.westeurope.logic.azure.com:443/workflows/6f1c0d2e3a4b5c6d7e8f9a0b1c2d3e4f"
        "/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun"
        f"&sv=1.0&sig={TEAMS_SIG}",
        "https://prod-12.westeurope.logic.azure.com:443/workflows/***/triggers/manual/paths/invoke"
        "?api-version=***&sp=***&sv=***&sig=***",
    ),
    (
        "https://contoso.webhook.office.com/webhookb2/0e4a1b2c-1111-2222-3333-444455556666@72f98bf1"
        "-aaaa-bbbb-cccc-ddddeeeeffff/IncomingWebhook/8b3c0123456789abcdef0123456789ab/1d6e2222"
        f"-3333-4444-5555-666677778888/{TEAMS_SIG}",
        "https://contoso.webhook.office.com/webhookb2/***/IncomingWebhook/***/***/***",
    ),
    (
        f"https://api.telegram.org/bot123456789:{TELEGRAM_TOKEN}/sendMessage?chat_id=42",
        "https://api.telegram.org/bot123456789:***/sendMessage?chat_id=***",
    ),
    (
        f"https://api.telegram.org/file/bot123456789:{TELEGRAM_TOKEN}/photos/1.jpg",
        "https://api.telegram.org/file/bot123456789:***/photos/1.jpg",
    ),
    (f"https://user:{PASSWORD}@example.com:8443/x", "https://user:***@example.com:8443/x"),
    (f"https://user:{PASSWORD}@with@at.example/x", "https://user:***@at.example/x"),
    (f"http://user:{PASSWORD}@[::1]:8080/x", "http://user:***@[::1]:8080/x"),
    (
        f"postgresql://postgres:{PASSWORD}@db:5432/insignia?sslmode=require",
        "postgresql://postgres:***@db:5432/insignia?sslmode=***",
    ),
    (
        f"https://example.com/hook?token={PASSWORD}&key=k&secret=s&signature=x&code=c#frag",
        "https://example.com/hook?token=***&key=***&secret=***&signature=***&code=***#***",
    ),
    ("https://example.com/hook?flag&empty=", "https://example.com/hook?***&empty="),
    # Path segments: 16+ characters hide as a generated key, unless all digits.
    ("https://example.com/123456789012345/x", "https://example.com/123456789012345/x"),
    ("https://example.com/12345678901234567890/x", "https://example.com/12345678901234567890/x"),
    ("https://example.com/abcdefghijklmnop/x", "https://example.com/***/x"),
    ("https://chat.example/hooks/xmw5oj8c6tfxdq3f7r1ofnr3ny", "https://chat.example/hooks/***"),
    # Nothing secret: the URL comes back as it was.
    ("https://hooks.example.com/launch", "https://hooks.example.com/launch"),
    ("https://Example.COM/Path/", "https://Example.COM/Path/"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("https://example.com:99999/x", "https://example.com:99999/x"),
    ("file:///etc/passwd", "file:///etc/passwd"),
    (
        "sqlite:///./some/long/database/path/insignia.db",
        "sqlite:///./some/long/database/path/insignia.db",
    ),
]


@pytest.mark.parametrize(("url", "expected"), EXAMPLES)
def test_each_kind_of_url_keeps_its_host_and_loses_its_secret(url, expected):
    assert redact(url) == expected


# Ways a URL sits in a text: prose, punctuation, quotes, a repr, JSON, SQL parameters, a list.
CONTEXTS = [
    "delivery to {} failed",
    "({}).",
    "see {}, then retry",
    "<{}>",
    "'{}'",
    '"{}"',
    "`{}`",
    "url={}\nnext line",
    "{}\ttab",
    "[parameters: ('{}', 'name', 3)]",
    "ClientResponseError(url=URL('{}'))",
]


@pytest.mark.parametrize("context", CONTEXTS)
@pytest.mark.parametrize(("url", "expected"), EXAMPLES[:17])
def test_urls_are_found_wherever_they_sit_in_a_text(context, url, expected):
    assert redact(context.format(url)) == context.format(expected)


def test_urls_in_json_and_repr_output_are_redacted():
    url = f"https://discord.com/api/webhooks/1/{DISCORD_TOKEN}"
    for text in (json.dumps({"url": url, "n": 1}), repr([url, url]), repr({"u": (url,)})):
        assert DISCORD_TOKEN not in redact(text)
        assert "discord.com/api/webhooks/1/***" in redact(text)


def test_several_urls_in_one_text_even_without_spaces():
    text = (
        f"a https://hooks.slack.com/services/T1/B2/{SLACK_SECRET} b "
        f"https://x.example/h?sig={TEAMS_SIG},https://u:{PASSWORD}@y.example/z"
    )
    assert redact(text) == (
        "a https://hooks.slack.com/services/*** b https://x.example/h?sig=***"
    )  # the comma's second URL lies inside the first one's query value
    glued = f"https://a.example/x,https://u:{PASSWORD}@b.example/y"
    assert redact(glued) == "https://a.example/x,https://u:***@b.example/y"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"POST /api/webhooks/1/{DISCORD_TOKEN}?wait=true HTTP/1.1",
            "POST /api/webhooks/1/***?wait=true HTTP/1.1",
        ),
        (f"GET /services/T0001/B0002/{SLACK_SECRET}. done", "GET /services/***. done"),
        (f"/bot123:{TELEGRAM_TOKEN}/getMe", "/bot123:***/getMe"),
        (f"invoke?api-version=1&sig={TEAMS_SIG}", "invoke?api-version=1&sig=***"),
        (f"?access_token={PASSWORD}).", "?access_token=***)."),
        (f"?sig={TEAMS_SIG}.https://x", "?sig=***"),  # a scheme glued on: still the value
    ],
)
def test_secret_paths_without_scheme_and_host_are_hidden_too(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "delivery failed: HTTP 500 from webhook",
        "a=b&c=d, code=10015 token=abc key=value",
        "path /usr/lib/services/x and /api/other/1/2",
        "ratio 3:4, time 10:00:00, C:\\Users\\x",
        "see example.com/path?x=1 (no scheme)",
        "emoji ✓ and accents é, 日本語",
        "scheme-ish words: https:// alone, ://, mailto:someone@example.com",
        "line\nbreak\r\x1b[31m red \x00 nul \u2028 sep",
        "lone \ud800 surrogate \udfff here",
    ],
)
def test_text_without_urls_is_left_untouched(text):
    assert redact(text) == text


@pytest.mark.parametrize(
    "junk",
    [
        "http://[::1",
        "https://[not-an-ip]/x",
        "http://exa mple.com/\r\nInjected: header",
        "://",
        "http://",
        "%%%",
        "https://example.com:-1/",
        "https://\ud800\udfff/api/webhooks/1/\ud83d",
        "h" * 40 + "://" + "a" * 40,
        "a" * 100_000,
        "a://" * 20_000,
        "https://" + ":@" * 20_000,
        "?sig=" + "." * 50_000,
        "/api/webhooks/" * 10_000,
        None,
        123,
        b"https://u:pw@example.com/",
        object(),
    ],
)
def test_hostile_input_never_raises(junk):
    assert isinstance(redact(junk), str)


def test_secrets_in_a_hostile_text_still_go():
    text = f"\ud800https://discord.com/api/webhooks/1/{DISCORD_TOKEN}\udfff\x00"
    assert DISCORD_TOKEN not in redact(text)
    assert redact(b"https://u:" + PASSWORD.encode() + b"@example.com/") == (
        "b'https://u:***@example.com/'"
    )


def test_a_text_that_defeats_the_redactor_is_withheld():
    class Unprintable:
        def __str__(self):
            raise RuntimeError(f"https://discord.com/api/webhooks/1/{DISCORD_TOKEN}")

    assert redact(Unprintable()) == WITHHELD


def test_redaction_is_idempotent():
    for url, expected in EXAMPLES:
        assert redact(redact(url)) == expected
    assert REDACTED == "***"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        (f"https://discord.com/api/webhooks/1/{DISCORD_TOKEN}", "discord.com"),
        (f"https://user:{PASSWORD}@Hooks.Example.com:8443/x?sig=1", "hooks.example.com"),
        ("http://[::1]:8080/x", "::1"),
        ("not a url", ""),
        ("http://[::1", ""),
        (None, ""),
    ],
)
def test_url_host_names_the_host_only(url, host):
    assert url_host(url) == host  # type: ignore[arg-type]
