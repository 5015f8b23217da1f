"""Experiment runs: tune a flow's params on a simulated population before real contacts see it.

The analyst picks a flow (a template, a saved flow, or the Builder's draft) and a population
(the demo set, N synthetic contacts, or an uploaded file), moves the flow's param sliders and
simulates; sweeping one param shows what each value buys in conversions against the messages
it costs; kept runs are compared side by side; the chosen params are saved as a new version.
Simulations run on throw-away workspaces (`mawb.simulate`), never on the workspace store.
This module is plain Python (tested without Streamlit); `mawb.ui.experiments_view` draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import plotly.graph_objects as go

from mawb import nodes
from mawb.nodes.base import TriggerKind
from mawb.simulate import SweepResult, simulate, sweep

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mawb.model import Flow, ParamValue

STATE_KEY = "mawb_experiments"
METRICS = ("enrolled", "converted", "conversion_rate", "messages_sent", "suppressed",
           "open_rate", "click_rate", "opens", "clicks", "conversion_events", "unsubscribes")
"""What the compare view lists per variant, in the counts vocabulary of `mawb.analytics`."""
RATES = frozenset({"conversion_rate", "open_rate", "click_rate"})
PANELS = (("converted", "converted contacts"), ("conversion_rate", "conversion rate"),
          ("messages_sent", "messages sent"), ("open_rate", "open rate"),
          ("click_rate", "click rate"), ("unsubscribes", "unsubscribes"))
"""The compare figure's small multiples: one panel (own axis) per metric."""


@dataclass
class Variant:
    """One simulation kept for comparison, labelled by everything that made it differ."""

    label: str
    flow_id: str
    params: dict[str, ParamValue]
    population: str
    days: float
    summary: dict[str, Any]
    funnel: pd.DataFrame
    figures: dict[str, go.Figure] = field(default_factory=dict)
    version: int | None = None
    seed: int = 0
    why_empty: str | None = None

    def row(self) -> dict[str, Any]:
        return {"variant": self.label, **{k: self.summary.get(k) for k in METRICS}}


def default_days(flow: Flow) -> int:
    """The virtual days a run of `flow` starts at: its declared duration, within 1..30."""
    return min(max(flow.metadata.duration_days or 7, 1), 30)


def variant_label(flow: Flow, population: str, days: float, seed: int,
                  params: dict[str, ParamValue]) -> str:
    """`flow v2 · demo data · 7 d · seed 0 · threshold=0.6`: two runs that differ in anything
    (another flow, version, population, length, seed or param) never share a label."""
    knobs = ", ".join(f"{k}={v}" for k, v in params.items()) or "default params"
    return f"{flow.id} v{flow.version} · {population} · {days:g} d · seed {seed} · {knobs}"


def run_variant(flow: Flow, population: Population, *, params: dict[str, ParamValue],
                days: float, seed: int = 0,
                on_progress: Callable[[float], None] | None = None,
                cancel: Callable[[], bool] | None = None) -> Variant:
    """Simulate `flow` with `params` on the population in a throw-away in-memory store;
    `cancel` stops it between two ticks (`SimulationCancelled`)."""
    result = simulate(flow, population.contacts, events=population.events, days=days,
                      params=params, seed=seed, progress=False, on_progress=on_progress,
                      cancel=cancel)
    summary = dict(result.summary)
    return Variant(label=variant_label(flow, population.label, days, seed, params),
                   flow_id=flow.id, params=dict(params), population=population.label,
                   days=days, summary=summary, funnel=result.funnel,
                   figures=dict(result.figures), version=flow.version, seed=seed,
                   why_empty=why_nobody_entered(flow, population)
                   if not summary.get("enrolled") else None)


