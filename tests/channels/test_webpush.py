"""Web Push against a loopback push endpoint: the test decrypts the payload and checks VAPID."""

from __future__ import annotations

import base64
import json
import os
import time

import http_ece
import pytest
from channel_servers import Answer, make_connection
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from mawb import links as signed
from mawb.channels.base import OutboundMessage
from mawb.channels.connections import provider_for


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def browser() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """What a browser's PushManager keeps: a P-256 key pair and a 16-byte auth secret."""
    return ec.generate_private_key(ec.SECP256R1()), os.urandom(16)


def subscription(endpoint: str, browser: tuple[ec.EllipticCurvePrivateKey, bytes]) -> str:
    key, auth = browser
    public = key.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return json.dumps({"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(auth)}})


@pytest.fixture
def push_connection(home, http_server):
    vapid = Vapid02()
    vapid.generate_keys()
    (home / "vapid.pem").write_bytes(vapid.private_pem())
    return make_connection(home, "push", kind="webpush", vapid_private_key="file:vapid.pem",
                           vapid_subject="mailto:ops@shop.example", ttl_seconds=3600,
                           allow_hosts=["127.0.0.1"], tracking=True), vapid


def test_payload_is_encrypted_for_the_subscription(links, http_server, push_connection,
                                                   browser) -> None:
    connection, vapid = push_connection
    http_server.answer = lambda r: Answer(201, b"", {"Location": "/m/1"})
    endpoint = f"{http_server.url}/push/sub-1"
    (result,) = provider_for(connection, links).send_batch([OutboundMessage(
        "f:1:c1:push:1:0", "web_push", subscription(endpoint, browser), subject="Back in stock",
        body="Your size is here", payload={"url": "https://shop.example/p/1", "urgency": "high"},
        contact_id="c1", flow_id="f", flow_version=1, node_id="push")])
    assert result.ok and result.provider_ref == "/m/1"

    (request,) = http_server.requests
    assert (request.method, request.path) == ("POST", "/push/sub-1")
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["ttl"] == "3600" and request.headers["urgency"] == "high"
    assert request.headers["idempotency-key"] == "f:1:c1:push:1:0"
    assert len(request.headers["topic"]) == 32
    clear = http_ece.decrypt(request.body, private_key=browser[0], auth_secret=browser[1],
                             version="aes128gcm")
    data = json.loads(clear)
    assert (data["title"], data["body"]) == ("Back in stock", "Your size is here")
    token = data["url"].removeprefix("https://go.example.com/c/")
    assert signed.verify(links.secret, token, "c")["url"] == "https://shop.example/p/1"

    authorization = request.headers["authorization"]
    assert authorization.startswith("vapid t=") and Vapid02.verify(authorization)
    fields = dict(part.split("=", 1) for part in authorization.removeprefix("vapid ").split(","))
    public = vapid.public_key.public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    assert unb64(fields["k"]) == public
    claims = json.loads(unb64(fields["t"].split(".")[1]))
    assert claims["aud"] == http_server.url and claims["sub"] == "mailto:ops@shop.example"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_permanent(links, http_server, push_connection, browser,
                                          status) -> None:
    http_server.answer = lambda r: Answer(status, b"")
    (result,) = provider_for(push_connection[0], links).send_batch([OutboundMessage(
        "k", "web_push", subscription(f"{http_server.url}/push/x", browser), subject="Hi")])
    assert not result.ok and not result.retryable and "subscription gone" in result.error


def test_a_bad_subscription_is_refused_without_a_request(links, http_server,
                                                          push_connection) -> None:
    broken, missing = provider_for(push_connection[0], links).send_batch([
        OutboundMessage("k1", "web_push", '{"endpoint": "https://push.example/x"}'),
        OutboundMessage("k2", "web_push", None)])
    assert not broken.ok and not broken.retryable and "push subscription" in broken.error
    assert not missing.ok and http_server.requests == []


def test_endpoints_go_through_the_address_guard(home, links, http_server, push_connection,
                                                browser) -> None:
    guarded = make_connection(home, "push", **{
        **push_connection[0].model_dump(by_alias=True), "allow_hosts": []})
    (result,) = provider_for(guarded, links).send_batch([OutboundMessage(
        "k", "web_push", subscription(f"{http_server.url}/push/x", browser), subject="Hi")])
    assert not result.ok and not result.retryable and "loopback" in result.error
    assert http_server.requests == []
