"""The Builder's typed step form under AppTest: inputs by field type, pickers from the
workspace, the raw JSON toggle, flow params on the Experiments range, and one validation.

The page runs against a workspace with contacts and events, so the pickers have names to
offer; the draft the page holds is what the form wrote.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest
from streamlit.testing.v1 import AppTest
from test_builder_app import PAGE, TIMEOUT, diagnostics, edge, node, send_canvas, state_of

from mawb.data import synthetic_contacts, synthetic_events
from mawb.engine import Workspace
from mawb.ui.param_ranges import param_control

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    contacts = synthetic_contacts(30, seed=5)
    workspace = Workspace(tmp_path)
    workspace.import_contacts(contacts)
    workspace.import_events(synthetic_events(contacts, seed=5))
    monkeypatch.setenv("MAWB_HOME", str(tmp_path))
    test = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT).run()
    assert not test.exception
    return test


def workspace_events() -> list[str]:
    import os

    from mawb.ui.reader import WorkspaceReader

    with WorkspaceReader(os.environ["MAWB_HOME"]).read() as connection:
        return [r[0] for r in connection.execute(
            "SELECT DISTINCT name FROM events ORDER BY 1").fetchall()]


def test_typed_inputs_pickers_and_one_validation(app: AppTest) -> None:
    graph = {"nodes": [node("start", "event_trigger", 0, {"event": "my_own_event"}),
                       node("wait", "delay_action", 300, {"days": 2})],
             "edges": [edge("start", "wait")], "selected": "start"}
    send_canvas(app, graph)
    prefix = f"{state_of(app).inputs_key}::start"
    # The event is a picker of the workspace's events plus the flow's own.
    picker = app.selectbox(key=f"{prefix}::event")
    events = workspace_events()
    assert set(events) | {"my_own_event"} == set(picker.options)
    picker.set_value(events[0]).run()
    assert state_of(app).flow.node("start").params["event"] == events[0]
    # Conditions get the contact attributes as suggestions.
    assert any(c.value.startswith("Attributes you can use:") and "`company`" in c.value
               for c in app.caption)
    # The delay: a bounded number with its unit, and a time picker instead of HH:MM text.
    send_canvas(app, {**graph, "nodes": [graph["nodes"][0], node("wait", "delay_action", 300,
                                                                  {"days": 2})],
                      "selected": "wait"})
    prefix = f"{state_of(app).inputs_key}::wait"
    days = app.number_input(key=f"{prefix}::days")
    assert days.label == "Days" and days.max == 3650 and days.min == 0
    app.time_input(key=f"{prefix}::at_local_time").set_value(dt.time(9, 30)).run()
    assert state_of(app).flow.node("wait").params["at_local_time"] == "09:30"
    # Raw JSON: a bad time shows the same words inline and in the Validation panel.
    app.toggle(key=f"{prefix}::as_json").set_value(True).run()
    app.text_area(key=f"{prefix}::params_json").set_value(
        '{"days": 2, "at_local_time": "25:99"}').run()
    inline = [e.value for e in app.error]
    panel = [d["problem"] for d in diagnostics(app) if d["node"] == "wait"]
    assert panel == ["should be a time of day as HH:MM, e.g. 09:30"]
    assert any(panel[0] in message for message in inline)
    # Unreadable JSON keeps the params, and the Validation panel says so too (not "valid").
    app.text_area(key=f"{prefix}::params_json").set_value('{"days": ').run()
    assert state_of(app).flow.node("wait").params["at_local_time"] == "25:99"
    found = [d for d in diagnostics(app) if d["code"] == "unreadable_input"]
    assert len(found) == 1 and found[0]["node"] == "wait"
    assert any(found[0]["problem"] in message for message in (e.value for e in app.error))
    assert not any(s.value.startswith("No problems found") for s in app.success)


def test_flow_params_slide_over_the_experiments_range(app: AppTest) -> None:
    send_canvas(app, {"nodes": [node("start", "manual_trigger", 0)], "edges": [],
                      "selected": None})
    prefix = state_of(app).inputs_key
    app.toggle(key=f"{prefix}::flow_params_as_json").set_value(True).run()
    app.text_input(key=f"{prefix}::flow_params").set_value(
        '{"engagement_threshold": 0.6, "max_messages": 3}').run()
    app.toggle(key=f"{prefix}::flow_params_as_json").set_value(False).run()
    share = app.slider(key=f"{prefix}::flow_param::engagement_threshold")
    count = app.slider(key=f"{prefix}::flow_param::max_messages")
    expected = param_control("max_messages", 3)
    assert (share.min, share.max) == (0.0, 1.0)
    assert (count.min, count.max) == (expected.low, expected.high)
    count.set_value(7).run()
    assert state_of(app).flow.params == {"engagement_threshold": 0.6, "max_messages": 7}
    # The range stays where it was when the input first showed.
    assert app.slider(key=f"{prefix}::flow_param::max_messages").max == expected.high
