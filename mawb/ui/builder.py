"""The Builder page: canvas, config panel, live diagnostics, versions, import/export, compile.

``pages/1_Builder.py`` only calls `render_builder`. The page is two parts. The header (title,
open a flow, auto layout, simulate) runs on a full rerun only. Everything an edit changes (the
status line and undo/redo, the canvas, the step drawer, the diagnostics and the tabs below) is
one `st.fragment`: a canvas action or a drawer input reruns just that fragment. Each fragment
run applies the canvas's latest edit and the drawer's inputs to the draft, validates it (once
per changed flow) and draws the canvas with every error on its node; the canvas is drawn into
a slot reserved before the drawer, so a drawer edit shows on the canvas in the same run. The
downloads below are built when clicked, not on every run. Anything that replaces the flow
(open, import, save, rollback, auto layout) reruns the whole page, as does a rename (the title
shows the name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st
import yaml

from mawb import templates
from mawb.model import FlowFileError, Settings
from mawb.ui import builder_reads as reads
from mawb.ui import builder_state as bs
from mawb.ui import golive
from mawb.ui.canvas import flow_canvas, latest_graph
from mawb.ui.config_panel import (
    render_config_panel,
    render_flow_params,
    render_model_inputs,
    validate_draft,
)
from mawb.ui.drafts import Draft, DraftStore
from mawb.ui.flow_graph import flow_to_graph, palette_items
from mawb.ui.pickers import workspace_vocabulary
from mawb.ui.versions_panel import render_versions
from mawb.validate import validate_flow
from mawb.versions import VersionStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mawb.model import Flow
    from mawb.validate import Report

CANVAS_HEIGHT = 600
EXPERIMENTS_PAGE = "pages/4_Experiments.py"
_OPEN_NEW = "New empty flow"
_TEMPLATE = "Template · "


def render_builder(home: Path | None = None) -> None:
    """Draw the whole page for the workspace at ``home`` (``MAWB_HOME`` or ``.mawb``)."""
    store = VersionStore(home)
    drafts = DraftStore(store.home)
    state = _state(store, drafts)
    bs.adopt_shared_flow(state, st.session_state.get(bs.SHARED_FLOW_KEY))
    _header(state, store, drafts)
    _workbench(store, drafts)


@st.fragment
def _workbench(store: VersionStore, drafts: DraftStore) -> None:
    """What an edit changes, rerun alone on a canvas action or a drawer input."""
    state = _state(store, drafts)
    before = state.flow
    bs.apply_canvas_edit(state, latest_graph(state.canvas_key))
    status, history = st.columns([3, 2], vertical_alignment="bottom")
    history_slot = history.container()
    board, drawer = st.columns([5, 2], gap="small")
    with board:
        canvas_slot = st.container()
    with drawer:
        _config_panel(state, store.home)
    # The flow's validation is remembered per flow; this rerun's unreadable inputs join it.
    report = validate_draft(state.flow, report=_report(state, reads.contact_columns(store.home)))
    with canvas_slot:
        _canvas(state, report)
    with board:
        _diagnostics(report)
    # Every edit of this rerun is known now: history, autosave and the status line are exact.
    bs.record_edit(state, before)
    _autosave(state, drafts)
    with history_slot:
        _history_buttons(state)
    status.markdown(_status_line(state))
    _forget_old_canvases(state)
    if state.flow.name != state.titled:
        st.rerun(scope="app")  # the title above the fragment shows the name
    _tabs(state, store, report)


def _tabs(state: bs.BuilderState, store: VersionStore, report: Report) -> None:
    versions, files, dag = st.tabs(["Versions", "Import / export", "Airflow DAG"])
    with versions:
        render_versions(state, store, report)
        _lifecycle(state, store)
    with files:
        _import_export(state)
    with dag:
        _compile(state, report)


def _report(state: bs.BuilderState, columns: frozenset[str] | None) -> Report:
    """The draft's validation report, worked out once per changed flow (or columns)."""
    return bs.remembered(state, "report", (state.flow, columns),
                         lambda: validate_flow(state.flow, columns=columns))


def _state(store: VersionStore, drafts: DraftStore) -> bs.BuilderState:
    """The session's state; a new session (a reload, a restarted server) reopens the draft
    edited last, else the first saved flow."""
    state = st.session_state.get(bs.STATE_KEY)
    if isinstance(state, bs.BuilderState):
        return state
    state = bs.BuilderState(flow=bs.new_flow())
    latest = drafts.latest()
    if latest is not None:
        _open_draft(state, store, latest)
    else:
        ids = store.flow_ids()
        if ids:
            _open_saved(state, store, drafts, ids[0])
    st.session_state[bs.STATE_KEY] = state
    return state