def why_nobody_entered(flow: Flow, population: Population) -> str:
    """Why a run enrolled nobody, in the words of the flow's triggers and the population."""
    events = population.events
    names = set(events["name"]) if events is not None and "name" in events else set()
    reasons = []
    for node in flow.nodes:
        kind = nodes.get(node.type).trigger_kind if nodes.has(node.type) else None
        event = node.params.get("event") if kind in (TriggerKind.EVENT,
                                                     TriggerKind.WEBHOOK) else None
        if event is not None and event not in names:
            reasons.append(f"no contact has a {event} event in {population.label}")
        elif kind in (TriggerKind.TIME, TriggerKind.BEHAVIORAL) and node.params.get(
                "audience"):
            reasons.append(f"no contact of {population.label} matched the audience "
                           f"`{node.params['audience']}` of {node.label or node.id}")
        elif kind is TriggerKind.MANUAL:
            reasons.append(f"{node.label or node.id} is a manual trigger: contacts enter only "
                           "when enrolled by hand (mawb enroll)")
    if not reasons:
        return (f"no contact of {population.label} met any trigger of {flow.id} within the "
                "simulated days")
    return "Nobody entered the flow: " + "; ".join(reasons) + "."


def run_sweep(flow: Flow, population: Population, *, param: str, values: list[ParamValue],
              fixed: dict[str, ParamValue], days: float, seed: int = 0,
              on_progress: Callable[[float], None] | None = None,
              cancel: Callable[[], bool] | None = None) -> SweepResult:
    """Simulate once per value of `param` (others `fixed`), same seed, one row per value:
    `mawb.simulate.sweep`, so the population is imported once and the values share their
    ticks until the param first matters."""
    return sweep(flow, population.contacts, param=param, values=list(values),
                 params=dict(fixed), events=population.events, days=days, seed=seed,
                 progress=False, on_progress=on_progress, cancel=cancel)


def compare_table(variants: list[Variant], baseline: int = 0) -> pd.DataFrame:
    """Metrics as rows, variants as columns (side by side), and for every other variant its
    change against the `baseline` one (rates in percentage points). Text, formatted: rates
    as percentages, dashes where there is no data."""
    from mawb.analytics import DASH, number, percent

    base = variants[baseline].summary
    columns: dict[str, list[str]] = {}
    for index, variant in enumerate(variants):
        name = f"#{index + 1}"
        columns[name] = [percent(variant.summary.get(k)) if k in RATES
                         else number(variant.summary.get(k)) for k in METRICS]
        if index != baseline:
            columns[f"{name} vs #{baseline + 1}"] = [
                _delta(variant.summary.get(k), base.get(k), k in RATES) for k in METRICS]
    frame = pd.DataFrame(columns, index=list(METRICS))
    frame.index.name = "metric"
    return frame.replace({"None": DASH})


def _delta(value: Any, base: Any, rate: bool) -> str:
    from mawb.analytics import DASH

    if value is None or base is None:
        return DASH
    change = value - base
    if rate:
        return f"{change * 100:+.1f} pp"
    relative = f" ({change / base:+.0%})" if base else ""
    return f"{change:+,}{relative}"


