"""Fuzzing the running service: schemathesis from its OpenAPI document, hypothesis over
payloads and signatures. Nothing may answer 5xx; nothing refused may reach the spool."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_helpers import spooled_events
from standardwebhooks.webhooks import Webhook

pytestmark = pytest.mark.slow


def test_no_operation_answers_5xx(service, intake):
    """Every operation of /openapi.json, 12 generated requests each (schemathesis' pytest
    loader does not run on this pytest, so the operations are driven here)."""
    api = schemathesis.openapi.from_url(f"{service}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(headers=intake.auth, timeout=10)
            assert response.status_code < 500, (case.method, case.formatted_path,
                                                 response.status_code, response.text[:300])
            if response.status_code >= 400 and "json" in response.headers.get(
                    "content-type", ""):
                assert "error" in response.json()

        check()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
event_like = st.fixed_dictionaries(
    {"contact_id": st.one_of(st.text(max_size=10), st.integers(), st.none())},
    optional={"name": st.text(max_size=10) | st.integers(),
              "ts": st.one_of(st.datetimes().map(str), st.text(max_size=12), st.integers()),
              "properties": json_values,
              "event_id": st.text(max_size=12),
              "extra": json_values})
bodies = st.one_of(json_values, event_like,
                   st.fixed_dictionaries({"events": st.lists(event_like, max_size=5)}))


def _resolves(document, field: str) -> bool:
    """The field's parent exists in the document (a missing field names where it belongs)."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", field)
    node = document
    for part in parts[:-1]:
        if part.startswith("["):
            node = node[int(part[1:-1])]
        else:
            node = node[part]
    return isinstance(node, dict | list)


@given(body=bodies)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_payload_is_accepted_whole_or_refused_naming_the_field(client, intake, body):
    response = client.post("/v1/events", json=body, headers=intake.auth)
    assert response.status_code in {202, 400, 413, 422}, response.text
    if response.status_code == 202:
        spooled = spooled_events(intake.home)
        events = body["events"] if isinstance(body, dict) and "events" in body else [body]
        for sent, event_id in zip(events, response.json()["event_ids"], strict=True):
            assert spooled[event_id]["contact_id"] == sent["contact_id"].strip()
            assert spooled[event_id]["properties"] == sent.get("properties", {})
    else:
        field = response.json()["field"]
        assert field is None or _resolves(body, field), (field, body)


@st.composite
def tampered(draw, secret: str):
    """A correctly signed call, then one thing changed: body, id, timestamp or signature."""
    body = json.dumps({"contact_id": draw(st.text("abc", min_size=1, max_size=5))}).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode())}
    target = draw(st.sampled_from(["body", "webhook-id", "webhook-timestamp",
                                   "webhook-signature"]))
    original = body if target == "body" else headers[target].encode()
    position = draw(st.integers(0, len(original) - 1))
    replacement = draw(st.integers(0x21, 0x7E).filter(lambda b: b != original[position]))
    changed = original[:position] + bytes([replacement]) + original[position + 1:]
    if target == "body":
        return changed, headers
    return body, {**headers, target: changed.decode()}


@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_a_signed_call_changed_anywhere_is_refused(client, intake, data):
    body, headers = data.draw(tampered(intake.hook_secret))
    response = client.post("/hooks/webinar/registered", content=body,
                           headers={**headers, "Content-Type": "application/json"})
    assert response.status_code in {400, 401}, (headers, body, response.text)
