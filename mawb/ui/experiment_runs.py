"""Experiment runs: tune a flow's params on a simulated population before real contacts see it.

The analyst picks a flow (a template, a saved flow, or the Builder's draft) and a population
(the demo set, N synthetic contacts, or an uploaded file), moves the flow's param sliders and
simulates; sweeping one param shows what each value buys in conversions against the messages
it costs; kept runs are compared side by side; the chosen params are saved as a new version.
Simulations run on throw-away workspaces (`mawb.simulate`), never on the workspace store.
This module is plain Python (tested without Streamlit); `mawb.ui.experiments_view` draws.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import plotly.graph_objects as go

from mawb.simulate import SweepResult, simulate

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from mawb.model import Flow, ParamValue

ControlKind = Literal["bool", "int", "float", "text"]
STATE_KEY = "mawb_experiments"
METRICS = ("enrolled", "completed", "converted", "messages_sent", "opens", "clicks",
           "conversions", "unsubscribes", "converted_contacts")


@dataclass(frozen=True)
class ParamControl:
    """How the page offers one flow param: a checkbox, a slider with bounds, or a text box.

    Bounds follow the value's type: a float in 0..1 is a share or score (slider 0..1); other
    numbers get 0..4x their value (at least 0..10 for integers, 0..1 for floats).
    """

    name: str
    kind: ControlKind
    value: ParamValue
    low: float = 0
    high: float = 1
    step: float = 1

    def parse(self, text: str) -> ParamValue:
        """One value typed by the user, in the param's type (ValueError if it is not)."""
        text = text.strip()
        if self.kind == "bool":
            if text.lower() not in {"true", "false"}:
                raise ValueError(f"{self.name} takes true or false, not {text!r}")
            return text.lower() == "true"
        if self.kind == "int":
            return int(text)
        if self.kind == "float":
            return float(text)
        return text

    def sweep_values(self, count: int = 5) -> list[ParamValue]:
        """`count` evenly spread values over the control's range (both values for a flag)."""
        if self.kind == "bool":
            return [False, True]
        if self.kind == "text":
            return [self.value]
        spread = [self.low + (self.high - self.low) * i / (count - 1) for i in range(count)]
        if self.kind == "int":
            return sorted({round(v) for v in spread})
        return [round(v, 4) for v in spread]


def param_control(name: str, value: ParamValue) -> ParamControl:
    if isinstance(value, bool):
        return ParamControl(name, "bool", value)
    if isinstance(value, int):
        return ParamControl(name, "int", value, 0, max(10, value * 4), 1)
    if isinstance(value, float):
        if 0 <= value <= 1:
            return ParamControl(name, "float", value, 0.0, 1.0, 0.05)
        high = max(1.0, abs(value) * 4)
        return ParamControl(name, "float", value, min(0.0, value * 4), high, high / 100)
    return ParamControl(name, "text", value)


def parse_sweep_values(control: ParamControl, text: str) -> list[ParamValue]:
    """Comma-separated values in the param's type, duplicates dropped, order kept."""
    values = [control.parse(part) for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError("give at least one value, separated by commas")
    return list(dict.fromkeys(values))


@dataclass
class Variant:
    """One simulation kept for comparison."""

    label: str
    flow_id: str
    params: dict[str, ParamValue]
    population: str
    days: float
    summary: dict[str, Any]
    funnel: pd.DataFrame
    figures: dict[str, go.Figure] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return {"variant": self.label, **{k: self.summary.get(k, 0) for k in METRICS}}


def run_variant(flow: Flow, population: Population, *, params: dict[str, ParamValue],
                days: float, seed: int = 0,
                on_progress: Callable[[float], None] | None = None) -> Variant:
    """Simulate `flow` with `params` on the population in a throw-away workspace."""
    with tempfile.TemporaryDirectory(prefix="mawb-experiment-") as home:
        result = simulate(flow, population.contacts, events=population.events, days=days,
                          params=params, seed=seed, progress=False, home=home,
                          on_progress=on_progress)
    label = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
    return Variant(label=label, flow_id=flow.id, params=dict(params), population=population.label,
                   days=days, summary=dict(result.summary), funnel=result.funnel,
                   figures=dict(result.figures))


def run_sweep(flow: Flow, population: Population, *, param: str, values: list[ParamValue],
              fixed: dict[str, ParamValue], days: float, seed: int = 0,
              on_progress: Callable[[float], None] | None = None) -> SweepResult:
    """Simulate once per value of `param` (others `fixed`), same seed, one row per value."""
    rows = []
    for index, value in enumerate(values):
        def share(done: float, index: int = index) -> None:
            if on_progress is not None:
                on_progress((index + done) / len(values))

        variant = run_variant(flow, population, params={**fixed, param: value}, days=days,
                              seed=seed, on_progress=share)
        summary = variant.summary
        rows.append({"value": value, **summary,
                     "conversion_rate": summary["converted_contacts"]
                     / max(summary["enrolled"], 1)})
    return SweepResult(param, pd.DataFrame(rows), [])


def compare_table(variants: list[Variant]) -> pd.DataFrame:
    """Metrics as rows, variants as columns (side by side)."""
    frame = pd.DataFrame([variant.row() for variant in variants]).set_index("variant")
    return frame.T


def compare_figure(variants: list[Variant]) -> go.Figure:
    """Grouped bars of messages, conversions, opens, clicks and unsubscribes per variant."""
    figure = go.Figure()
    shown = ("messages_sent", "opens", "clicks", "converted_contacts", "unsubscribes")
    for variant in variants:
        figure.add_trace(go.Bar(name=variant.label, x=list(shown),
                                y=[variant.summary.get(metric, 0) for metric in shown]))
    figure.update_layout(title="Variants side by side", barmode="group",
                         template="plotly_white", height=380,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
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
