"""Web Push: VAPID (RFC 8292) + aes128gcm payload encryption (RFC 8291), POST to the endpoint.

The contact's subscription (what the browser's `PushManager.subscribe()` returned) is the
recipient: JSON `{"endpoint", "keys": {"p256dh", "auth"}}`. Each message is encrypted for that
subscription with a fresh ephemeral key (http_ece) and POSTed with `TTL`, `Urgency`,
`Content-Encoding: aes128gcm` and `Authorization: vapid t=<JWT>, k=<public key>` (py_vapid; the
JWT's `aud` is the endpoint's origin, `exp` 12 h ahead, `sub` the connection's contact). The
endpoint is chosen by the contact's browser, so it goes through the same private-address guard
as every HTTP call. `Topic` is derived from the idempotency key: a re-send of a message still
queued at the push service replaces it rather than adding a second (at-least-once otherwise).
404/410 mean the subscription is gone: permanent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from mawb.channels.base import CheckFailed, SendResult
from mawb.channels.http import Call, HttpProvider
from mawb.channels.tracking import click_url

if TYPE_CHECKING:
    from mawb.channels.base import OutboundMessage
    from mawb.channels.connections import LinkContext
    from mawb.channels.netguard import Reply

MAX_PAYLOAD = 3993  # 4096-byte record minus the aes128gcm header and tag (RFC 8291 section 4)
JWT_LIFETIME = 12 * 3600


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_vapid_key(text: str) -> Vapid02:
    """A VAPID signer from a PEM private key or a raw base64url 32-byte key."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError("not an EC key")
            return Vapid02(key)
        return Vapid02.from_string(text)
    except Exception as error:  # any parse failure means the same
        raise ValueError(f"vapid_private_key is not a P-256 private key "
                         f"({type(error).__name__})") from None


def parse_subscription(recipient: str | None) -> tuple[str, bytes, bytes]:
    """(endpoint, p256dh public key, auth secret) of a subscription JSON."""
    try:
        data = json.loads(recipient or "")
        endpoint, keys = data["endpoint"], data["keys"]
        p256dh, auth = _b64decode(keys["p256dh"]), _b64decode(keys["auth"])
    except (ValueError, KeyError, TypeError):
        raise ValueError('recipient is not a push subscription {"endpoint", "keys": '
                         '{"p256dh", "auth"}}') from None
    if not str(endpoint).startswith(("https://", "http://")):
        raise ValueError("subscription endpoint must be an http(s) URL")
    if len(p256dh) != 65 or len(auth) != 16:
        raise ValueError("subscription keys: p256dh must be 65 bytes and auth 16 bytes")
    return str(endpoint), p256dh, auth


class WebPushProvider(HttpProvider):
    name = "webpush"

    def __init__(self, connection: Any, links: LinkContext) -> None:
        super().__init__(connection, links)
        self.vapid = load_vapid_key(connection.secret("vapid_private_key") or "")
        self._tokens: dict[str, tuple[float, str]] = {}

    def authorization(self, endpoint: str) -> str:
        """The VAPID header for the endpoint's origin, signed once per origin per 6 h."""
        parts = urlsplit(endpoint)
        audience = f"{parts.scheme}://{parts.netloc}"
        cached = self._tokens.get(audience)
        if cached and cached[0] > time.time():
            return cached[1]
        claims = {"aud": audience, "sub": self.connection.vapid_subject,
                  "exp": int(time.time()) + JWT_LIFETIME}
        header = self.vapid.sign(claims)["Authorization"]
        self._tokens[audience] = (time.time() + JWT_LIFETIME / 2, header)
        return header

    def build(self, message: OutboundMessage) -> Call:
        endpoint, p256dh, auth = parse_subscription(message.recipient)
        url = message.payload.get("url")
        if url and self.connection.tracking and not message.internal:
            url = click_url(self.links, message, str(url))
        body = json.dumps({"title": message.subject or "", "body": message.body or "",
                           "url": url}, separators=(",", ":"), ensure_ascii=False).encode()
        if len(body) > MAX_PAYLOAD:
            raise ValueError(f"push payload is {len(body)} bytes; the limit is {MAX_PAYLOAD}")
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        encrypted = http_ece.encrypt(body, private_key=ephemeral, dh=p256dh, auth_secret=auth,
                                     version="aes128gcm")
        topic = base64.urlsafe_b64encode(
            hashlib.sha256(message.idempotency_key.encode()).digest()).decode()[:32]
        headers = {
            "Authorization": self.authorization(endpoint),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(int(message.payload.get("ttl", self.connection.ttl_seconds))),
            "Urgency": str(message.payload.get("urgency", self.connection.urgency)),
            "Topic": topic,
        }
        return Call("POST", endpoint, headers, encrypted)

    def accepted(self, message: OutboundMessage, reply: Reply) -> SendResult:
        return SendResult(message.idempotency_key, ok=True,
                          provider_ref=reply.headers.get("location"))

    def failure(self, key: str, reply: Reply) -> SendResult | None:
        if reply.status in {404, 410}:
            return SendResult(key, ok=False, error=f"webpush: subscription gone (HTTP "
                                                   f"{reply.status} from the push service)")
        return super().failure(key, reply)

    def check(self) -> str:
        """Signs a VAPID token (the key works); push endpoints are per contact, none is called."""
        try:
            self.authorization("https://push.example.invalid")
        except Exception as error:
            raise CheckFailed(f"webpush: cannot sign a VAPID token: {error}") from None
        public = self.vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        key = base64.urlsafe_b64encode(public).decode().rstrip("=")
        return (f"webpush: VAPID key ok (applicationServerKey {key[:16]}...); endpoints are "
                "per contact, nothing was sent")
