"""One renderer in the workspace: the run's params reach both paths, every field is rendered, and
a preview shows exactly the message the outbox row holds."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import yaml
from typer.testing import CliRunner

import mawb
from mawb.channels.smtp import message_id
from mawb.cli import app
from mawb.engine.workspace import Workspace
from mawb.model import Flow

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 11, 2, 9, 0)
CONTACTS = pd.DataFrame([
    {"contact_id": "c1", "email": "ada@example.com", "first_name": "Ada", "plan": "pro",
     "email_consent": True},
    {"contact_id": "c2", "email": "bob@example.com", "first_name": None, "plan": "free",
     "email_consent": True}])


SUBJECT = "Code {{ promo }} for {{ first_name | default: 'you' }}"  # simple: rendered in SQL
BODY = "{{ promo | upcase }}: {% if plan == 'pro' %}thanks{% else %}try pro{% endif %}"


def _flow() -> Flow:
    flow = (Flow.new("promo").add("start", "manual_trigger")
            .add("mail", "email_send", subject=SUBJECT, body=BODY, html="<p>{{ promo }}</p>")
            .add("post", "social_post", text="Launch: {{ promo | upcase }}", networks=["twitter"])
            .add("call", "api_call", url="https://api.example.com/{{ plan }}?p={{ promo }}",
                 body='{"who": "{{ first_name }}"}', headers={"X-Promo": "{{ promo }}"})
            .connect("start", "mail").connect("mail", "post").connect("post", "call"))
    flow.params = {"promo": "save10"}
    return flow


def _rows(workspace: Workspace) -> pd.DataFrame:
    with workspace.connection(read_only=True) as connection:
        return connection.execute(
            "SELECT contact_id, node_id, channel, recipient, subject, body, html, "
            "CAST(payload AS VARCHAR) AS payload, status FROM outbox_all "
            "ORDER BY node_id, contact_id"
        ).fetchdf()


def _run(home: Path, params: dict[str, object] | None) -> pd.DataFrame:
    workspace = Workspace(home)
    workspace.import_contacts(CONTACTS)
    flow = _flow()
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", ["c1", "c2"], T0)
    workspace.tick(flow, T0, params)
    return _rows(workspace)


def test_run_params_reach_the_sql_and_the_python_path(tmp_path: Path) -> None:
    default = _run(tmp_path / "a", None).set_index(["node_id", "contact_id"])
    swept = _run(tmp_path / "b", {"promo": "save20"}).set_index(["node_id", "contact_id"])
    assert default.loc[("mail", "c1"), "subject"] == "Code save10 for Ada"  # SQL path
    assert default.loc[("mail", "c2"), "subject"] == "Code save10 for you"
    assert default.loc[("mail", "c1"), "body"] == "SAVE10: thanks"  # python-liquid path
    assert default.loc[("mail", "c2"), "body"] == "SAVE10: try pro"
    assert default.loc[("mail", "c1"), "html"] == "<p>save10</p>"
    assert swept.loc[("mail", "c1"), "subject"] == "Code save20 for Ada"
    assert swept.loc[("mail", "c1"), "body"] == "SAVE20: thanks"
    post = swept.xs("post", level="node_id").iloc[0]
    assert (post["channel"], post["recipient"], post["body"]) == ("social", "twitter",
                                                                  "Launch: SAVE20")
    call = json.loads(swept.loc[("call", "c2"), "payload"])
    assert call["url"] == "https://api.example.com/free?p=save20"
    assert call["headers"] == {"X-Promo": "save20"}
    assert json.loads(call["body"]) == {"who": ""}
    assert swept.loc[("call", "c2"), "channel"] == "api"
    assert set(swept["status"]) == {"sent"}  # no connection: the sandbox


def test_a_template_that_fails_to_render_is_dead_with_its_reason(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    workspace.import_contacts(CONTACTS)
    flow = (Flow.new("broken").add("start", "manual_trigger")
            .add("mail", "email_send", subject="Hi", body="{{ first_name | divided_by: 0 }}")
            .connect("start", "mail"))
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", ["c1"], T0)
    workspace.tick(flow, T0)
    with workspace.connection(read_only=True) as connection:
        row = connection.execute("SELECT status, reason, error FROM outbox_all").fetchone()
        messages = connection.execute("SELECT count(*) FROM messages").fetchone()
    assert row is not None and row[:2] == ("dead", "render_failed")
    assert str(row[2]).startswith("render failed:")
    assert messages == (0,)


def test_preview_is_the_message_the_outbox_holds(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    workspace.import_contacts(CONTACTS)
    flow = _flow()
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", ["c1", "c2"], T0)
    workspace.tick(flow, T0, {"promo": "save20"})
    rows = _rows(workspace).set_index(["node_id", "contact_id"])
    for contact in ("c1", "c2"):
        shown = mawb.preview(flow, "mail", contact, params={"promo": "save20"}, home=tmp_path)
        row = rows.loc[("mail", contact)]
        assert (shown.recipient, shown.subject, shown.body, shown.html) == (
            row["recipient"], row["subject"], row["body"], row["html"])
        assert shown.connection is None and shown.audience == "contact"


def test_preview_with_an_smtp_connection_shows_the_headers(tmp_path: Path) -> None:
    (tmp_path / "connections.yaml").write_text(yaml.safe_dump({"connections": {"mail": {
        "kind": "smtp", "host": "127.0.0.1", "port": 2525, "security": "none",
        "from": "news@shop.example"}}}))
    workspace = Workspace(tmp_path)
    workspace.import_contacts(CONTACTS)
    flow = _flow()
    flow.settings.connections = {"email": "mail"}
    shown = mawb.preview(flow, "mail", "c1", home=tmp_path)
    key = "promo:1:c1:mail:1:0"
    assert shown.idempotency_key == key
    assert shown.headers["Message-ID"] == message_id(key, "news@shop.example")
    assert shown.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/u/" in shown.headers["List-Unsubscribe"]
    assert shown.mime is not None and "Code save10 for Ada" in shown.mime

    runner = CliRunner()
    path = tmp_path / "promo.json"
    flow.save(path)
    result = runner.invoke(app, ["preview", str(path), "mail", "--contact", "c1", "--home",
                                 str(tmp_path), "--param", "promo=save30", "--json"])
    assert result.exit_code == 0, result.output
    shown_json = json.loads(result.stdout)
    assert shown_json["subject"] == "Code save30 for Ada"
    assert shown_json["headers"]["Message-ID"] == message_id(key, "news@shop.example")
    missing = runner.invoke(app, ["preview", str(path), "mail", "--contact", "nobody",
                                  "--home", str(tmp_path)])
    assert missing.exit_code == 2
    assert "contact 'nobody' is not in the workspace" in missing.output
