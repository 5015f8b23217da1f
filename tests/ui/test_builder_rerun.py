"""What a Builder rerun may skip: work reused per flow object, store reads cached per store
change, drafts written compactly with throttled fsync, and the errors the canvas redraws."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pandas as pd

import mawb
from mawb.ui import builder_reads as reads
from mawb.ui import builder_state as bs
from mawb.ui import drafts as drafts_module
from mawb.ui.drafts import DraftStore
from mawb.ui.flow_graph import flow_to_graph

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def test_results_are_reused_per_flow_object_and_recomputed_for_a_new_one() -> None:
    state = bs.BuilderState(flow=mawb.load_template("lead_welcome_v1"))
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert bs.remembered(state, "n", (state.flow,), compute) == 1
    assert bs.remembered(state, "n", (state.flow,), compute) == 1  # same object: reused
    state.flow = state.flow.model_copy(update={"name": "Renamed"})
    assert bs.remembered(state, "n", (state.flow,), compute) == 2
    columns = frozenset({"email"})
    assert bs.remembered(state, "n", (state.flow, columns), compute) == 3
    assert bs.remembered(state, "n", (state.flow, frozenset({"email"})), compute) == 3  # a copy
    assert bs.flow_text(state) is bs.flow_text(state)
    assert json.loads(bs.flow_text(state))["name"] == "Renamed"


def test_dirty_follows_the_draft_not_a_stale_answer() -> None:
    saved = mawb.load_template("lead_welcome_v1")
    state = bs.BuilderState(flow=saved, saved=saved, based_on=1)
    assert not state.dirty
    state.flow = saved.model_copy(update={"description": "changed"})
    assert state.dirty
    state.flow = saved.model_copy()  # equal content, new object
    assert not state.dirty


def test_drafts_are_compact_and_fsynced_at_most_once_per_interval(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(drafts_module.os, "fsync", lambda fd: synced.append(fd))
    monkeypatch.setattr(drafts_module, "_synced", {})
    store = DraftStore(tmp_path)
    flow = mawb.load_template("lead_welcome_v1")
    for subject in ("One", "Two", "Three"):
        store.save("welcome", flow.model_copy(update={"description": subject}), based_on=1)
    assert len(synced) == 1  # three edits in a burst, one flush
    text = store.path("welcome").read_text(encoding="utf-8")
    compact = json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    assert text == compact
    loaded = store.load("welcome")
    assert loaded is not None and loaded.flow.description == "Three"
    assert not [name for name in os.listdir(store.folder) if name.endswith(".tmp")]


def test_store_reads_are_cached_until_the_store_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mawb.engine import Workspace
    from mawb.ui.reader import WorkspaceReader

    opened: list[int] = []
    read = WorkspaceReader.read

    def counted(self: WorkspaceReader):
        opened.append(1)
        return read(self)

    monkeypatch.setattr(WorkspaceReader, "read", counted)
    reads.forget()
    assert reads.store_stamp(tmp_path) is None
    assert reads.contact_columns(tmp_path) is None
    assert reads.flow_state(tmp_path, "anything") == "draft"
    workspace = Workspace(tmp_path)
    workspace.import_contacts(pd.DataFrame({"contact_id": ["c1"], "email": ["a@example.com"]}))
    stamp = reads.store_stamp(tmp_path)
    first = reads.contact_columns(tmp_path)
    assert stamp is not None and first is not None and "email" in first
    assert reads.contact_columns(tmp_path) == first and len(opened) == 1  # cached
    workspace.import_contacts(pd.DataFrame({"contact_id": ["c2"], "email": ["b@example.com"],
                                            "plan": ["pro"]}))
    assert reads.store_stamp(tmp_path) != stamp
    changed = reads.contact_columns(tmp_path)
    assert changed is not None and "plan" in changed and len(opened) == 2
    reads.forget()  # explicit invalidation: the next read opens the store again
    assert reads.contact_columns(tmp_path) == changed and len(opened) == 3


def test_the_canvas_learns_which_errors_it_may_redraw_itself() -> None:
    flow = mawb.load_template("lead_welcome_v1").add("loose", "delay_action", days=-1)
    graph = flow_to_graph(flow, diagnostics=flow.validate().diagnostics)
    loose = next(node for node in graph["nodes"] if node["id"] == "loose")["data"]
    assert "no trigger leads here" in loose["error"]
    assert loose["other_errors"] and all("no trigger" not in m for m in loose["other_errors"])
    assert all(not node["data"]["other_errors"] for node in graph["nodes"]
               if node["id"] != "loose")
