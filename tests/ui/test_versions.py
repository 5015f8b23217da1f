"""Flow versions: immutable numbered files with messages, history, diff and rollback."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from mawb.model import Flow
from mawb.validate import FlowInvalidError
from mawb.versions import HISTORY_FILE, NothingToSaveError, VersionStore, diff

if TYPE_CHECKING:
    from pathlib import Path


def welcome() -> Flow:
    return (
        Flow.new("welcome", "Welcome")
        .add("start", "manual_trigger")
        .add("check", "if_condition", condition="engagement_score > :threshold")
        .add("hot", "email_send", subject="Hi {{ first_name }}")
        .add("cold", "delay_action", days=2)
        .connect("start", "check")
        .connect("check", "hot", "true")
        .connect("check", "cold", "false")
        .model_copy(update={"params": {"threshold": 0.5}})
    )


def test_save_numbers_versions_and_keeps_files_immutable(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    first = store.save(welcome(), "first cut")
    changed = welcome()
    changed.params["threshold"] = 0.7
    second = store.save(changed, "raise the threshold")
    assert (first.version, second.version) == (1, 2)
    assert store.versions("welcome") == [1, 2]
    assert store.load("welcome", 1).params == {"threshold": 0.5}
    assert store.load("welcome").params == {"threshold": 0.7}
    # The engine's layout: flows/<id>/v<N>.json, readable as plain flow files.
    saved = json.loads((tmp_path / "flows" / "welcome" / "v2.json").read_text())
    assert saved["version"] == 2 and saved["params"] == {"threshold": 0.7}
    assert [(v.version, v.message) for v in store.history("welcome")] == [
        (2, "raise the threshold"),
        (1, "first cut"),
    ]
    assert store.flow_ids() == ["welcome"]


def test_identical_flow_and_invalid_flow_are_refused(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    store.save(welcome(), "first")
    with pytest.raises(NothingToSaveError):
        store.save(welcome(), "again")
    broken = welcome().connect("hot", "start")  # an edge into a trigger
    with pytest.raises(FlowInvalidError) as refused:
        store.save(broken, "broken")
    assert any(d.code == "trigger_input" for d in refused.value.report.errors)
    assert store.versions("welcome") == [1]


def test_a_taken_version_number_is_never_overwritten(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    store.save(welcome(), "first")
    # Another process saved v2 between our look at the folder and our write.
    racing = welcome().model_copy(update={"description": "from elsewhere", "version": 2})
    racing.save(store.path("welcome", 2))
    mine = welcome().model_copy(update={"description": "mine"})
    original = store.latest
    store.latest = lambda flow_id: 1  # type: ignore[method-assign]
    try:
        saved = store.save(mine, "mine")
    finally:
        store.latest = original  # type: ignore[method-assign]
    assert saved.version == 3
    assert store.load("welcome", 2).description == "from elsewhere"
    assert store.load("welcome", 3).description == "mine"


def test_rollback_saves_the_old_content_as_a_new_version(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    store.save(welcome(), "first")
    changed = welcome()
    changed.params["threshold"] = 0.9
    store.save(changed, "second")
    restored = store.rollback("welcome", 1)
    assert restored.version == 3
    assert store.load("welcome", 3).params == {"threshold": 0.5}
    assert store.history("welcome")[0].message == "Roll back to v1"
    assert diff(store.load("welcome", 1), store.load("welcome", 3)).empty


def test_history_tolerates_versions_without_notes_and_a_damaged_line(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    welcome().save(store.path("welcome", 1))  # deployed by another tool, no message
    store.save(welcome().model_copy(update={"name": "Welcome 2"}), "renamed")
    with (store.folder("welcome") / HISTORY_FILE).open("a") as history:
        history.write("{not json\n")
    listed = store.history("welcome")
    assert [(v.version, v.message) for v in listed] == [(2, "renamed"), (1, "")]
    assert listed[0].nodes == 4 and listed[0].edges == 3


def test_diff_names_nodes_edges_and_params() -> None:
    before = welcome()
    after = welcome()
    after.nodes = [n for n in after.nodes if n.id != "cold"]
    after.edges = [e for e in after.edges if e.target != "cold"]
    after.add("nurture", "sms_send", body="Hi")
    after.connect("check", "nurture", "false")
    after.node("hot").params["subject"] = "Welcome aboard"
    after.node("hot").params["preheader"] = "news"
    after.params["threshold"] = 0.8
    after.ui.positions["start"] = (40.0, 0.0)
    changes = diff(before, after)
    assert [c.subject for c in changes.of("added", "node")] == ["nurture"]
    assert [c.subject for c in changes.of("removed", "node")] == ["cold"]
    assert [c.subject for c in changes.of("added", "edge")] == ["check -[false]-> nurture"]
    assert [c.subject for c in changes.of("removed", "edge")] == ["check -[false]-> cold"]
    subject = changes.of("changed", "param")
    assert [(c.subject, c.before, c.after) for c in subject] == [
        ("hot.subject", "Hi {{ first_name }}", "Welcome aboard")
    ]
    assert [c.subject for c in changes.of("added", "param")] == ["hot.preheader"]
    assert [(c.before, c.after) for c in changes.of("changed", "flow_param")] == [(0.5, 0.8)]
    # Moving a node is layout, not behaviour: counted apart.
    assert changes.moved_nodes == ()  # start had no position before
    assert "1 node added" in changes.summary() and "1 node removed" in changes.summary()
    rows = changes.to_rows()
    assert {"change", "item", "subject", "before", "after"} == set(rows[0])


def test_diff_of_settings_and_layout_only() -> None:
    before = welcome()
    before.ui.positions.update({"start": (0.0, 0.0), "check": (300.0, 0.0)})
    after = before.model_copy(deep=True)
    after.ui.positions["check"] = (300.0, 140.0)
    only_moved = diff(before, after)
    assert only_moved.empty and only_moved.moved_nodes == ("check",)
    assert only_moved.summary() == "1 moved on the canvas"
    after.settings.goal = "converted = true"
    changed = diff(before, after)
    assert [(c.item, c.subject, c.after) for c in changed.changes] == [
        ("setting", "goal", "converted = true")
    ]


def test_a_hand_damaged_version_is_listed_not_fatal(tmp_path: Path) -> None:
    store = VersionStore(tmp_path)
    store.save(welcome(), "first")
    store.path("welcome", 2).write_text("{broken", encoding="utf-8")
    listed = store.history("welcome")
    assert [v.version for v in listed] == [2, 1]
    assert listed[0].message.startswith("unreadable:") and listed[1].message == "first"
