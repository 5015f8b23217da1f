"""The /v1 API against a real service process: auth, field-naming errors, limits, dedupe."""

from __future__ import annotations

import concurrent.futures
import os
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from service_helpers import error_of, spooled, spooled_events

from mawb.intake import IntakeError, read_contacts
from mawb.service.keys import create_key, revoke_key


def event(contact: str = "c1", **fields):
    return {"contact_id": contact, "name": "page_view", **fields}


def test_accepted_events_are_in_the_spool_when_the_202_arrives(client, intake):
    batch = [event(f"c{i}", properties={"page": f"/p{i}"}, event_id=f"durable-{i}")
             for i in range(5)]
    response = client.post("/v1/events", json={"events": batch}, headers=intake.auth)
    assert response.status_code == 202
    assert response.json() == {"accepted": 5, "duplicates": 0,
                               "event_ids": [f"durable-{i}" for i in range(5)]}
    events = spooled_events(intake.home)  # read right after the 202, no waiting
    for i in range(5):
        record = events[f"durable-{i}"]
        assert record == {"kind": "event", "event_id": f"durable-{i}", "contact_id": f"c{i}",
                          "name": "page_view", "ts": record["ts"],
                          "properties": {"page": f"/p{i}"}, "source": "api"}
        age = datetime.now(UTC) - datetime.fromisoformat(record["ts"])
        assert timedelta(0) <= age < timedelta(minutes=1)  # ts defaults to now, in UTC
    assert not list((intake.home / "spool" / ".tmp").iterdir())


def test_a_single_event_gets_a_generated_id_and_keeps_its_timestamp(client, intake):
    stamp = "2026-11-30T08:00:00+01:00"
    when = datetime.fromisoformat(stamp)
    if abs(datetime.now(UTC) - when) > timedelta(days=29):
        stamp = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        when = datetime.fromisoformat(stamp)
    response = client.post("/v1/events", json=event("c9", ts=stamp), headers=intake.auth)
    assert response.status_code == 202
    (event_id,) = response.json()["event_ids"]
    record = spooled_events(intake.home)[event_id]
    assert datetime.fromisoformat(record["ts"]) == when
    assert record["ts"].endswith("+00:00")


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "missing Authorization header"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization must be 'Bearer"),
    ({"Authorization": "Bearer mawb_nothex_secret"}, "malformed API key"),
    ({"Authorization": "Bearer mawb_000000000000_" + "x" * 43}, "unknown API key"),
])
def test_requests_without_a_valid_key_are_refused(client, intake, headers, message):
    before = len(spooled(intake.home))
    response = client.post("/v1/events", json=event(), headers=headers)
    status, _, error = error_of(response)
    assert status == 401 and message in error
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert len(spooled(intake.home)) == before


def test_a_wrong_secret_for_a_known_key_id_is_refused(client, intake):
    key_id = intake.key.split("_")[1]
    forged = f"mawb_{key_id}_{'A' * 43}"
    status, _, error = error_of(client.post("/v1/events", json=event(),
                                            headers={"Authorization": f"Bearer {forged}"}))
    assert (status, error) == (401, "unknown API key")


def test_a_new_key_works_at_once_and_a_revoked_one_within_a_second(client, intake):
    record, key = create_key(intake.home, "short-lived")
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/v1/events", json=event(), headers=headers).status_code == 202
    revoke_key(intake.home, record.id)
    revoked = time.monotonic()
    while (response := client.post("/v1/events", json=event(), headers=headers)).status_code \
            == 202:
        assert time.monotonic() - revoked < 1.5, "still accepted 1.5 s after the revocation"
        time.sleep(0.05)
    status, _, error = error_of(response)
    assert status == 401 and f"API key {record.id} was revoked" in error


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"events": [event(), event(""), event()]}, "events[1].contact_id", "at least 1"),
    ({"events": [event(), {"contact_id": "c2"}]}, "events[1].name", "Field required"),
    ({"events": [event(properties=[1, 2])]}, "events[0].properties", "dictionary"),
    (event(colour="red"), "colour", "unknown field"),
    (event(ts="yesterday-ish"), "ts", "datetime"),
    (event(ts=(datetime.now(UTC) + timedelta(days=2)).isoformat()), "ts", "in the future"),
    (event(ts="2001-01-01T00:00:00Z"), "ts", "mawb ingest"),
    (event(ts="9999-12-31T23:59:59-05:00"), "ts", "out of range"),
    (event(properties={"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {}}}}}}}}}),
     "properties", "levels deep"),
    (event(properties={"blob": "x" * 20_000}), "properties", "bytes as JSON"),
    (event(event_id="has space"), "event_id", "pattern"),
    ({"events": []}, "events", "at least 1"),
    ([event()], None, "JSON object"),
])
def test_invalid_events_are_refused_naming_the_field(client, intake, body, field, words):
    before = len(spooled(intake.home))
    status, named, error = error_of(client.post("/v1/events", json=body, headers=intake.auth))
    assert (status, named) == (422, field)
    assert words in error
    assert len(spooled(intake.home)) == before  # nothing of a refused batch is spooled


@pytest.mark.parametrize("body", [b"", b"{not json", b'{"contact_id": NaN, "name": "x"}',
                                  b'{"contact_id": "c1", "name": "x", "properties": {"v": 1e400}}'])
