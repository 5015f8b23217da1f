"""/hooks against a real service process, signed by the reference Standard Webhooks library."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from service_helpers import deploy_webhook_flow, error_of, spooled_events
from standardwebhooks.webhooks import Webhook

HOOK = "/hooks/webinar/registered"


def signed(secret: str, body: dict, *, msg_id: str | None = None, at: datetime | None = None):
    """Body bytes and headers as a Standard Webhooks sender sends them."""
    data = json.dumps(body).encode()
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, data.decode())
    return data, {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
                  "webhook-signature": signature, "Content-Type": "application/json"}


def test_a_signed_call_is_spooled_as_the_nodes_event(client, intake):
    data, headers = signed(intake.hook_secret, {"contact_id": "c5", "seat": "A1"},
                           msg_id="msg_first")
    response = client.post(HOOK, content=data, headers=headers)
    assert response.status_code == 202, response.text
    record = spooled_events(intake.home)["webinar:registered:msg_first"]
    assert record["contact_id"] == "c5"
    assert record["name"] == "webinar_registration"
    assert record["properties"] == {"seat": "A1"}
    assert record["source"] == "webhook:webinar:registered"


def test_the_builders_path_name_reaches_the_same_node(client, intake):
    data, headers = signed(intake.hook_secret, {"contact_id": "c6"})
    response = client.post("/hooks/webinar/registrations", content=data, headers=headers)
    assert response.status_code == 202
    (event_id,) = response.json()["event_ids"]
    assert spooled_events(intake.home)[event_id]["source"] == "webhook:webinar:registered"


def test_a_replayed_webhook_id_is_refused(client, intake):
    data, headers = signed(intake.hook_secret, {"contact_id": "c7"})
    assert client.post(HOOK, content=data, headers=headers).status_code == 202
    status, field, error = error_of(client.post(HOOK, content=data, headers=headers))
    assert (status, field) == (409, "webhook-id") and "replay" in error
    assert sum(e["contact_id"] == "c7" for e in spooled_events(intake.home).values()) == 1


def _tampered(secret: str):
    data, headers = signed(secret, {"contact_id": "c8"})
    yield "unsigned", data, {"Content-Type": "application/json"}, "missing"
    yield "no signature", data, {k: v for k, v in headers.items()
                                 if k != "webhook-signature"}, "missing"
    other = Webhook(f"whsec_{'QUJD' * 8}")
    wrong = {**headers, "webhook-signature": other.sign(
        headers["webhook-id"], datetime.now(UTC), data.decode())}
    yield "wrong key", data, wrong, "no webhook-signature matches"
    yield "altered body", data.replace(b"c8", b"c9"), headers, "no webhook-signature matches"
    old_data, old = signed(secret, {"contact_id": "c8"},
                           at=datetime.now(UTC) - timedelta(minutes=6))
    yield "old timestamp", old_data, old, "more than 300 s"
    new_data, new = signed(secret, {"contact_id": "c8"},
                           at=datetime.now(UTC) + timedelta(minutes=6))
    yield "future timestamp", new_data, new, "more than 300 s"
    yield "timestamp not a number", data, {**headers, "webhook-timestamp": "soon"}, "Unix seconds"


@pytest.mark.parametrize("case", ["unsigned", "no signature", "wrong key", "altered body",
                                  "old timestamp", "future timestamp", "timestamp not a number"])
def test_bad_signatures_are_refused(client, intake, case):
    before = len(spooled_events(intake.home))
    (_, data, headers, words), = [c for c in _tampered(intake.hook_secret) if c[0] == case]
    status, _, error = error_of(client.post(HOOK, content=data, headers=headers))
    assert status == 401 and words in error
    assert len(spooled_events(intake.home)) == before


def test_unknown_flows_and_nodes_are_404(client, intake):
    data, headers = signed(intake.hook_secret, {"contact_id": "c1"})
    for path in ("/hooks/nope/registered", "/hooks/webinar/nope", "/hooks/webinar/reg_thanks"):
        status, _, error = error_of(client.post(path, content=data, headers=headers))
        assert status == 404 and "webhook_trigger" in error


@pytest.mark.parametrize(("body", "field"), [
    ({"seat": "A1"}, "contact_id"), ({"contact_id": ""}, "contact_id"),
    ({"contact_id": 5}, "contact_id"), ([1, 2], None),
])
def test_a_signed_body_must_name_the_contact(client, intake, body, field):
    data, headers = signed(intake.hook_secret, body)
    status, named, _ = error_of(client.post(HOOK, content=data, headers=headers))
    assert (status, named) == (422, field)


def test_a_new_version_is_seen_without_a_restart(client, intake):
    deploy_webhook_flow(intake.home, version=2, event="registered_v2")
    time.sleep(0.01)
    data, headers = signed(intake.hook_secret, {"contact_id": "c10"})
    response = client.post(HOOK, content=data, headers=headers)
    assert response.status_code == 202
    (event_id,) = response.json()["event_ids"]
    assert spooled_events(intake.home)[event_id]["name"] == "registered_v2"


def test_a_node_whose_secret_is_not_set_says_so(client, intake):
    document = json.loads((intake.home / "flows" / "webinar" / "v1.json").read_text())
    document["id"] = "unset_secret"
    for node in document["nodes"]:
        if node["type"] == "webhook_trigger":
            node["params"]["secret"] = "env:MAWB_TEST_SECRET_NOBODY_SET"
    folder = intake.home / "flows" / "unset_secret"
    folder.mkdir(exist_ok=True)
    (folder / "v1.json").write_text(json.dumps(document))
    data, headers = signed(intake.hook_secret, {"contact_id": "c1"})
    response = client.post("/hooks/unset_secret/registered", content=data, headers=headers)
    status, _, error = error_of(response)
    assert status == 503 and "env:MAWB_TEST_SECRET_NOBODY_SET" in error
    assert intake.hook_secret not in response.text
