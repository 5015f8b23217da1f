"""The Builder's versions tab: save a version with a message, history, diff, rollback.

All rules (immutability, numbering, what counts as a change) live in `mawb.versions`; this
module only lays out the inputs and tables and turns refusals into friendly messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from mawb.model import FlowFileError
from mawb.ui import builder_state as bs
from mawb.ui.in_flight_panel import render_in_flight
from mawb.validate import FlowInvalidError
from mawb.versions import NothingToSaveError, VersionStore, diff

if TYPE_CHECKING:
    from mawb.model import Flow
    from mawb.validate import Report

DRAFT = "draft"


def render_versions(state: bs.BuilderState, store: VersionStore, report: Report) -> None:
    save, history = st.columns([2, 3], gap="large")
    with save:
        _save_form(state, store, report)
    with history:
        _history(state, store)
    render_in_flight(state.flow.id, store)


def _save_form(state: bs.BuilderState, store: VersionStore, report: Report) -> None:
    st.markdown("**Save a version**")
    with st.form("save_version", clear_on_submit=True, border=False):
        message = st.text_input("What changed?", placeholder="e.g. raise the score threshold")
        submitted = st.form_submit_button("Save version", icon=":material/save:",
                                          disabled=not report.valid)
    if not report.valid:
        st.caption("Only valid flows are saved: fix the errors listed above first.")
    if submitted:
        _save(state, store, message)


def _save(state: bs.BuilderState, store: VersionStore, message: str) -> None:
    if not message.strip():
        st.warning("Say in a few words what changed: the message is kept with the version.")
        return
    previous = state.saved
    try:
        saved = store.save(state.flow, message)
    except NothingToSaveError as error:
        st.info(f"Not saved: {error}.")
        return
    except FlowInvalidError as error:
        st.error(f"Not saved: {len(error.report.errors)} validation errors.")
        return
    summary = diff(previous, saved).summary() if previous is not None else "first version"
    bs.replace_flow(state, saved, based_on=saved.version, saved=saved,
                    notice=f"Saved {saved.id} v{saved.version}: {summary}.")
    # Show what this save changed: previous version -> the new one.
    st.session_state[_compare_key(state, "to")] = saved.version
    st.session_state[_compare_key(state, "from")] = previous.version if previous else None
    st.rerun()


def _history(state: bs.BuilderState, store: VersionStore) -> None:
    listed = store.history(state.flow.id)
    st.markdown(f"**History of `{state.flow.id}`**")
    if not listed:
        st.caption("No saved versions yet: save one to start the history.")
        return
    st.dataframe(pd.DataFrame([info.to_row() for info in listed]), hide_index=True,
                 width="stretch", key="version_history")
    numbers = [info.version for info in listed]
    _diff_view(state, store, numbers)
    _rollback(state, store, numbers)


def _diff_view(state: bs.BuilderState, store: VersionStore, numbers: list[int]) -> None:
    older, newer = st.columns(2)
    choices: list[int | str] = [DRAFT, *numbers]
    to_key = _compare_key(state, "to")
    if st.session_state.get(to_key) not in choices:
        st.session_state[to_key] = DRAFT if state.dirty else numbers[0]
    to_choice = newer.selectbox("Compare to", choices, key=to_key, format_func=_label)
    from_key = _compare_key(state, "from")
    if st.session_state.get(from_key) not in choices:
        fallback = numbers[1] if len(numbers) > 1 else numbers[0]
        st.session_state[from_key] = fallback if to_choice != DRAFT else numbers[0]
    from_choice = older.selectbox("Compare from", choices, key=from_key, format_func=_label)
    before, after = _resolve(state, store, from_choice), _resolve(state, store, to_choice)
    if before is None or after is None:
        st.warning("That version's file cannot be read; see its history entry.")
        return
    changes = diff(before, after)
    st.markdown(f"**{_label(from_choice)} → {_label(to_choice)}:** {changes.summary()}")
    if changes.changes:
        st.dataframe(pd.DataFrame(changes.to_rows()), hide_index=True,
                     width="stretch", key="version_diff")


def _rollback(state: bs.BuilderState, store: VersionStore, numbers: list[int]) -> None:
    pick, act = st.columns([2, 1], vertical_alignment="bottom")
    target = pick.selectbox("Roll back to", numbers[1:] or numbers, format_func=_label,
                            key=f"rollback_{state.generation}")
    if act.button("Roll back", icon=":material/history:", width="stretch",
                  help="Saves that version's content again as a new version"):
        try:
            restored = store.rollback(state.flow.id, int(target))
        except (NothingToSaveError, FlowInvalidError) as error:
            st.info(f"Nothing rolled back: {error}.")
            return
        bs.replace_flow(state, restored, based_on=restored.version, saved=restored,
                        notice=f"Rolled back: v{restored.version} has the content of v{target}.")
        st.rerun()


def _resolve(state: bs.BuilderState, store: VersionStore, choice: int | str) -> Flow | None:
    if choice == DRAFT:
        return state.flow
    try:
        return store.load(state.flow.id, int(choice))
    except FlowFileError:
        return None


def _compare_key(state: bs.BuilderState, end: str) -> str:
    return f"compare_{end}_{state.flow.id}"


def _label(choice: int | str | None) -> str:
    return "current draft" if choice == DRAFT else f"v{choice}"
