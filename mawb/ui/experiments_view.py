"""The Experiments page: pick a flow and a population, move sliders, simulate, sweep, compare.

Drawing only; the runs, sweeps, comparisons and saving live in `mawb.ui.experiment_runs`.
Results are kept in the session (``st.session_state["mawb_experiments"]``) so they survive
reruns while the analyst moves the next slider. A simulation or sweep runs beside the page
(`mawb.ui.experiment_jobs`): a fragment watches it, with its progress and Cancel, and the last
result stays visible until the new one is done. The fragment waits on the job rather than
sleeping between polls, so a result is drawn as soon as the run ends; every rerun of the page
ends in a full garbage collection by Streamlit, so looks are few and long, not many and short.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from mawb import analytics
from mawb.intake import IntakeError, read_contacts
from mawb.model import Flow
from mawb.templates import load_template, template_ids
from mawb.ui import experiment_jobs as jobs
from mawb.ui import experiment_runs as runs
from mawb.ui.builder_state import SHARED_FLOW_KEY, with_layout
from mawb.ui.flow_graph import flow_to_graph
from mawb.ui.param_ranges import ParamControl, param_control, parse_sweep_values
from mawb.validate import FlowInvalidError, validate_flow
from mawb.versions import NothingToSaveError, VersionStore

if TYPE_CHECKING:
    from mawb.model import ParamValue

FROM_BUILDER = "From the Builder"
TEMPLATE = "Template"
SAVED = "Saved flow"
SUMMARY_METRICS = (("Enrolled", "enrolled"), ("Messages sent", "messages_sent"),
                   ("Open rate", "open_rate"), ("Click rate", "click_rate"),
                   ("Converted", "converted"), ("Conversion rate", "conversion_rate"),
                   ("Unsubscribes", "unsubscribes"))
WORKSPACE = "Workspace contacts"


def render_experiments(home: str | Path | None = None) -> None:
    """Draw the Experiments page (saved flows and new versions in `home`)."""
    st.title("Experiments")
    st.caption("Simulate a flow on a population with the virtual clock: nothing is sent and "
               "the workspace is not touched until you save a version.")
    state = st.session_state.setdefault(runs.STATE_KEY, {"variants": []})
    store = VersionStore(home)
    flow = _pick_flow(store)
    if flow is None:
        return
    report = validate_flow(flow)
    if not report.valid:
        st.error("This flow has errors and cannot be simulated; fix them in the Builder:\n\n"
                 + "\n".join(f"- {d.node_id or 'flow'}: {d.message}"
                             for d in report.diagnostics if d.severity.value == "error"))
        return
    population = _pick_population(store.home)
    if population is None:
        return
    params = _param_controls(flow)
    days_column, seed_column = st.columns(2)
    days = days_column.number_input("Days of virtual time", 1, 120, runs.default_days(flow),
                                    key="exp_days")
    seed = seed_column.number_input("Seed", 0, 1_000_000, 0, key="exp_seed",
                                    help="Same seed, same simulated behaviour.")
    simulate_tab, sweep_tab, compare_tab = st.tabs(["Simulate", "Sweep a param", "Compare"])
    with simulate_tab:
        _simulate_tab(state, flow, population, params, days, seed, store)
    with sweep_tab:
        _sweep_tab(state, flow, population, params, days, seed)
    with compare_tab:
        _compare_tab(state)


# -- choosing -------------------------------------------------------------------------------
def _pick_flow(store: VersionStore) -> Flow | None:
    shared = st.session_state.get(SHARED_FLOW_KEY)
    saved_ids = store.flow_ids()
    sources = [*([FROM_BUILDER] if isinstance(shared, Flow) else []), TEMPLATE,
               *([SAVED] if saved_ids else [])]
    source = st.radio("Flow", sources, horizontal=True, key="exp_source")
    if source == FROM_BUILDER and isinstance(shared, Flow):
        flow = shared
        st.caption(f"The Builder's draft: **{flow.name or flow.id}** ({flow.id})")
    elif source == SAVED:
        flow_id = st.selectbox("Saved flow", saved_ids, key="exp_saved")
        flow = store.load(flow_id)
    else:
        ids = template_ids()
        if not ids:
            st.info("No templates are installed; build a flow in the Builder first.")
            return None
        default = ids.index("lead_welcome_v1") if "lead_welcome_v1" in ids else 0
        flow = load_template(st.selectbox("Template", ids, index=default, key="exp_template"))
    if flow.description:
        st.caption(flow.description)
    with st.expander(f"{flow.name or flow.id}: {len(flow.nodes)} steps", expanded=False):
        from mawb.ui.canvas import flow_canvas

        flow_canvas(flow_to_graph(with_layout(flow)), key=f"exp_preview_{flow.id}",
                    read_only=True, height=300)
    return flow


def _pick_population(home: Path) -> runs.Population | None:
    kind = st.radio("Population", ["Demo data (3,000 contacts)", "Synthetic", WORKSPACE,
                                   "Upload a file"], horizontal=True, key="exp_population")
    if kind.startswith("Demo"):
        return runs.builtin_population("demo")
    if kind == "Synthetic":
        size = st.number_input("Contacts", 10, 100_000, 500, step=100, key="exp_size")
        return runs.builtin_population("synthetic", int(size))
    if kind == WORKSPACE:
        segment = st.text_input("Segment (optional)", key="exp_segment",
                                placeholder="e.g. lifecycle = 'lead' AND score > 50",
                                help="A condition on contact attributes, as in the flows")
        try:
            population = runs.workspace_population(home, segment or None)
        except ValueError as error:
            st.error(f"Cannot use the workspace's contacts: {error}", icon=":material/error:")
            return None
        st.caption(f"{population.label} and their recorded events.")
        return population
    upload = st.file_uploader("Contacts file (CSV, JSON lines, Parquet)",
                              type=["csv", "jsonl", "ndjson", "json", "parquet"],
                              key="exp_upload")
    if upload is None:
        st.info("Upload a contacts file (a `contact_id` column and any attributes your "
                "conditions use), or choose the demo data.")
        return None
    try:
        contacts = _read_upload(upload.name, upload.getvalue())
    except IntakeError as error:
        st.error(f"{len(error.problems)} problem(s) in {upload.name}:")
        st.dataframe(pd.DataFrame([{"row": p.row, "column": p.column, "problem": p.message}
                                   for p in error.problems[:200]]), hide_index=True)
        return None
    return runs.Population(f"{upload.name} ({len(contacts):,})", contacts)


def _read_upload(name: str, content: bytes) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="mawb-population-") as folder:
        path = Path(folder) / f"contacts{Path(name).suffix.lower() or '.csv'}"
        path.write_bytes(content)
        return read_contacts(path)


def _param_controls(flow: Flow) -> dict[str, ParamValue]:
    if not flow.params:
        st.caption("This flow has no params to tune (declare `params` in the flow and refer to "
                   "them as `:name` in conditions). You can still simulate it.")
        return {}
    st.markdown("**Params**")
    chosen: dict[str, ParamValue] = {}
    columns = st.columns(min(len(flow.params), 3))
    for index, (name, value) in enumerate(flow.params.items()):
        control = param_control(name, value)
        with columns[index % len(columns)]:
            chosen[name] = _control_widget(control, f"exp_param_{flow.id}_{name}")
    return chosen


def _control_widget(control: ParamControl, key: str) -> ParamValue:
    if control.kind == "bool":
        return st.toggle(control.name, value=bool(control.value), key=key)
    if control.kind == "int":
        return int(st.slider(control.name, int(control.low), int(control.high),
                             int(control.value), int(control.step), key=key))
    if control.kind == "float":
        return float(st.slider(control.name, float(control.low), float(control.high),
                               float(control.value), float(control.step), key=key))
    return st.text_input(control.name, value=str(control.value), key=key)


# -- simulate -----------------------------------------------------------------------------
def _simulate_tab(state: dict[str, Any], flow: Flow, population: runs.Population,
                  params: dict[str, ParamValue], days: int, seed: int,
                  store: VersionStore) -> None:
    if st.button("Run simulation", type="primary", icon=":material/play_arrow:",
                 key="exp_run", disabled=_busy(state)):
        state["job"] = jobs.start(
            "simulation", flow.id, f"Simulating {days} days of {flow.name or flow.id}",
            lambda progress, cancel: runs.run_variant(
                flow, population, params=params, days=days, seed=seed, on_progress=progress,
                cancel=cancel))
    _job_panel(state, "simulation")
    last = state.get("last")
    if not isinstance(last, runs.Variant) or last.flow_id != flow.id:
        st.caption(f"Set the params and press **Run simulation** to simulate {days} days "
                   f"of {flow.name or flow.id} on {population.label}.")
        return
    st.markdown(f"**{last.label}**")
    if last.why_empty:
        st.warning(last.why_empty, icon=":material/person_off:")
    columns = st.columns(len(SUMMARY_METRICS))
    for column, (label, key) in zip(columns, SUMMARY_METRICS, strict=True):
        value = last.summary.get(key)
        column.metric(label, analytics.percent(value) if key in runs.RATES
                      else analytics.number(value))
    left, right = st.columns(2)
    left.plotly_chart(last.figures["funnel"], width="stretch", key="exp_funnel_chart")
    right.plotly_chart(last.figures["timeline"], width="stretch", key="exp_timeline_chart")
    keep, save = st.columns(2)
    if keep.button("Keep for comparison", icon=":material/add:", key="exp_keep"):
        number = len(state["variants"]) + 1
        state["variants"].append(dataclasses.replace(last))
        st.toast(f"Kept as variant #{number}; see the Compare tab.")
    with save:
        _save_form(flow, last.params, store)


def _save_form(flow: Flow, params: dict[str, ParamValue], store: VersionStore) -> None:
    if not flow.params:
        return
    with st.popover("Save these params as a new version", icon=":material/save:"):
        message = st.text_input("Message", value=f"Params from experiment: "
                                f"{', '.join(f'{k}={v}' for k, v in params.items())}",
                                key="exp_save_message")
        if st.button("Save version", key="exp_save", type="primary"):
            try:
                saved = runs.save_params(flow, params, message, store.home)
            except NothingToSaveError:
                st.info("The latest saved version already has these params.")
            except FlowInvalidError as error:
                st.error(f"Not saved: {error}")
            else:
                st.success(f"Saved {saved.id} v{saved.version} in the workspace.")


def _busy(state: dict[str, Any]) -> bool:
    job = state.get("job")
    return isinstance(job, jobs.Job) and job.running


POLL = 0.25
"""Seconds between two looks at a running job (the watching fragment's timer)."""
WATCH = 0.75
"""How long one look waits for the job to end, moving the progress bar meanwhile: a run that
ends while it waits shows its result at once instead of at the next look. Streamlit queues a
click on Cancel behind the running look, so Cancel answers within this time."""
STEP = 0.1
"""The progress bar's refresh while a look waits; each refresh is also where Streamlit stops
the look for a rerun the analyst asked for (a slider moved, another page)."""
INLINE = "inline"
"""Set by the page's own run: the fragment then draws and returns at once (waiting there would
hold back the rest of the page), and waits only in its timed reruns."""


def _job_panel(state: dict[str, Any], kind: str) -> None:
    """The running job's progress and Cancel (watched), or what became of the last one.

    Drawn in one container whether or not a job runs, so the result below keeps its place
    in the page: were the panel to vanish, the rerun that draws a finished job's result would
    shift every element below it and show the old ones (buttons included) beside the new ones
    until the rerun ends."""
    job = state.get("job")
    if isinstance(job, jobs.Job) and job.kind == kind and not job.running:
        _take(state, job)
    with st.container():
        notice = state.get("notice")
        if notice and notice[0] == kind:
            st.info(notice[1], icon=":material/info:")
        job = state.get("job")
        if isinstance(job, jobs.Job) and job.kind == kind:
            state[INLINE] = True
            _watch(state, kind)


def _take(state: dict[str, Any], job: jobs.Job) -> None:
    """Move a finished job's outcome into the page's state: the result drawn from now on, or
    a notice that it was cancelled or failed (the last result is kept)."""
    state.pop("job", None)
    state.pop("notice", None)
    if job.cancelled:
        state["notice"] = (job.kind, f"{job.description} was cancelled at {job.progress:.0%}; "
                           "the last result is kept.")
    elif job.error:
        state["notice"] = (job.kind, f"{job.description} failed: {job.error}")
    elif job.kind == "simulation":
        state["last"] = job.result
    else:
        state["sweep"] = (job.flow_id, job.result)


@st.fragment(run_every=POLL)
def _watch(state: dict[str, Any], kind: str) -> None:
    inline = state.pop(INLINE, False)
    job = state.get("job")
    if not isinstance(job, jobs.Job) or job.kind != kind:
        return
    if job.running:
        bar = st.progress(job.progress, text=_progress_text(job))
        if st.button("Cancel", icon=":material/stop_circle:", key=f"exp_cancel_{kind}"):
            job.cancel()
        st.caption("The last result stays below until this one is done.")
        if inline:
            return
        deadline = time.monotonic() + WATCH
        while job.running and time.monotonic() < deadline:
            job.wait(STEP)
            bar.progress(job.progress, text=_progress_text(job))
        if job.running:
            return
    st.rerun()  # the page's run takes the outcome and draws it


def _progress_text(job: jobs.Job) -> str:
    return f"{job.description}: {job.progress:.0%}"


# -- sweep and compare -----------------------------------------------------------------------
def _sweep_tab(state: dict[str, Any], flow: Flow, population: runs.Population,
               params: dict[str, ParamValue], days: int, seed: int) -> None:
    tunable = {name: param_control(name, value) for name, value in flow.params.items()
               if not isinstance(value, str)}
    if not tunable:
        st.caption("This flow has no numeric or yes/no params to sweep.")
        return
    name = st.selectbox("Param", list(tunable), key=f"exp_sweep_param_{flow.id}")
    control = tunable[name]
    text = st.text_input("Values (comma separated)",
                         value=", ".join(str(v) for v in control.sweep_values()),
                         key=f"exp_sweep_values_{flow.id}_{name}")
    if st.button("Run sweep", type="primary", icon=":material/tune:", key="exp_sweep_run",
                 disabled=_busy(state)):
        try:
            values = parse_sweep_values(control, text)
        except ValueError as error:
            st.error(f"Cannot read the values: {error}")
            return
        fixed = {k: v for k, v in params.items() if k != name}
        state["job"] = jobs.start(
            "sweep", flow.id, f"Sweeping {name} over {len(values)} values",
            lambda progress, cancel: runs.run_sweep(
                flow, population, param=name, values=values, fixed=fixed, days=days,
                seed=seed, on_progress=progress, cancel=cancel))
    _job_panel(state, "sweep")
    found = state.get("sweep")
    if not found or found[0] != flow.id:
        st.caption("Each value is simulated with the same seed; the chart shows what it buys "
                   "in converted contacts against the messages it costs.")
        return
    result = found[1]
    st.plotly_chart(runs.sweep_figure(result), width="stretch", key="exp_sweep_chart")
    columns = ["value", "enrolled", "messages_sent", "open_rate", "clicks", "converted",
               "conversion_rate", "unsubscribes"]
    table = result.table[[c for c in columns if c in result.table]].copy()
    for rate in runs.RATES & set(table.columns):
        table[rate] = table[rate].map(analytics.percent)
    st.dataframe(table, hide_index=True, width="stretch")


def _compare_tab(state: dict[str, Any]) -> None:
    variants: list[runs.Variant] = state["variants"]
    if not variants:
        st.caption("Run a simulation and press **Keep for comparison**; kept runs appear here "
                   "side by side.")
        return
    labels = [f"#{index + 1} {variant.label}" for index, variant in enumerate(variants)]
    st.markdown("\n".join(f"- **{label}**" for label in labels))
    baseline = st.selectbox("Baseline", range(len(variants)), key="exp_baseline",
                            format_func=lambda index: labels[index],
                            help="Deltas are against this run (rates in percentage points)")
    st.dataframe(runs.compare_table(variants, baseline), width="stretch", key="exp_compare")
    st.plotly_chart(runs.compare_figure(variants), width="stretch", key="exp_compare_chart")
    if st.button("Clear kept variants", key="exp_clear"):
        state["variants"] = []
        st.rerun()
