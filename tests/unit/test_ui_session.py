"""The dashboard's session cookie and CSRF tokens: signed, expiring, holding no credential."""

import base64
import json

import pytest

from app.services.api_keys import hash_key
from app.ui.session import (
    SESSION_SECONDS,
    SessionKeys,
    csrf_matches,
    csrf_token,
    decode_session,
    encode_session,
    key_principal,
    new_session,
    token_principal,
)

KEYS = SessionKeys.derive(b"a stored secret of the dashboard")
OTHER_KEYS = SessionKeys.derive(b"the secret of another deployment")
NOW = 1_800_000_000.0
TOKEN = "test-token-0123456789abcdef"


def payload_of(cookie: str) -> dict:
    encoded = cookie.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))


def test_a_session_comes_back_from_its_cookie():
    session = new_session(token_principal(TOKEN, KEYS), now=NOW)
    assert session.exp == NOW + SESSION_SECONDS
    assert decode_session(encode_session(session, KEYS), KEYS, now=NOW + 60) == session


def test_the_cookie_holds_no_credential():
    for sub in (token_principal(TOKEN, KEYS), key_principal("isk_the-key-itself")):
        cookie = encode_session(new_session(sub, now=NOW), KEYS)
        assert TOKEN not in cookie and "the-key-itself" not in cookie
        assert TOKEN not in json.dumps(payload_of(cookie))
    assert key_principal("isk_k") == "key:" + hash_key("isk_k")  # what the database keeps


def test_the_token_principal_needs_the_server_key():
    assert token_principal(TOKEN, KEYS) != token_principal(TOKEN, OTHER_KEYS)
    assert token_principal(TOKEN, KEYS) == token_principal(TOKEN, KEYS)


def test_a_session_ends_at_its_expiry():
    cookie = encode_session(new_session(None, now=NOW), KEYS)
    assert decode_session(cookie, KEYS, now=NOW + SESSION_SECONDS - 1) is not None
    assert decode_session(cookie, KEYS, now=NOW + SESSION_SECONDS) is None


def forged(cookie: str) -> str:
    """The same cookie with `sub` changed to a principal of the attacker's choice."""
    signature = cookie.split(".")[1]
    fields = payload_of(cookie) | {"sub": "token:0000"}
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=") + "." + signature


@pytest.mark.parametrize(
    "mangle",
    [
        forged,
        lambda cookie: cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"),
        lambda cookie: cookie.split(".")[0],
        lambda cookie: cookie + ".x",
        lambda cookie: "",
        lambda cookie: "x" * 5000,
        lambda cookie: "!!!." + cookie.split(".")[1],
    ],
)
def test_an_altered_cookie_is_no_session(mangle):
    cookie = encode_session(new_session("token:abc", now=NOW), KEYS)
    assert decode_session(mangle(cookie), KEYS, now=NOW) is None


def test_a_cookie_signed_elsewhere_is_no_session():
    cookie = encode_session(new_session("token:abc", now=NOW), OTHER_KEYS)
    assert decode_session(cookie, KEYS, now=NOW) is None
    assert decode_session(None, KEYS, now=NOW) is None


def test_csrf_tokens_belong_to_one_session():
    first, second = new_session(None, now=NOW), new_session(None, now=NOW)
    token = csrf_token(first, KEYS)
    assert csrf_matches(token, first, KEYS)
    assert not csrf_matches(token, second, KEYS)
    assert not csrf_matches(csrf_token(first, OTHER_KEYS), first, KEYS)
    assert not csrf_matches("", first, KEYS)
    assert not csrf_matches(None, first, KEYS)


def test_each_purpose_has_its_own_key():
    assert len({KEYS.signing, KEYS.csrf, KEYS.principal}) == 3
