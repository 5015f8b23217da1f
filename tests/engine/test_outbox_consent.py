"""Consent for real: reason codes, internal notifications, bounces, complaints, the suppression
list and its CSV import (all through the sandbox: the rules are the same with a connection)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
from typer.testing import CliRunner

from mawb.cli import app
from mawb.engine.workspace import Workspace
from mawb.model import Flow, FrequencyCap, QuietHours

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 11, 2, 9, 0)


def _contacts() -> pd.DataFrame:
    return pd.DataFrame([
        {"contact_id": "ok", "email": "ok@example.com", "email_consent": True,
         "unsubscribed": False, "do_not_contact": False},
        {"contact_id": "dnc", "email": "dnc@example.com", "email_consent": True,
         "unsubscribed": False, "do_not_contact": True},
        {"contact_id": "unsub", "email": "unsub@example.com", "email_consent": True,
         "unsubscribed": True, "do_not_contact": False},
        {"contact_id": "noconsent", "email": "nc@example.com", "email_consent": False,
         "unsubscribed": False, "do_not_contact": False},
        {"contact_id": "bounced", "email": "Bounced@Example.com", "email_consent": True,
         "unsubscribed": False, "do_not_contact": False},
    ])


def _flow(**settings: object) -> Flow:
    flow = (Flow.new("consent").add("start", "manual_trigger")
            .add("hello", "email_send", subject="Hi", body="Hello")
            .add("sales", "email_send", to="sales@example.com", subject="Lead {{ contact_id }}",
                 body="About {{ email }}")
            .connect("start", "hello").connect("hello", "sales"))
    for name, value in settings.items():
        setattr(flow.settings, name, value)
    return flow


def _rows(workspace: Workspace) -> dict[tuple[str, str], tuple[str, str | None]]:
    with workspace.connection(read_only=True) as connection:
        found = connection.execute(
            "SELECT node_id, contact_id, status, reason FROM outbox_all").fetchall()
    return {(node, contact): (state, reason) for node, contact, state, reason in found}


def _start(tmp_path: Path, flow: Flow) -> Workspace:
    workspace = Workspace(tmp_path)
    workspace.import_contacts(_contacts())
    runner = CliRunner()
    csv = tmp_path / "suppress.csv"
    csv.write_text("address,channel,reason\nbounced@example.com,email,hard bounce\n")
    result = runner.invoke(app, ["suppressions", "import", str(csv), "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", list(_contacts()["contact_id"]), T0)
    return workspace


def test_every_unsent_row_says_why_and_internal_mail_is_not_gated(tmp_path: Path) -> None:
    workspace = _start(tmp_path, _flow())
    workspace.tick(flow := workspace.load_flow("consent"), T0)
    rows = _rows(workspace)
    assert {contact: rows[("hello", contact)] for contact in _contacts()["contact_id"]} == {
        "ok": ("sent", None), "dnc": ("suppressed", "do_not_contact"),
        "unsub": ("suppressed", "unsubscribed"), "noconsent": ("suppressed", "no_consent"),
        "bounced": ("suppressed", "suppressed_address")}
    # The internal notification about each lead reaches sales, whatever the lead's consent.
    assert {rows[("sales", contact)] for contact in _contacts()["contact_id"]} == {
        ("sent", None)}
    with workspace.connection(read_only=True) as connection:
        recipients = connection.execute(
            "SELECT DISTINCT recipient FROM messages WHERE node_id = 'sales'").fetchall()
    assert recipients == [("sales@example.com",)]
    assert flow.node("sales").params["to"] == "sales@example.com"


def test_suppressed_internal_address_is_still_suppressed(tmp_path: Path) -> None:
    workspace = _start(tmp_path, _flow())
    csv = tmp_path / "sales.csv"
    csv.write_text("address\nsales@example.com\n")
    assert CliRunner().invoke(app, ["suppressions", "import", str(csv), "--home",
                                    str(tmp_path)]).exit_code == 0
    workspace.tick(workspace.load_flow("consent"), T0)
    assert {state for (node, _), state in _rows(workspace).items() if node == "sales"} == {
        ("suppressed", "suppressed_address")}


def test_quiet_hours_and_caps_hold_contacts_not_internal_mail(tmp_path: Path) -> None:
    flow = _flow(quiet_hours=QuietHours(start="08:00", end="10:00"),
                 frequency_cap=FrequencyCap(max_messages=1, per_days=1, mode="skip"))
    flow.add("again", "email_send", subject="Again", body="Again").connect("sales", "again")
    workspace = _start(tmp_path, flow)
    workspace.tick(flow, T0)  # 09:00 UTC: inside the quiet window
    rows = _rows(workspace)
    assert rows[("hello", "ok")] == ("pending", "quiet_hours")
    assert rows[("sales", "ok")] == ("sent", None)
    later = T0 + timedelta(hours=1, minutes=1)
    workspace.tick(flow, later)
    rows = _rows(workspace)
    # One contact message a day: of the two now due, one goes and the other is skipped; the
    # internal notification sent an hour ago did not count.
    assert sorted([rows[("hello", "ok")], rows[("again", "ok")]], key=str) == [
        ("sent", None), ("skipped", "frequency_cap")]


def test_bounces_and_complaints_suppress(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    workspace.import_contacts(_contacts())
    workspace.import_events(pd.DataFrame([
        {"event_id": "b1", "contact_id": "ok", "name": "bounce", "ts": T0,
         "properties": '{"type": "hard"}'},
        {"event_id": "b2", "contact_id": "noconsent", "name": "bounce", "ts": T0,
         "properties": '{"type": "soft"}'},
        {"event_id": "c1", "contact_id": "bounced", "name": "complaint", "ts": T0,
         "properties": "{}"}]))
    flow = (Flow.new("after").add("start", "manual_trigger")
            .add("hello", "email_send", subject="Hi", body="Hello").connect("start", "hello"))
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", ["ok", "bounced"], T0)
    workspace.tick(flow, T0)
    rows = _rows(workspace)
    assert rows[("hello", "ok")] == ("suppressed", "suppressed_address")
    assert rows[("hello", "bounced")] == ("suppressed", "unsubscribed")
    with workspace.connection(read_only=True) as connection:
        listed = connection.execute(
            "SELECT address, reason FROM suppressions ORDER BY 1").fetchall()
    assert listed == [("Bounced@Example.com", "complaint"), ("ok@example.com", "bounce")]


def test_a_bad_suppression_csv_imports_nothing(tmp_path: Path) -> None:
    Workspace(tmp_path).import_contacts(_contacts())
    csv = tmp_path / "bad.csv"
    csv.write_text("address,channel\nfine@example.com,email\n,email\nx@example.com,fax\n")
    result = CliRunner().invoke(app, ["suppressions", "import", str(csv), "--home",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert f"{csv}:3: address and contact_id are both empty" in result.output
    assert f"{csv}:4: channel: 'fax' is not one of email, sms, web_push" in result.output
    listed = CliRunner().invoke(app, ["suppressions", "list", "--home", str(tmp_path), "--json"])
    assert listed.exit_code == 0 and listed.stdout.strip() == "{}"
