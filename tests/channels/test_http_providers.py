"""HTTP providers against a real loopback server: request shapes, idempotency, outcomes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs

import pytest
from channel_servers import Answer, make_connection
from standardwebhooks import Webhook

from mawb.channels.base import OutboundMessage
from mawb.channels.connections import provider_for

LOOPBACK = ["127.0.0.1"]  # the explicit allow-list entry the guard needs for a local server


def message(key: str, channel: str, **fields: Any) -> OutboundMessage:
    return OutboundMessage(idempotency_key=key, channel=channel, **{"recipient": None, **fields})


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_TOKEN", "tw-token")
    monkeypatch.setenv("MASTODON_TOKEN", "md-token")
    monkeypatch.setenv("HUBSPOT_TOKEN", "hs-token")
    monkeypatch.setenv("API_TOKEN", "api-token")
    monkeypatch.setenv("HOOK_SECRET", "whsec_" + base64.b64encode(b"k" * 24).decode())


def test_twilio_messages_api_shape(home, links, http_server, tokens) -> None:
    http_server.answer = lambda r: Answer(201, json.dumps({"sid": "SM123"}).encode())
    connection = make_connection(home, "sms", kind="twilio", base_url=http_server.url,
                                 account_sid="AC42", auth_token="env:TWILIO_TOKEN",
                                 allow_hosts=LOOPBACK, **{"from": "+15550001111"})
    sent, bad = provider_for(connection, links).send_batch([
        message("k:sms", "sms", recipient="+15557654321", body="Code SAVE10"),
        message("k:bad", "sms", recipient="0171 not a number", body="x")])
    assert sent.ok and sent.provider_ref == "SM123"
    assert not bad.ok and not bad.retryable and "E.164" in bad.error
    (request,) = http_server.requests
    assert (request.method, request.path) == ("POST", "/2010-04-01/Accounts/AC42/Messages.json")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.body.decode()) == {"To": ["+15557654321"], "From": ["+15550001111"],
                                               "Body": ["Code SAVE10"]}
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        b"AC42:tw-token").decode()
    assert request.headers["idempotency-key"] == "k:sms"


def test_mastodon_statuses_shape(home, links, http_server, tokens) -> None:
    http_server.answer = lambda r: Answer(200, b'{"id": "1", "url": "https://m.example/@a/1"}')
    connection = make_connection(home, "social", kind="mastodon", base_url=http_server.url,
                                 access_token="env:MASTODON_TOKEN", allow_hosts=LOOPBACK)
    (result,) = provider_for(connection, links).send_batch([message(
        "k:post", "social", body="Spring sale", payload={"link": "https://shop.example/s"})])
    assert result.ok and result.provider_ref == "https://m.example/@a/1"
    (request,) = http_server.requests
    assert (request.method, request.path) == ("POST", "/api/v1/statuses")
    assert request.headers["authorization"] == "Bearer md-token"
    assert request.headers["idempotency-key"] == "k:post"
    assert json.loads(request.body) == {"status": "Spring sale\n\nhttps://shop.example/s",
                                        "visibility": "public"}


def test_hubspot_create_and_update_shapes(home, links, http_server, tokens) -> None:
    http_server.answer = lambda r: Answer(201, b'{"id": "901"}')
    connection = make_connection(home, "crm", kind="hubspot", base_url=http_server.url,
                                 access_token="env:HUBSPOT_TOKEN", allow_hosts=LOOPBACK)
    created, updated, by_id, unknown = provider_for(connection, links).send_batch([
        message("k:1", "crm", payload={"operation": "create", "object": "deal",
                                       "properties": {"dealname": "Acme", "stage": "new"}}),
        message("k:2", "crm", recipient="ada@example.org",
                payload={"operation": "update", "object": "contact",
                         "properties": {"lead_status": "qualified"}}),
        message("k:3", "crm", payload={"operation": "update", "object": "deal", "id": "77",
                                       "properties": {"stage": "won"}}),
        message("k:4", "crm", payload={"operation": "update", "object": "deal",
                                       "properties": {"stage": "won"}})])
    assert created.ok and created.provider_ref == "901" and created.response == {"crm_id": "901"}
    assert updated.ok and by_id.ok
    assert not unknown.ok and not unknown.retryable and "needs its id" in unknown.error
    first, second, third = sorted(http_server.requests, key=lambda r: r.headers["idempotency-key"])
    assert (first.method, first.path) == ("POST", "/crm/v3/objects/deals")
    assert json.loads(first.body) == {"properties": {"dealname": "Acme", "stage": "new"}}
    assert (second.method, second.path) == (
        "PATCH", "/crm/v3/objects/contacts/ada%40example.org?idProperty=email")
    assert (third.method, third.path) == ("PATCH", "/crm/v3/objects/deals/77")
    assert {r.headers["authorization"] for r in http_server.requests} == {"Bearer hs-token"}
    assert sorted(r.headers["idempotency-key"] for r in http_server.requests) == ["k:1", "k:2",
                                                                                  "k:3"]


def test_generic_adapter_maps_response_fields(home, links, http_server, tokens) -> None:
    http_server.answer = lambda r: Answer(200, b'{"data": {"plan": "pro", "seats": [3, 5]}}')
    connection = make_connection(home, "api", kind="http", base_url=http_server.url,
                                 token="env:API_TOKEN",
                                 headers={"X-Team": "growth", "X-Api-Key": "env:TWILIO_TOKEN"},
                                 allow_hosts=LOOPBACK)
    (result,) = provider_for(connection, links).send_batch([message(
        "k:api", "api", payload={"method": "PUT", "url": "/v1/accounts/c1",
                                 "headers": {"X-Trace": "t1"}, "body": {"email": "a@b.example"},
                                 "store": {"plan": "data.plan", "seats": "data.seats.1",
                                           "missing": "data.nope"}})])
    assert result.ok and result.response == {"plan": "pro", "seats": 5, "missing": None}
    (request,) = http_server.requests
    assert (request.method, request.path) == ("PUT", "/v1/accounts/c1")
    assert json.loads(request.body) == {"email": "a@b.example"}
    assert request.headers["authorization"] == "Bearer api-token"
    assert request.headers["x-team"] == "growth" and request.headers["x-trace"] == "t1"
    assert request.headers["x-api-key"] == "tw-token"  # a credential header, by reference
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == "k:api"


def test_webhook_is_signed_per_standard_webhooks(home, links, http_server, tokens) -> None:
    import os

    connection = make_connection(home, "hooks", kind="webhook", url=f"{http_server.url}/in",
                                 signing_secret="env:HOOK_SECRET", allow_hosts=LOOPBACK)
    body = {"event": "lead.qualified", "contact": {"email": "ada@example.org"}}
    (result,) = provider_for(connection, links).send_batch([message(
        "f:1:c1:hook:1:0", "webhook", payload={"body": body})])
    assert result.ok
    (request,) = http_server.requests
    assert request.headers["webhook-id"] == "f:1:c1:hook:1:0"
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert Webhook(os.environ["HOOK_SECRET"]).verify(request.body, request.headers) == body
    tampered = request.body.replace(b"ada", b"eve")
    with pytest.raises(Exception, match="signature"):
        Webhook(os.environ["HOOK_SECRET"]).verify(tampered, request.headers)


@pytest.mark.parametrize(("answer", "retryable", "retry_after", "words"), [
    (Answer(429, b"slow down", {"Retry-After": "7"}), True, 7.0, "HTTP 429"),
    (Answer(503, b"", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), True, 0.0, "HTTP 503"),
    (Answer(500, b"boom"), True, None, "HTTP 500: boom"),
    (Answer(400, b'{"error": "bad phone"}'), False, None, "HTTP 400"),
    (Answer(401, b""), False, None, "HTTP 401"),
])
def test_outcomes_by_status(home, links, http_server, answer, retryable, retry_after,
                            words) -> None:
    http_server.answer = lambda r: answer
    connection = make_connection(home, "api", kind="http", base_url=http_server.url,
                                 allow_hosts=LOOPBACK)
    (result,) = provider_for(connection, links).send_batch([message("k", "api", payload={})])
    assert (result.ok, result.retryable, result.retry_after) == (False, retryable, retry_after)
    assert words in result.error


def test_a_slow_server_times_out_retryably(home, links, http_server) -> None:
    http_server.answer = lambda r: Answer(200, b"{}", delay=1.5)
    connection = make_connection(home, "api", kind="http", base_url=http_server.url,
                                 timeout_seconds=0.3, allow_hosts=LOOPBACK)
    started = time.monotonic()
    (result,) = provider_for(connection, links).send_batch([message("k", "api", payload={})])
    assert time.monotonic() - started < 1.4
    assert not result.ok and result.retryable and "timeout" in result.error


def test_a_closed_port_is_a_retryable_connection_error(home, links) -> None:
    from channel_servers import free_port

    connection = make_connection(home, "api", kind="http",
                                 base_url=f"http://127.0.0.1:{free_port()}", allow_hosts=LOOPBACK)
    (result,) = provider_for(connection, links).send_batch([message("k", "api", payload={})])
    assert not result.ok and result.retryable and "connection error" in result.error


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversize_response_is_cut_and_permanent(home, links, http_server, chunked) -> None:
    http_server.answer = lambda r: Answer(200, b"x" * 300_000, chunked=chunked)
    connection = make_connection(home, "api", kind="http", base_url=http_server.url,
                                 max_response_bytes=65_536, allow_hosts=LOOPBACK)
    (result,) = provider_for(connection, links).send_batch([message("k", "api", payload={})])
    assert not result.ok and not result.retryable and "65536-byte limit" in result.error


def test_a_batch_runs_concurrently_and_keeps_order(home, links, http_server) -> None:
    http_server.answer = lambda r: Answer(200, b"{}", delay=0.1)
    connection = make_connection(home, "api", kind="http", base_url=http_server.url,
                                 concurrency=8, allow_hosts=LOOPBACK)
    batch = [message(f"k:{index}", "api", payload={"url": f"/item/{index}"})
             for index in range(24)]
    started = time.monotonic()
    results = provider_for(connection, links).send_batch(batch)
    elapsed = time.monotonic() - started
    assert [r.idempotency_key for r in results] == [m.idempotency_key for m in batch]
    assert all(r.ok for r in results)
    assert elapsed < 24 * 0.1 / 2  # serial would take 2.4 s; 8 at once about 0.3 s
    assert sorted(r.path for r in http_server.requests) == sorted(f"/item/{i}" for i in range(24))


def test_rate_per_second_paces_a_batch(home, links, http_server) -> None:
    connection = make_connection(home, "api", kind="http", base_url=http_server.url,
                                 rate_per_second=20, concurrency=4, allow_hosts=LOOPBACK)
    started = time.monotonic()
    results = provider_for(connection, links).send_batch(
        [message(f"k:{i}", "api", payload={}) for i in range(11)])
    assert all(r.ok for r in results)
    assert time.monotonic() - started >= 10 / 20 * 0.9


def test_check_is_an_authenticated_get_that_sends_nothing(home, links, http_server,
                                                           tokens) -> None:
    http_server.answer = lambda r: Answer(200, b'{"acct": "shop"}')
    connection = make_connection(home, "social", kind="mastodon", base_url=http_server.url,
                                 access_token="env:MASTODON_TOKEN", allow_hosts=LOOPBACK)
    summary = provider_for(connection, links).check()
    assert "HTTP 200" in summary
    (request,) = http_server.requests
    assert (request.method, request.path) == ("GET", "/api/v1/accounts/verify_credentials")
    assert request.headers["authorization"] == "Bearer md-token"
