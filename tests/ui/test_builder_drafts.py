"""Builder drafts, the discard prompt, the exact dirty marker and undo/redo, under AppTest.

A fresh AppTest on the same workspace is a new browser session (a reload, or a restarted
server): what it opens comes only from the workspace's files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from streamlit.testing.v1 import AppTest
from test_builder_app import PAGE, TIMEOUT, edge, node, send_canvas, state_of

from mawb.ui.drafts import DraftStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("MAWB_HOME", str(tmp_path))
    yield tmp_path


@pytest.fixture
def app(home: Path) -> AppTest:
    return fresh(home)


def two_steps(subject: str = "Hi") -> dict:
    return {"nodes": [node("start", "manual_trigger", 0),
                      node("hello", "email_send", 300, {"subject": subject})],
            "edges": [edge("start", "hello")], "selected": None}


def status(app: AppTest) -> str:
    return " ".join(m.value for m in app.markdown if "`new_flow`" in m.value)


def fresh(home: Path) -> AppTest:
    app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    return app


def test_an_invalid_draft_is_autosaved_and_restored_in_a_new_session(app: AppTest,
                                                                     home: Path) -> None:
    graph = two_steps()
    graph["nodes"].append(node("orphan", "sms_send", 600, {"body": "x"}))  # unreachable: invalid
    send_canvas(app, graph)
    assert "unsaved changes" in status(app)  # in the same run as the edit, not one later
    draft = DraftStore(home).load("new_flow")
    assert draft is not None and {n.id for n in draft.flow.nodes} == {"start", "hello",
                                                                       "orphan"}
    again = fresh(home)  # a reload, or the server restarted
    restored = state_of(again).flow
    assert {n.id for n in restored.nodes} == {"start", "hello", "orphan"}
    assert any("Restored your draft" in s.value for s in again.success)
    assert "unsaved changes" in status(again)


def test_opening_another_flow_asks_before_leaving_unsaved_changes(app: AppTest,
                                                                  home: Path) -> None:
    send_canvas(app, two_steps())
    app.selectbox(key=f"open_{state_of(app).generation}").set_value("New empty flow").run()
    assert any("has unsaved changes" in w.value for w in app.warning)
    assert len(state_of(app).flow.nodes) == 2  # nothing replaced yet
    next(b for b in app.button if b.label == "Cancel").click().run()
    assert len(state_of(app).flow.nodes) == 2
    assert not any("has unsaved changes" in w.value for w in app.warning)
    app.selectbox(key=f"open_{state_of(app).generation}").set_value("New empty flow").run()
    next(b for b in app.button if b.label == "Discard changes").click().run()
    assert state_of(app).flow.nodes == []
    assert DraftStore(home).load("new_flow") is None


def test_undo_and_redo_cover_canvas_and_panel_edits(app: AppTest) -> None:
    send_canvas(app, two_steps())
    send_canvas(app, {**two_steps(), "selected": "hello"})  # selecting is no edit of content
    key = f"{state_of(app).inputs_key}::hello::subject"
    app.text_input(key=key).set_value("Welcome aboard").run()
    assert state_of(app).flow.node("hello").params["subject"] == "Welcome aboard"
    undo = next(b for b in app.button if b.label == "Undo")
    undo.click().run()
    assert state_of(app).flow.node("hello").params["subject"] == "Hi"
    # the panel shows the restored value (fresh inputs), and does not write the old one back
    key = f"{state_of(app).inputs_key}::hello::subject"
    assert app.text_input(key=key).value == "Hi"
    steps = click_until_disabled(app, "Undo")
    assert state_of(app).flow.nodes == []  # back before the first canvas edit
    assert click_until_disabled(app, "Redo") == steps + 1  # the first undo was clicked above
    assert state_of(app).flow.node("hello").params["subject"] == "Welcome aboard"


def click_until_disabled(app: AppTest, label: str, limit: int = 6) -> int:
    """Click the button until it is disabled; how many clicks it took."""
    for clicks in range(limit):
        button = next(b for b in app.button if b.label == label)
        if button.disabled:
            return clicks
        button.click().run()
        assert not app.exception, app.exception
    raise AssertionError(f"{label} still enabled after {limit} clicks")