def _open_draft(state: bs.BuilderState, store: VersionStore, draft: Draft) -> None:
    saved = None
    if draft.based_on is not None:
        try:
            saved = store.load(draft.key, draft.based_on)
        except (FlowFileError, FileNotFoundError, KeyError, ValueError):
            saved = None
    bs.replace_flow(state, draft.flow, based_on=draft.based_on if saved else None, saved=saved,
                    notice=f"Restored your draft of {draft.flow.name or draft.flow.id} "
                    f"(autosaved {draft.saved_at:%Y-%m-%d %H:%M} UTC).")
    state.draft_key = draft.key
    state.autosaved = bs.flow_text(state)


def _open_saved(state: bs.BuilderState, store: VersionStore, drafts: DraftStore,
                flow_id: str) -> bool:
    draft = drafts.load(flow_id)
    if draft is not None:
        _open_draft(state, store, draft)
        return True
    try:
        flow = store.load(flow_id)
    except FlowFileError as error:
        st.error(f"Could not open {flow_id}: {error}", icon=":material/error:")
        return False
    bs.replace_flow(state, flow, based_on=flow.version, saved=flow)
    state.notice = f"Opened {flow_id} v{flow.version}."
    return True


def _autosave(state: bs.BuilderState, drafts: DraftStore) -> None:
    """Keep the draft file equal to the draft: written when it changed, removed once the
    draft is again exactly its saved version."""
    if not state.dirty:
        if state.autosaved is not None:
            drafts.discard(state.draft_key)
            state.autosaved = None
        return
    text = bs.flow_text(state)
    if text != state.autosaved:
        drafts.save(state.draft_key, state.flow, state.based_on)
        state.autosaved = text


def _status_line(state: bs.BuilderState) -> str:
    based = f"v{state.based_on}" if state.based_on else "never saved"
    changed = " · :orange[**unsaved changes**] (draft autosaved)" if state.dirty else ""
    return f"`{state.flow.id}` · {based}{changed}"


def _header(state: bs.BuilderState, store: VersionStore, drafts: DraftStore) -> None:
    """Title and the actions that replace or leave the draft (full reruns only)."""
    st.header(f"Builder · {state.flow.name or state.flow.id}")
    state.titled = state.flow.name
    # Always one slot, shown or not: the fragment below keeps its place in the page, so a
    # rerun that brings a notice replaces the canvas in place instead of drawing a second one.
    notice = st.empty()
    if state.notice:
        notice.success(state.notice, icon=":material/check_circle:")
        state.notice = None
    pick, layout, simulate = st.columns([6, 1, 1], vertical_alignment="bottom")
    with pick:
        _open_menu(state, store, drafts)
    if layout.button("Auto layout", icon=":material/account_tree:", width="stretch"):
        bs.auto_layout(state)
        st.rerun()
    if simulate.button("Simulate", icon=":material/science:", width="stretch",
                       help="Open this flow on the Experiments page"):
        _simulate(state)


def _history_buttons(state: bs.BuilderState) -> None:
    """Undo/redo as click callbacks: the step is taken before the fragment reruns, so one
    run shows it (and autosaves it), not a run that asks for another."""
    back, forward = st.columns(2)
    back.button("Undo", icon=":material/undo:", width="stretch", key="builder_undo",
                disabled=not state.undo, shortcut="Ctrl+Z", help="Undo the last change (Ctrl+Z)",
                on_click=_step_history, args=(bs.undo, state))
    forward.button("Redo", icon=":material/redo:", width="stretch", key="builder_redo",
                   disabled=not state.redo, shortcut="Ctrl+Shift+Z", help="Redo (Ctrl+Shift+Z)",
                   on_click=_step_history, args=(bs.redo, state))


def _step_history(step: Callable[[bs.BuilderState], bool], state: bs.BuilderState) -> None:
    step(state)  # nothing to undo/redo: the button was disabled anyway