def compare_figure(variants: list[Variant]) -> go.Figure:
    """Small multiples: one panel per metric with its own axis (900 messages and 6
    unsubscribes never share one), one bar per variant, numbered as in the table."""
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=2, cols=3, subplot_titles=[title for _, title in PANELS],
                           vertical_spacing=0.18)
    names = [f"#{index + 1}" for index in range(len(variants))]
    for position, (metric, _) in enumerate(PANELS):
        values = [variant.summary.get(metric) for variant in variants]
        scale = 100 if metric in RATES else 1
        shown = [None if v is None else v * scale for v in values]
        text = [("—" if v is None else (f"{v:.1f}%" if metric in RATES else f"{v:,}"))
                for v in shown]
        figure.add_trace(go.Bar(x=names, y=shown, text=text, textposition="outside",
                                cliponaxis=False, marker_color="#2563eb", showlegend=False,
                                hovertext=[v.label for v in variants]),
                         row=position // 3 + 1, col=position % 3 + 1)
    figure.update_layout(title="Variants side by side (hover a bar for its full label)",
                         template="plotly_white", height=520,
                         margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return figure


def with_params(flow: Flow, params: dict[str, ParamValue]) -> Flow:
    """A copy of `flow` whose default params are `params` (what a saved version runs with)."""
    return flow.model_copy(update={"params": {**flow.params, **params}}, deep=True)


def save_params(flow: Flow, params: dict[str, ParamValue], message: str,
                home: str | Path | None = None) -> Flow:
    """Save `flow` with `params` as the next version in the workspace; returns the saved flow.

    Raises NothingToSaveError when the latest version already has exactly these params.
    """
    from mawb.versions import VersionStore

    store = VersionStore(home)
    return store.save(with_params(flow, params), message)


@dataclass(frozen=True)
class Population:
    """Contacts to simulate on, with their event history (behaviour triggers need it)."""

    label: str
    contacts: pd.DataFrame
    events: pd.DataFrame | None = None


def builtin_population(kind: Literal["demo", "synthetic"], size: int = 500,
                       seed: int = 0) -> Population:
    """The demo set (3,000 committed contacts and 21 days of events) or `size` synthetic ones."""
    from mawb.data import demo_contacts, demo_events, synthetic_contacts, synthetic_events

    if kind == "demo":
        return Population("demo data", demo_contacts(), demo_events())
    contacts = synthetic_contacts(size, seed=seed)
    return Population(f"{size:,} synthetic", contacts, synthetic_events(contacts, seed=seed))


def workspace_population(home: str | Path | None, segment: str | None = None) -> Population:
    """The workspace's own contacts (and their recorded events), optionally only those that
    match `segment`, a condition like the flows' (`lifecycle = 'lead' AND score > 50`).

    Raises ValueError naming the problem (an unreadable condition, an unknown attribute, a
    workspace without contacts)."""
    import duckdb
    from sqlglot import exp

    from mawb.expr import ConditionError, parse_condition, to_sql
    from mawb.ui.reader import WorkspaceReader

    reader = WorkspaceReader(home)
    if not reader.has_store():
        raise ValueError("this workspace has no contacts yet: import some on the Data page")
    where = "true"
    if segment and segment.strip():
        try:
            where = to_sql(parse_condition(segment),
                           column=lambda name: exp.column(name, table="c", quoted=True))
        except ConditionError as error:
            raise ValueError(f"segment: {error}") from None
    with reader.read() as connection:
        try:
            contacts = connection.execute(f"SELECT * FROM contacts c WHERE {where}").fetchdf()
        except duckdb.Error as error:
            raise ValueError(f"segment: {str(error).splitlines()[0]}") from None
        events = connection.execute(
            "SELECT event_id, contact_id, name, ts, properties FROM events WHERE "
            "NOT starts_with(coalesce(source, ''), 'simulation:') AND contact_id IN "
            f"(SELECT contact_id FROM contacts c WHERE {where})").fetchdf()
    if contacts.empty:
        raise ValueError("no contact of the workspace matches the segment" if segment
                         else "this workspace has no contacts yet")
    engine_owned = ("email_opens", "email_clicks", "last_open_at", "last_click_at",
                    "converted", "converted_at", "attributes")
    contacts = contacts.drop(columns=[c for c in engine_owned if c in contacts.columns])
    label = f"workspace contacts ({len(contacts):,})" if not segment else \
        f"segment `{segment.strip()}` ({len(contacts):,})"
    return Population(label, contacts, events if not events.empty else None)


def sweep_figure(result: SweepResult) -> go.Figure:
    """Conversions against messages, one point per value: the value as a short label placed
    alternately above and below (neighbours never overlap) and never clipped."""
    table = result.table
    positions = ["top center", "bottom center"]
    figure = go.Figure(go.Scatter(
        x=table["messages_sent"], y=table["converted"], mode="lines+markers+text",
        text=[str(v) for v in table["value"]], cliponaxis=False,
        textposition=[positions[i % 2] for i in range(len(table))],
        textfont={"size": 12}, marker={"size": 10, "color": "#2563eb"},
        hovertemplate=f"{result.param}=%{{text}}<br>%{{x:,}} messages<br>"
                      "%{y:,} converted contacts<extra></extra>"))
    figure.update_layout(title=f"Sweep of {result.param}: converted contacts vs messages sent",
                         xaxis_title="messages sent", yaxis_title="converted contacts",
                         template="plotly_white", height=440,
                         margin={"l": 60, "r": 40, "t": 60, "b": 50})
    return figure
