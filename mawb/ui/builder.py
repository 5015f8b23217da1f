"""The Builder page: canvas, config panel, live diagnostics, versions, import/export, compile.

``pages/1_Builder.py`` only calls `render_builder`. Each rerun applies the canvas's latest edit
and the config panel's inputs to the draft, validates it and draws the canvas with every error
on its node. The canvas is drawn last into a slot reserved at the top, so an edit in the config
panel shows on the canvas in the same run.
"""

from __future__ import annotations

import json
import tempfile
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st
import yaml

from mawb import templates
from mawb.model import FlowFileError, Settings
from mawb.ui import builder_state as bs
from mawb.ui.canvas import flow_canvas, latest_graph
from mawb.ui.config_panel import render_config_panel, render_model_inputs
from mawb.ui.flow_graph import flow_to_graph, palette_items
from mawb.ui.versions_panel import render_versions
from mawb.validate import Report, validate_flow
from mawb.versions import VersionStore

if TYPE_CHECKING:
    from pathlib import Path

    from mawb.model import Flow

CANVAS_HEIGHT = 600
EXPERIMENTS_PAGE = "pages/4_Experiments.py"
_OPEN_NEW = "New empty flow"
_TEMPLATE = "Template · "


def render_builder(home: Path | None = None) -> None:
    """Draw the whole page for the workspace at ``home`` (``MAWB_HOME`` or ``.mawb``)."""
    store = VersionStore(home)
    state = _state(store)
    bs.adopt_shared_flow(state, st.session_state.get(bs.SHARED_FLOW_KEY))
    bs.apply_canvas_edit(state, latest_graph(state.canvas_key))
    _header(state, store)
    canvas_slot = st.container()
    left, right = st.columns([5, 6], gap="large")
    with left:
        _config_panel(state)
    report = validate_flow(state.flow)
    with right:
        _diagnostics(report)
    with canvas_slot:
        _canvas(state, report)
    _forget_old_canvases(state)
    versions, files, dag = st.tabs(["Versions", "Import / export", "Airflow DAG"])
    with versions:
        render_versions(state, store, report)
    with files:
        _import_export(state)
    with dag:
        _compile(state, report)


def _state(store: VersionStore) -> bs.BuilderState:
    state = st.session_state.get(bs.STATE_KEY)
    if isinstance(state, bs.BuilderState):
        return state
    state = bs.BuilderState(flow=bs.new_flow())
    ids = store.flow_ids()
    if ids:
        _open_saved(state, store, ids[0])
    st.session_state[bs.STATE_KEY] = state
    return state


def _open_saved(state: bs.BuilderState, store: VersionStore, flow_id: str) -> bool:
    try:
        flow = store.load(flow_id)
    except FlowFileError as error:
        st.error(f"Could not open {flow_id}: {error}", icon=":material/error:")
        return False
    bs.replace_flow(state, flow, based_on=flow.version, saved=flow)
    return True


def _header(state: bs.BuilderState, store: VersionStore) -> None:
    title, status = st.columns([3, 2], vertical_alignment="bottom")
    title.header(f"Builder · {state.flow.name or state.flow.id}")
    based = f"v{state.based_on}" if state.based_on else "never saved"
    changed = " · unsaved changes" if state.dirty else ""
    status.markdown(f"`{state.flow.id}` · {based}{changed}")
    if state.notice:
        st.success(state.notice, icon=":material/check_circle:")
        state.notice = None
    pick, layout, simulate = st.columns([4, 1, 1], vertical_alignment="bottom")
    with pick:
        _open_menu(state, store)
    if layout.button("Auto layout", icon=":material/account_tree:", width="stretch"):
        bs.auto_layout(state)
        st.rerun()
    if simulate.button("Simulate", icon=":material/science:", width="stretch",
                       help="Open this flow on the Experiments page"):
        _simulate(state)


def _open_menu(state: bs.BuilderState, store: VersionStore) -> None:
    options = [_OPEN_NEW, *store.flow_ids(),
               *(f"{_TEMPLATE}{template_id}" for template_id in templates.template_ids())]
    choice = st.selectbox("Open a flow", options, index=None, key=f"open_{state.generation}",
                          placeholder="Open a saved flow, a template, or start a new one")
    if choice is None:
        return
    if choice == _OPEN_NEW:
        bs.replace_flow(state, bs.new_flow(), notice="New empty flow: drag a trigger in.")
    elif choice.startswith(_TEMPLATE):
        template = templates.load_template(choice.removeprefix(_TEMPLATE))
        bs.replace_flow(state, template, notice=f"Template {template.id} opened as a new draft.")
    elif _open_saved(state, store, choice):
        state.notice = f"Opened {choice} v{state.based_on}."
    else:
        return
    st.rerun()


def _simulate(state: bs.BuilderState) -> None:
    shared = state.flow.model_copy(deep=True)
    st.session_state[bs.SHARED_FLOW_KEY] = shared
    state.adopted = shared  # coming back must not re-open our own hand-over
    try:
        st.switch_page(EXPERIMENTS_PAGE)
    except st.errors.StreamlitAPIException:
        st.info("The flow is ready for the Experiments page; open it from the navigation.")


def _canvas(state: bs.BuilderState, report: Report) -> None:
    if not state.flow.nodes:
        st.info("Empty flow: drag a **trigger** from the palette onto the canvas, then add "
                "steps and connect their handles.", icon=":material/touch_app:")
    graph = flow_to_graph(state.flow, diagnostics=report.diagnostics, selected=state.selected)
    flow_canvas(graph, palette=palette_items(), key=state.canvas_key, height=CANVAS_HEIGHT,
                view_key=state.canvas_key)


