"""Standard Webhooks: mawb's signer and verifier agree with the reference package both ways."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from mawb.channels import webhooks

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_published_vector() -> None:
    # The example of the Standard Webhooks specification and its reference libraries.
    signature = webhooks.signature("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                   "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                   b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_mawb_signs_and_the_reference_verifies() -> None:
    body = b'{"event":"lead.qualified","id":"c1"}'
    headers = webhooks.sign_headers(SECRET, "f:1:c1:hook:1:0", body)
    assert Webhook(SECRET).verify(body, headers) == {"event": "lead.qualified", "id": "c1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body + b" ", headers)


def test_the_reference_signs_and_mawb_verifies() -> None:
    body = '{"type":"email.bounced","to":"ada@example.org"}'
    now = int(time.time())
    signature = Webhook(SECRET).sign("msg_1", datetime.fromtimestamp(now, UTC), body)
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(now),
               "Webhook-Signature": f"v1,bogus= {signature}"}  # rotated keys: any may match
    assert webhooks.verify(SECRET, headers, body.encode()) == "msg_1"


@pytest.mark.parametrize(("change", "words"), [
    ({"webhook-signature": None}, "missing"),
    ({"webhook-timestamp": "yesterday"}, "Unix seconds"),
    ({"webhook-timestamp": str(int(time.time()) - 3600)}, "replayed"),
    ({"webhook-id": "another"}, "no webhook-signature matches"),
])
def test_verify_refuses(change, words) -> None:
    body = b"{}"
    headers = webhooks.sign_headers(SECRET, "msg_1", body)
    headers.update(change)
    headers = {k: v for k, v in headers.items() if v is not None}
    with pytest.raises(webhooks.WebhookSignatureError, match=words):
        webhooks.verify(SECRET, headers, body)


def test_secrets() -> None:
    fresh = webhooks.new_secret()
    assert fresh.startswith("whsec_") and len(webhooks.secret_bytes(fresh)) == 24
    with pytest.raises(ValueError, match="base64"):
        webhooks.secret_bytes("whsec_not base64!")
    with pytest.raises(ValueError, match="empty"):
        webhooks.secret_bytes("whsec_")
