"""End to end: workspace, deploy, tick, deliver, through real SMTP and HTTP servers on loopback.

The welcome and qualification templates go out through aiosmtpd (STARTTLS + AUTH) and a loopback
HTTP server; the test parses what arrived (MIME parts, Message-ID, List-Unsubscribe and its
signed token, Standard Webhooks signatures) and the outbox/messages rows the engine recorded.
"""

from __future__ import annotations

import email
import json
from datetime import datetime, timedelta
from email.policy import default as default_policy
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import pandas as pd
import pytest
from delivery_helpers import (
    SMTP_PASSWORD,
    WEBHOOK_SECRET,
    Answer,
    HttpServer,
    SmtpServer,
    leads,
    outbox,
    self_signed,
    smtp_settings,
    webhook_connection,
    workspace_with,
)
from standardwebhooks import Webhook

import mawb
from mawb.channels.smtp import message_id
from mawb.engine.deliver import deliver
from mawb.engine.runner import status
from mawb.links import verify, workspace_secret
from mawb.model import Flow

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

T0 = datetime(2026, 11, 2, 9, 0)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def smtp(tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    monkeypatch.setenv("MAIL_PASSWORD", SMTP_PASSWORD)
    server = SmtpServer(*tls_files).start()
    yield server
    server.stop()


@pytest.fixture
def http() -> Iterator[HttpServer]:
    server = HttpServer().start()
    yield server
    server.stop()


def _mails(server: SmtpServer) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(raw, policy=default_policy)  # type: ignore[misc]
            for _, _, raw in server.mailbox.messages]