def _open_menu(state: bs.BuilderState, store: VersionStore, drafts: DraftStore) -> None:
    options = [_OPEN_NEW, *store.flow_ids(),
               *(f"{_TEMPLATE}{template_id}" for template_id in templates.template_ids())]
    choice = st.selectbox("Open a flow", options, index=None, key=f"open_{state.generation}",
                          placeholder="Open a saved flow, a template, or start a new one")
    if choice is not None and state.pending_choice is None and state.dirty:
        state.pending_choice = choice  # ask first: the draft has unsaved changes
    if state.pending_choice is not None:
        _confirm_discard(state, store, drafts)
        return
    if choice is not None:
        _open_choice(state, store, drafts, choice)
        st.rerun()


def _confirm_discard(state: bs.BuilderState, store: VersionStore, drafts: DraftStore) -> None:
    choice = state.pending_choice or ""
    with st.container(border=True, key="builder_discard_prompt"):
        st.warning(f"**{state.flow.name or state.flow.id}** has unsaved changes. Open "
                   f"**{choice}** anyway?", icon=":material/warning:")
        keep, discard, cancel = st.columns(3)
        if keep.button("Keep the draft, open it", key="builder_keep_draft",
                       help="The draft stays autosaved and reopens with its flow"):
            _open_choice(state, store, drafts, choice)
            st.rerun()
        if discard.button("Discard changes", key="builder_discard", type="primary"):
            drafts.discard(state.draft_key)
            state.autosaved = None
            _open_choice(state, store, drafts, choice)
            st.rerun()
        if cancel.button("Cancel", key="builder_cancel_open"):
            state.pending_choice = None
            state.generation += 1  # a fresh selectbox, back at its placeholder
            st.rerun()


def _open_choice(state: bs.BuilderState, store: VersionStore, drafts: DraftStore,
                 choice: str) -> None:
    state.pending_choice = None
    if choice == _OPEN_NEW:
        bs.replace_flow(state, bs.new_flow(), notice="New empty flow: drag a trigger in.")
    elif choice.startswith(_TEMPLATE):
        template = templates.load_template(choice.removeprefix(_TEMPLATE))
        bs.replace_flow(state, template, notice=f"Template {template.id} opened as a new draft.")
    else:
        _open_saved(state, store, drafts, choice)


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
    drawn = bs.remembered(state, "graph", (state.flow, report),
                          lambda: flow_to_graph(state.flow, diagnostics=report.diagnostics))
    known = {node["id"] for node in drawn["nodes"]}
    graph = {**drawn, "selected": state.selected if state.selected in known else None}
    flow_canvas(graph, palette=palette_items(), key=state.canvas_key, height=CANVAS_HEIGHT,
                view_key=state.canvas_key)


def _forget_old_canvases(state: bs.BuilderState) -> None:
    """Drop the state of canvases replaced by a newer generation (each holds a whole graph)."""
    for key in [k for k in st.session_state if str(k).startswith(bs.CANVAS_KEY_PREFIX)]:
        if key != state.canvas_key:
            del st.session_state[key]


def _config_panel(state: bs.BuilderState, home: Path | None = None) -> None:
    """The right-hand drawer: the selected step's settings, and the flow's one click away."""
    _flow_settings(state, expanded=state.selected is None)
    node = next((n for n in state.flow.nodes if n.id == state.selected), None)
    if node is None:
        st.caption("Select a step on the canvas to edit its settings here.")
        return
    with st.container(border=True, key="builder_step_drawer"):
        label, params = render_config_panel(node, f"{state.inputs_key}::{node.id}",
                                            workspace_vocabulary(home, state.flow))
    bs.apply_node_config(state, node.id, label, params)
    if home is not None:
        from mawb.ui.preview_panel import render_preview

        edited = next((n for n in state.flow.nodes if n.id == node.id), node)
        render_preview(state.flow, edited, home, f"{state.inputs_key}::{node.id}")