def test_a_body_that_is_not_json_is_a_400(client, intake, body):
    response = client.post("/v1/events", content=body,
                           headers={**intake.auth, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["field"] is None


def test_bodies_and_batches_over_the_limits_are_413(client, intake):
    big = {"events": [event(properties={"pad": "x" * 1000}) for _ in range(70)]}  # > 64 KiB
    status, _, error = error_of(client.post("/v1/events", json=big, headers=intake.auth))
    assert status == 413 and "65536" in error

    def chunks():  # no Content-Length: the limit holds for a streamed body too
        yield b'{"events": ['
        for _ in range(100):
            yield b'{"contact_id": "c1", "name": "' + b"x" * 1000 + b'"},'
        yield b"]}"

    response = client.post("/v1/events", content=chunks(), headers=intake.auth)
    assert response.status_code == 413

    many = {"events": [event() for _ in range(101)]}
    status, field, error = error_of(client.post("/v1/events", json=many, headers=intake.auth))
    assert (status, field) == (413, "events") and "at most 100" in error


def test_a_key_over_its_rate_gets_429_with_retry_after(client, intake):
    _, key = create_key(intake.home, "slow", rate=1)
    headers = {"Authorization": f"Bearer {key}"}
    assert client.post("/v1/events", json=event(), headers=headers).status_code == 202
    response = client.post("/v1/events", json=event(), headers=headers)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "rate limit" in response.json()["error"]
    time.sleep(1.05)
    assert client.post("/v1/events", json=event(), headers=headers).status_code == 202


def test_repeated_event_ids_are_spooled_once(client, intake):
    body = {"events": [event(event_id="dup-1"), event(event_id="dup-1"),
                       event(event_id="dup-2")]}
    first = client.post("/v1/events", json=body, headers=intake.auth).json()
    assert (first["accepted"], first["duplicates"]) == (2, 1)
    again = client.post("/v1/events", json=body, headers=intake.auth).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    events = spooled_events(intake.home)  # asserts each id once
    assert {"dup-1", "dup-2"} <= set(events)


def test_concurrent_repeats_of_one_event_id_are_spooled_once(service, intake):
    def send(_: int) -> int:
        with httpx.Client(base_url=service, timeout=10) as session:
            return session.post("/v1/events", json=event(event_id="race-1"),
                                headers=intake.auth).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(send, range(16))) == {202}
    assert "race-1" in spooled_events(intake.home)


def test_contacts_are_checked_by_the_import_contacts_rules(client, intake):
    bad = {"contact_id": "c1", "email_consent": "maybe"}
    with pytest.raises(IntakeError) as cli_error:
        read_contacts(__import__("pandas").DataFrame([bad]))
    status, field, error = error_of(client.post("/v1/contacts", json={"contacts": [
        {"contact_id": "c0"}, bad]}, headers=intake.auth))
    assert (status, field) == (422, "contacts[1].email_consent")
    assert cli_error.value.problems[0].message in error  # the same words as the CLI

    cases = [({"contact_id": "c1", "timezone": "Mars/Olympus"}, "timezone"),
             ({"contact_id": "c1", "engagement_score": 3}, "engagement_score"),
             ({"contacts": [{"contact_id": "c1"}, {"contact_id": "c1"}]}, "contacts[1].contact_id"),
             ({"contact_id": "c1", "Bad-Name": 1}, "Bad-Name"),
             ({"contact_id": "c1", "nested": {"a": 1}}, "nested"),
             ({"email": "a@example.com"}, "contact_id")]
    for body, expected in cases:
        status, field, _ = error_of(client.post("/v1/contacts", json=body, headers=intake.auth))
        assert (status, field) == (422, expected), body


def test_an_accepted_contact_is_spooled_with_only_what_was_sent(client, intake):
    body = {"contact_id": "c77", "email": "c77@example.com", "timezone": "Europe/Berlin",
            "email_consent": True, "plan": "pro"}
    response = client.post("/v1/contacts", json=body, headers=intake.auth)
    assert response.status_code == 202 and response.json() == {"accepted": 1}
    contacts = [r["contact"] for r in spooled(intake.home) if r["kind"] == "contact"]
    assert body in contacts


def test_health_metrics_and_openapi(client, intake):
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["spool_depth"] == len(list((intake.home / "spool").glob("*.jsonl")))
    client.post("/v1/events", json=event(""), headers=intake.auth)  # one refusal at least
    text = client.get("/metrics").text
    assert 'mawb_http_requests_total{method="POST",route="/v1/events",status="202"}' in text
    assert 'mawb_http_requests_total{method="POST",route="/v1/events",status="422"}' in text
    assert 'mawb_refused_requests_total{reason="invalid"}' in text
    assert "mawb_spool_flush_seconds_bucket{le=\"+Inf\"}" in text
    assert f"mawb_spool_depth {health.json()['spool_depth']}" in text
    schema = client.get("/openapi.json").json()
    assert {"/v1/events", "/v1/contacts", "/hooks/{flow_id}/{node_id}", "/u/{token}",
            "/o/{token}", "/c/{token}", "/health", "/metrics"} <= set(schema["paths"])
    assert "EventIn" in schema["components"]["schemas"]


def test_keys_file_holds_no_secret_and_is_private(intake):
    text = (intake.home / "keys.json").read_text()
    assert intake.key.split("_", 2)[2] not in text
    assert os.stat(intake.home / "keys.json").st_mode & 0o777 == 0o600