def test_welcome_series_goes_out_over_smtp(tmp_path: Path, smtp: SmtpServer,
                                           tls_files: tuple[Path, Path]) -> None:
    contacts = leads(4, email_consent=[True, True, False, True],
                     unsubscribed=[False, False, False, True])
    workspace = workspace_with(tmp_path, contacts, {"mail": smtp_settings(smtp, tls_files[0])})
    flow = mawb.load_template("lead_welcome_v1")
    flow.settings.connections = {"email": "mail"}
    workspace.deploy(flow)

    workspace.tick(flow, T0)
    queued = outbox(workspace, flow.id)
    assert smtp.mailbox.messages == []  # the tick only queues: nothing leaves inside it
    assert dict(zip(queued["recipient"], queued["status"], strict=True)) == {
        "lead0@example.com": "queued", "lead1@example.com": "queued",
        "lead2@example.com": "suppressed", "lead3@example.com": "suppressed"}
    assert sorted(queued["reason"].dropna()) == ["no_consent", "unsubscribed"]

    report = deliver(workspace, now=T0)
    assert (report.claimed, report.sent, report.dead) == (2, 2, 0)
    mails = sorted(_mails(smtp), key=lambda m: str(m["To"]))
    assert [str(m["To"]) for m in mails] == ["lead0@example.com", "lead1@example.com"]
    first = mails[0]
    key = "lead_welcome_v1:1:c00000:welcome:1:0"
    assert first["Subject"] == "Welcome, Lead0!"
    assert first["Message-ID"] == message_id(key, "news@shop.example")
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = first.get_body(preferencelist=("plain",))
    assert text is not None and "We help retail teams like Acme" in text.get_content()
    unsubscribe = str(first["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    token = unsubscribe.rsplit("/u/", 1)[1]
    payload = verify(workspace_secret(tmp_path), token, "u")
    assert (payload["c"], payload["k"], payload["n"]) == ("c00000", key, "welcome")

    sent = outbox(workspace, flow.id).set_index("idempotency_key")
    assert sent.loc[key, "status"] == "sent"
    assert sent.loc[key, "provider_ref"] == first["Message-ID"]
    with workspace.connection(read_only=True) as connection:
        assert connection.execute(
            "SELECT provider, count(*) FROM messages GROUP BY 1").fetchall() == [("mail", 2)]

    # Two days later the guide goes the same way; a second deliver has nothing left to do.
    later = T0 + timedelta(days=2, minutes=1)
    workspace.tick(flow, later)
    assert deliver(workspace, now=later).sent == 2
    guides = [m for m in _mails(smtp) if "playbook" in str(m["Subject"])]
    assert sorted(str(m["Subject"]) for m in guides) == [
        "The retail playbook for Acme"] * 2
    assert deliver(workspace, now=later).claimed == 0
    assert len(smtp.mailbox.messages) == 4


def test_without_a_connection_nothing_is_delivered(tmp_path: Path, smtp: SmtpServer,
                                                   tls_files: tuple[Path, Path]) -> None:
    """The sandbox stays the default: a configured connection the flow does not name sends
    nothing, and the rows are recorded sandbox-sent inside the tick."""
    workspace = workspace_with(tmp_path, leads(2), {"mail": smtp_settings(smtp, tls_files[0])})
    flow = mawb.load_template("lead_welcome_v1")
    workspace.deploy(flow)
    workspace.tick(flow, T0)
    assert deliver(workspace, now=T0).claimed == 0
    assert smtp.mailbox.messages == []
    rows = outbox(workspace, flow.id)
    assert set(rows["status"]) == {"sent"} and set(rows["provider_ref"].str[:8]) == {"sandbox:"}


def test_qualified_leads_reach_sales_by_mail_and_signed_webhook(
        tmp_path: Path, smtp: SmtpServer, http: HttpServer,
        tls_files: tuple[Path, Path]) -> None:
    """notify_sales is internal: it reaches sales@ even for a lead without email consent, with
    no unsubscribe header; the webhook is signed per Standard Webhooks and is not a message."""
    contacts = leads(3, email_consent=[True, False, True])
    workspace = workspace_with(tmp_path, contacts, {
        "mail": smtp_settings(smtp, tls_files[0]), "hooks": webhook_connection()})
    flow = mawb.load_template("lead_qualification_v1")
    flow.settings.connections = {"email": "mail", "webhook": "hooks"}
    flow.node("alert_channel").params["url"] = f"{http.url}/sales-alerts"
    workspace.deploy(flow)
    workspace.import_events(pd.DataFrame([{"event_id": f"e{i}", "contact_id": f"c{i:05d}",
                                           "name": "form_submission", "ts": T0}
                                          for i in range(3)]))
    for step in range(4):
        workspace.tick(flow, T0 + timedelta(minutes=15 * step))
    report = deliver(workspace, now=T0 + timedelta(hours=1))
    assert (report.sent, report.dead) == (6, 0)

    mails = _mails(smtp)
    assert sorted(str(m["To"]) for m in mails) == ["sales@example.com"] * 3
    assert all(m["List-Unsubscribe"] is None for m in mails)
    subjects = sorted(str(m["Subject"]) for m in mails)
    assert subjects[1] == "Qualified lead: Lead1 Doe (Acme)"  # the lead without consent
    body = mails[0].get_body(preferencelist=("plain",))
    assert body is not None and "reached a score of 55" in body.get_content()

    hooks = Webhook(WEBHOOK_SECRET)
    calls = sorted(http.requests, key=lambda r: r.headers["webhook-id"])
    assert [c.path for c in calls] == ["/sales-alerts"] * 3
    for call in calls:
        verified = hooks.verify(call.body, call.headers)
        assert verified["event"] == "lead.qualified"
        assert call.headers["idempotency-key"] == call.headers["webhook-id"]
    assert json.loads(calls[0].body)["data"] == {
        "email": "lead0@example.com", "first_name": "Lead0", "last_name": "Doe",
        "company": "Acme", "score": 55}

    rows = outbox(workspace, flow.id)
    assert sorted(set(zip(rows["channel"], rows["status"], rows["audience"], strict=True))) == [
        ("email", "sent", "internal"), ("webhook", "sent", "contact")]
    with workspace.connection(read_only=True) as connection:
        channels = connection.execute(
            "SELECT DISTINCT channel FROM messages WHERE flow_id = ?", [flow.id]).fetchall()
        crm = connection.execute("SELECT count(*) FROM crm_records").fetchone()
    assert channels == [("email",)]  # webhook calls are requests, not messages
    assert crm == (3,)


def _sms_and_api_flow(base: str) -> Flow:
    flow = (Flow.new("sms_api").add("start", "manual_trigger")
            .add("text", "sms_send", body="Hi {{ first_name }}, code {{ promo }}")
            .add("plan", "external_api", url=base + "/plan?company={{ company }}",
                 store={"plan": "data.plan"}, cache_hours=24)
            .connect("start", "text").connect("text", "plan"))
    flow.params = {"promo": "SAVE10"}
    flow.settings.connections = {"sms": "sms", "api": "api"}
    return flow


def test_sms_and_api_calls_over_http_map_the_answer_and_cache_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def answer(received: object) -> Answer:
        path = getattr(received, "path", "")
        if "Messages.json" in path:
            return Answer(201, b'{"sid": "SM123"}')
        return Answer(200, b'{"data": {"plan": "pro"}}')

    server = HttpServer(answer).start()
    try:
        monkeypatch.setenv("TWILIO_TOKEN", "token-for-tests")
        workspace = workspace_with(tmp_path, leads(2), {
            "sms": {"kind": "twilio", "base_url": server.url, "account_sid": "AC1",
                    "auth_token": "env:TWILIO_TOKEN", "from": "+15559999999",
                    "allow_hosts": ["127.0.0.1"]},
            "api": {"kind": "http", "allow_hosts": ["127.0.0.1"], "method": "GET"}})
        flow = _sms_and_api_flow(server.url)
        workspace.deploy(flow)
        workspace.request_enrollment(flow, "start", ["c00000"], T0)
        workspace.tick(flow, T0)
        assert deliver(workspace, now=T0).sent == 2  # the SMS and the API call
        sms = [r for r in server.requests if "Messages.json" in r.path]
        assert parse_qs(sms[0].body.decode())["Body"] == ["Hi Lead0, code SAVE10"]
        assert parse_qs(sms[0].body.decode())["To"] == ["+15550000000"]

        # The second contact's request is the same (same company): served from the cache.
        workspace.request_enrollment(flow, "start", ["c00001"], T0 + timedelta(hours=1))
        moment = T0 + timedelta(hours=1)
        workspace.tick(flow, moment)
        report = deliver(workspace, now=moment)
        assert (report.sent, report.cached) == (1, 1)
        api_calls = [r for r in server.requests if r.path.startswith("/plan")]
        assert [r.path for r in api_calls] == ["/plan?company=Acme"]
        with workspace.connection(read_only=True) as connection:
            plans = connection.execute(
                "SELECT contact_id, plan FROM contacts ORDER BY 1").fetchall()
            refs = connection.execute(
                "SELECT contact_id, provider_ref FROM outbox_all WHERE channel = 'api' "
                "ORDER BY 1").fetchall()
            messages = connection.execute(
                "SELECT channel, count(*) FROM messages GROUP BY 1 ORDER BY 1").fetchall()
        assert plans == [("c00000", "pro"), ("c00001", "pro")]
        assert refs[1] == ("c00001", "cache")
        assert messages == [("sms", 2)]
    finally:
        server.stop()


def test_status_shows_reasons_and_dead_letters(tmp_path: Path, http: HttpServer) -> None:
    http.answer = lambda received: Answer(422, b'{"error": "bad payload"}')
    workspace = workspace_with(tmp_path, leads(2, unsubscribed=[False, True]),
                               {"hooks": webhook_connection()})
    flow = (Flow.new("alerts").add("start", "manual_trigger")
            .add("hook", "webhook_call", url=f"{http.url}/in", event="x", include=["email"])
            .add("mail", "email_send", subject="Hi", body="Hello")
            .connect("start", "hook").connect("hook", "mail"))
    flow.settings.connections = {"webhook": "hooks"}
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", ["c00000", "c00001"], T0)
    workspace.tick(flow, T0)
    report = deliver(workspace, now=T0)
    assert (report.sent, report.dead, report.retried) == (0, 2, 0)  # 4xx: dead at once
    shown = status(workspace, flow)
    assert shown["outbox"] == {"dead": 2, "sent": 1, "suppressed": 1}
    assert shown["reasons"] == {"dead:rejected": 2, "suppressed:unsubscribed": 1}
    assert shown["dead_letters"][0]["error"].startswith("webhook: HTTP 422")
    assert shown["dead_letters"][0]["attempts"] == 1
