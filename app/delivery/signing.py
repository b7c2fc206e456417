"""Signed deliveries (Standard Webhooks, as Svix and QStash-style receivers verify them).

A delivery to a non-Discord target is signed when its task has a `signing_secret` (or the
service has WEBHOOK_SIGNING_SECRET): `webhook-id` is the occurrence's id (the same for every
retry), `webhook-timestamp` the second the request leaves, and `webhook-signature` holds
`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for each secret in force, space-separated
(during a rotation, the new one and the one it replaced). The signature covers the exact bytes
sent. Secrets look like `whsec_<base64>`.
"""

import base64
import binascii
import secrets
from collections.abc import Sequence
from datetime import datetime
from math import floor

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 (the form of a secret, not one)
SECRET_BYTES = 24
MIN_SECRET_BYTES = 16


def new_secret() -> str:
    """A fresh random signing secret, `whsec_<base64>`."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def is_secret(value: str) -> bool:
    """Whether `value` is a usable signing secret (`whsec_` and at least 16 bytes of base64)."""
    if not value.startswith(SECRET_PREFIX):
        return False
    try:
        raw = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= MIN_SECRET_BYTES


def signature_headers(
    secret_values: Sequence[str], *, message_id: str, body: str, at: datetime
) -> dict[str, str]:
    """The three Standard Webhooks headers for `body` sent at `at` (one signature a secret)."""
    signatures = " ".join(
        Webhook(secret).sign(msg_id=message_id, timestamp=at, data=body) for secret in secret_values
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signatures,
    }