def _flow_settings(state: bs.BuilderState, expanded: bool = False) -> None:
    """The flow's own settings; their inputs run only while the expander is open (it starts
    open while no step is selected), so editing a step does not pay for a dozen hidden
    inputs. Opening it reruns the fragment; the inputs start from the draft's values."""
    mode = "flow" if expanded else "step"
    panel = st.expander("Flow settings", icon=":material/tune:", expanded=expanded,
                        key=f"{state.inputs_key}::flow_settings_{mode}", on_change="rerun")
    if panel.open is False:
        return
    with panel:
        prefix = state.inputs_key
        name = st.text_input("Name", value=state.flow.name, key=f"{prefix}::flow_name")
        description = st.text_area("Description", value=state.flow.description,
                                   key=f"{prefix}::flow_description", height=80)
        flow_id = st.text_input("Flow id", value=state.flow.id, key=f"{prefix}::flow_id",
                                help="Slug under which versions are saved")
        params = render_flow_params(state.flow, prefix)
        st.markdown("**Behaviour**")
        current = state.flow.settings.model_dump(mode="json", exclude_none=True)
        settings = render_model_inputs(Settings, current, f"{prefix}::settings")
        bs.apply_flow_fields(state, name=name, description=description, flow_id=flow_id.strip(),
                             params=params, settings=settings)


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
        # Built when clicked (from the draft as it is then), not on every rerun.
        st.download_button("Download JSON", lambda: bs.flow_text(state),
                           file_name=f"{stem}.json", mime="application/json",
                           icon=":material/download:")
        st.download_button("Download YAML", lambda: _yaml_text(state.flow),
                           file_name=f"{stem}.yaml", mime="application/yaml",
                           icon=":material/download:")


def _yaml_text(flow: Flow) -> str:
    return yaml.safe_dump(flow.to_dict(), sort_keys=False, allow_unicode=True)


def _import(state: bs.BuilderState, name: str, content: bytes) -> None:
    problem = bs.import_file(state, name, content)
    if problem is not None:
        st.error(f"Could not import {problem}", icon=":material/error:")
        return
    st.rerun()


def _lifecycle(state: bs.BuilderState, store: VersionStore) -> None:
    """Live / pause / stop of the saved flow (the service's lifecycle), next to its versions."""
    if not golive.lifecycle_available() or state.saved is None:
        return
    current = reads.flow_state(store.home, state.flow.id)
    st.markdown(f"**Go live** · `{state.flow.id}` is **{current}**"
                + (" · save your changes first: the saved version goes live"
                   if state.dirty else ""))
    actions = golive.ACTIONS.get(current, ())
    for column, action in zip(st.columns(4), actions, strict=False):
        if column.button(golive.LABELS[action], key=f"builder_{action}",
                         disabled=state.dirty and action in ("live", "resume")):
            outcome = golive.change_state(store.home, state.saved, action)
            reads.forget()
            (st.toast if outcome.ok else st.error)(outcome.message)
            st.rerun()


def _compile(state: bs.BuilderState, report: Report) -> None:
    if not report.valid:
        st.info("Fix the validation errors first: only valid flows compile to Airflow.")
        return
    kubernetes, partitions, schedule = st.columns([2, 1, 2], vertical_alignment="bottom")
    options = golive.DagOptions(
        kubernetes=kubernetes.toggle("Kubernetes pods", key="dag_kubernetes",
                                     help="Every task a KubernetesPodOperator running the "
                                     "worker image; the pod settings come with the DAG"),
        partitions=int(partitions.number_input("Partitions", 1, 64, 1, key="dag_partitions",
                                               help="Contacts hash-partitioned over a mapped "
                                               "task group")),
        schedule=schedule.text_input("Schedule", value="", key="dag_schedule",
                                     placeholder=f"the flow's tick ({state.flow.settings.tick})",
                                     help="A tick like 1h, a cron expression or @daily"
                                     ).strip() or None)
    snapshot = (state.flow.to_json(), options)
    if st.button("Compile to an Airflow DAG", icon=":material/build:"):
        try:
            bundle, names = golive.dag_bundle(state.flow, options)
        except ValueError as error:  # CompileError: options that cannot work, said plainly
            st.error(f"Cannot compile with these options: {error}", icon=":material/error:")
            return
        state.compiled = (snapshot, (bundle, names, _dag_source(bundle, state.flow)))
    if state.compiled is None:
        st.caption("Compiles the draft into one Airflow 3 DAG file (one task per step), with "
                   "the flow file it loads and, for Kubernetes, the pod settings.")
        return
    compiled_for, (bundle, names, source) = state.compiled
    if compiled_for != snapshot:
        st.warning("The draft or the options changed since this DAG was compiled; compile "
                   "again.")
    st.download_button("Download the DAG bundle (.zip)", bundle,
                       file_name=f"mawb_{state.flow.id}_dag.zip", mime="application/zip",
                       icon=":material/download:", key="dag_download")
    st.caption("Contains " + ", ".join(f"`{name}`" for name in names)
               + ": put them together in the Airflow `dags/` folder.")
    st.code(source, language="python")


def _dag_source(bundle: bytes, flow: Flow) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return archive.read(f"mawb_{flow.id}.py").decode("utf-8")
