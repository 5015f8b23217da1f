"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign outgoing, verify incoming.

A signed request carries `webhook-id` (mawb uses the outbox idempotency key, so a re-send is
recognisable), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`:
space-separated `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>` entries. The secret
is written `whsec_<base64 of the key bytes>`. `verify` is what the intake service uses for its
/hooks endpoints; both directions are tested against the reference `standardwebhooks` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
TOLERANCE_SECONDS = 300


class WebhookSignatureError(ValueError):
    """Missing headers, a timestamp outside the tolerance, or no matching signature."""


def new_secret() -> str:
    """A fresh signing secret in the `whsec_` form (24 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_bytes(secret: str | bytes) -> bytes:
    """The key bytes of a `whsec_<base64>` secret (the prefix is optional)."""
    if isinstance(secret, bytes):
        key = secret
    else:
        try:
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a webhook secret is whsec_ followed by base64") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def signature(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign_headers(secret: str | bytes, msg_id: str, body: bytes,
                 timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`, timestamped now unless told."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
            "webhook-signature": signature(secret, msg_id, stamp, body)}


def verify(secret: str | bytes, headers: Mapping[str, str], body: bytes, *,
           tolerance_seconds: int = TOLERANCE_SECONDS, now: float | None = None) -> str:
    """The `webhook-id` of a request whose signature verifies; raises WebhookSignatureError."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    offered = lowered.get("webhook-signature")
    if not (msg_id and stamp and offered):
        raise WebhookSignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookSignatureError("webhook-timestamp is not Unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookSignatureError(
            f"webhook-timestamp is more than {tolerance_seconds} s from now (replayed or skewed)")
    expected = signature(secret, msg_id, timestamp, body).encode()
    for candidate in offered.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return msg_id
    raise WebhookSignatureError("no webhook-signature matches the body")
