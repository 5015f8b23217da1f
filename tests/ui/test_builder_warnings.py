"""Warnings that need the workspace (unknown Liquid variables), loose branching steps, and
plain-language messages for the params models' errors."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from streamlit.testing.v1 import AppTest
from test_builder_app import PAGE, TIMEOUT, edge, node, send_canvas

from mawb import nodes
from mawb.data import synthetic_contacts
from mawb.engine import Workspace
from mawb.model import Flow, Settings
from mawb.ui.config_panel import field_errors
from mawb.validate import validate_flow

if TYPE_CHECKING:
    from pathlib import Path

COLUMNS = {"contact_id", "first_name", "email", "engagement_score"}


def welcome(body: str) -> Flow:
    return (Flow.new("f", "F").add("start", "manual_trigger")
            .add("hello", "email_send", subject="Hi", body=body).connect("start", "hello"))


def codes(flow: Flow, columns: set[str] | None = COLUMNS) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for d in validate_flow(flow, columns=columns).diagnostics:
        found.setdefault(d.code, []).append(d.message)
    return found


def test_a_misspelt_variable_is_a_warning_that_suggests_the_attribute() -> None:
    found = codes(welcome("Hi {{ frist_name }}"))
    assert found["unknown_variable"] == [
        "{{ frist_name }} is not a contact attribute or flow param, so it renders empty; "
        "did you mean first_name?"]
    assert "unknown_variable" not in codes(welcome("Hi {{ first_name | default: 'you' }}"))
    params = welcome("Take {{ discount }} off").model_copy(update={"params": {"discount": 10}})
    assert "unknown_variable" not in codes(params)
    assert "unknown_variable" not in codes(welcome("Hi {{ frist_name }}"), columns=None)
    assert validate_flow(welcome("Hi {{ frist_name }}"), columns=COLUMNS).valid  # a warning


def test_a_branching_step_with_no_connected_handle_is_flagged() -> None:
    flow = (Flow.new("f", "F").add("start", "manual_trigger")
            .add("check", "if_condition", condition="engagement_score > 0.5")
            .connect("start", "check"))
    assert "unconnected_branch" in codes(flow)
    flow.add("yes", "delay_action", hours=1).connect("check", "yes", "true")
    assert "unconnected_branch" not in codes(flow)  # one loose branch lets contacts leave


def test_params_errors_are_in_plain_words() -> None:
    delay = nodes.get("delay_action")
    assert field_errors(delay, {"at_local_time": "25:99"}) == {
        "at_local_time": "should be a time of day as HH:MM, e.g. 09:30"}
    assert field_errors(delay, {"days": -1})["days"].startswith("should be at least")
    assert "pattern" not in str(field_errors(Settings, {"tick": 5, "nope": 1}))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    Workspace(tmp_path).import_contacts(synthetic_contacts(5, seed=1))
    monkeypatch.setenv("MAWB_HOME", str(tmp_path))
    return tmp_path


def test_the_builder_checks_templates_against_the_workspace(home: Path) -> None:
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    graph = {"nodes": [node("start", "manual_trigger", 0),
                       node("hello", "email_send", 300, {"subject": "Hi {{ frist_name }}"})],
             "edges": [edge("start", "hello")], "selected": None}
    send_canvas(app, graph)
    table = next(f.value for f in app.dataframe if "problem" in f.value.columns)
    row = table[table["code"] == "unknown_variable"].iloc[0]
    assert (row["node"], row["field"]) == ("hello", "params.subject")
    assert "did you mean first_name" in row["problem"]


def test_sms_segments_follow_the_gsm_alphabet() -> None:
    from mawb.ui.preview_panel import sms_segments

    assert (sms_segments("x" * 160).segments, sms_segments("x" * 161).segments) == (1, 2)
    assert sms_segments("€" * 80).units == 160  # extension characters take two septets
    assert sms_segments("Grüße 😀").encoding == "UCS-2"
    assert sms_segments("😀" * 35).segments == 1  # 70 UTF-16 units fit one message
    assert sms_segments("😀" * 36).segments == 2  # 72: two parts of at most 67


def test_the_drawer_previews_a_message_for_a_contact(home: Path) -> None:
    pytest.importorskip("mawb.engine.preview")
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    graph = {"nodes": [node("start", "manual_trigger", 0),
                       node("hello", "email_send", 300,
                            {"subject": "Hi {{ first_name }}", "body": "Welcome"})],
             "edges": [edge("start", "hello")], "selected": "hello"}
    send_canvas(app, graph)
    with Workspace(home).connection(read_only=True) as connection:
        contact, first = connection.execute(
            "SELECT contact_id, first_name FROM contacts ORDER BY 1 LIMIT 1").fetchone()
    key = next(t.key for t in app.text_input if str(t.key).endswith("::preview_contact"))
    app.text_input(key=key).input(contact).run()
    assert not app.exception, app.exception
    assert any(m.value == f"**Subject:** Hi {first}" for m in app.markdown)
    app.text_input(key=key).input("nobody").run()
    assert any("nobody" in e.value for e in app.error)