def _forget_old_canvases(state: bs.BuilderState) -> None:
    """Drop the state of canvases replaced by a newer generation (each holds a whole graph)."""
    for key in [k for k in st.session_state if str(k).startswith(bs.CANVAS_KEY_PREFIX)]:
        if key != state.canvas_key:
            del st.session_state[key]


def _config_panel(state: bs.BuilderState) -> None:
    st.subheader("Step settings")
    node = next((n for n in state.flow.nodes if n.id == state.selected), None)
    if node is None:
        st.caption("Select a step on the canvas to edit its settings.")
        _flow_settings(state)
        return
    label, params = render_config_panel(node, f"{state.inputs_key}::{node.id}")
    bs.apply_node_config(state, node.id, label, params)


def _flow_settings(state: bs.BuilderState) -> None:
    with st.expander("Flow settings", icon=":material/tune:"):
        prefix = state.inputs_key
        name = st.text_input("Name", value=state.flow.name, key=f"{prefix}::flow_name")
        description = st.text_area("Description", value=state.flow.description,
                                   key=f"{prefix}::flow_description", height=80)
        flow_id = st.text_input("Flow id", value=state.flow.id, key=f"{prefix}::flow_id",
                                help="Slug under which versions are saved")
        params = _flow_params(state, prefix)
        st.markdown("**Behaviour**")
        current = state.flow.settings.model_dump(mode="json", exclude_none=True)
        settings = render_model_inputs(Settings, current, f"{prefix}::settings")
        bs.apply_flow_fields(state, name=name, description=description, flow_id=flow_id.strip(),
                             params=params, settings=settings)


def _flow_params(state: bs.BuilderState, prefix: str) -> dict[str, Any]:
    """The flow's tunable knobs as JSON: conditions use them as `:name`, the Experiments page
    turns them into sliders, Airflow into DAG params."""
    start = json.dumps(state.flow.params)
    text = st.text_input("Params (JSON)", value=start, key=f"{prefix}::flow_params",
                         help='Tunable knobs, e.g. {"engagement_threshold": 0.7}; '
                         "conditions refer to them as :engagement_threshold")
    try:
        params = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        st.error(f"Params: not valid JSON ({error.msg})", icon=":material/error:")
        return dict(state.flow.params)
    if not isinstance(params, dict) or not all(
        isinstance(value, bool | int | float | str) for value in params.values()
    ):
        st.error("Params: an object of numbers, strings or booleans, e.g. {\"limit\": 3}",
                 icon=":material/error:")
        return dict(state.flow.params)
    return params


def _diagnostics(report: Report) -> None:
    st.subheader("Validation")
    if not report.diagnostics:
        st.success("No problems found: this flow is valid.", icon=":material/verified:")
        return
    errors = len(report.errors)
    warnings = len(report.diagnostics) - errors
    st.markdown(f":red[**{errors} error{'s' * (errors != 1)}**] · {warnings} warning"
                f"{'s' * (warnings != 1)} — nodes with errors are outlined in red.")
    rows = [{"severity": d.severity.value, "node": d.node_id or "(flow)", "field": d.field or "",
             "problem": d.message, "code": d.code} for d in report.diagnostics]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 key="builder_diagnostics")


def _import_export(state: bs.BuilderState) -> None:
    upload, download = st.columns(2, gap="large")
    with upload:
        st.markdown("**Import a flow file**")
        file = st.file_uploader("JSON or YAML flow file", type=["json", "yaml", "yml"],
                                key="builder_import")
        if file is not None and file.file_id not in state.imported:
            state.imported.add(file.file_id)
            _import(state, file.name, file.getvalue())
    with download:
        st.markdown("**Export the draft**")
        stem = f"{state.flow.id}_v{state.based_on or 0}"
        st.download_button("Download JSON", state.flow.to_json(), file_name=f"{stem}.json",
                           mime="application/json", icon=":material/download:")
        text = yaml.safe_dump(state.flow.to_dict(), sort_keys=False, allow_unicode=True)
        st.download_button("Download YAML", text, file_name=f"{stem}.yaml",
                           mime="application/yaml", icon=":material/download:")


def _import(state: bs.BuilderState, name: str, content: bytes) -> None:
    problem = bs.import_file(state, name, content)
    if problem is not None:
        st.error(f"Could not import {problem}", icon=":material/error:")
        return
    st.rerun()


def _compile(state: bs.BuilderState, report: Report) -> None:
    if not report.valid:
        st.info("Fix the validation errors first: only valid flows compile to Airflow.")
        return
    snapshot = state.flow.to_json()
    if st.button("Compile to an Airflow DAG", icon=":material/build:"):
        state.compiled = (snapshot, _dag_source(state.flow))
    if state.compiled is None:
        st.caption("Compiles the draft into one Airflow 3 DAG file (one task per step).")
        return
    source_of, source = state.compiled
    if source_of != snapshot:
        st.warning("The draft changed since this DAG was compiled; compile again.")
    st.download_button("Download DAG file", source, file_name=f"mawb_{state.flow.id}.py",
                       mime="text/x-python", icon=":material/download:")
    st.code(source, language="python")


def _dag_source(flow: Flow) -> str:
    from mawb.compile import compile_airflow  # Airflow-side code: only when asked for

    with tempfile.TemporaryDirectory() as folder:
        return compile_airflow(flow, folder).read_text(encoding="utf-8")

