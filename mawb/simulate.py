"""Simulation: run a flow on a virtual clock, with simulated or recorded behaviour.

The simulator is the engine itself on a throw-away workspace: the clock jumps straight to the
next moment anything is due (a wake time, a deferred message, a schedule), but never further
than `max_step`, so behaviour that arrives in between (opens, clicks) is noticed. Behaviour
comes from one of:

- `model`: a seeded `ResponseModel` turns each sent message into opens, clicks, conversions
  and unsubscribes with probabilities that grow with the contact's `engagement_score`;
  draws are hashes of (seed, message key), so the same seed gives the same run;
- `none`: no behaviour at all — pure flow logic, counts reproducible by hand;
- `history`: a backtest over recorded events (timestamps as recorded).

>>> result = simulate(load_template("lead_welcome_v1"), demo_contacts(), days=14)  # doctest: +SKIP
>>> result.funnel[["node_id", "entered"]]  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import plotly.graph_objects as go
from tqdm.auto import tqdm

from mawb import analytics
from mawb.engine import Workspace
from mawb.engine.store import utc_naive
from mawb.validate import FlowInvalidError, validate_flow

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    import duckdb

    from mawb.model import Flow

Responses = Literal["model", "none", "history"]


@dataclass(frozen=True)
class ResponseModel:
    """How contacts react to messages; every rate is a probability per message.

    p(open)  = clamp(open_base + open_per_engagement * engagement_score)     (email, push)
    p(click | open) = click_base + click_per_engagement * engagement_score
    p(conversion | click) = conversion_rate
    p(unsubscribe) = unsubscribe_base * (1 - engagement_score)                 (any message)
    Opens happen `open_delay_hours` (uniform 0..max) after the send, clicks shortly after.
    Contacts without engagement_score count as `default_engagement`.
    """

    open_base: float = 0.12
    open_per_engagement: float = 0.55
    click_base: float = 0.08
    click_per_engagement: float = 0.35
    conversion_rate: float = 0.18
    unsubscribe_base: float = 0.01
    open_delay_hours: float = 30.0
    default_engagement: float = 0.3

    def apply(self, connection: duckdb.DuckDBPyConnection, flow_id: str, now: datetime,
              seed: int) -> None:
        """Create the behaviour events for messages sent at `now` (set-based, seeded)."""
        has_score = bool(connection.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'contacts' "
            "AND column_name = 'engagement_score'").fetchone()[0])  # type: ignore[index]
        # Rates are bound as parameters, never spliced into the SQL text.
        engagement = ("coalesce(c.engagement_score, $default_engagement)" if has_score
                      else "$default_engagement")
        connection.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE reactions AS
            SELECT m.idempotency_key AS key, m.contact_id, m.sent_at, m.channel,
                   least(greatest($open_base + $open_per_engagement * {engagement}, 0), 0.95)
                       AS p_open,
                   $click_base + $click_per_engagement * {engagement} AS p_click,
                   $unsubscribe_base * (1 - {engagement}) AS p_unsub,
                   hash(m.idempotency_key || ':open:' || $seed) % 1000000 / 1e6 AS u_open,
                   hash(m.idempotency_key || ':click:' || $seed) % 1000000 / 1e6 AS u_click,
                   hash(m.idempotency_key || ':conv:' || $seed) % 1000000 / 1e6 AS u_conv,
                   hash(m.idempotency_key || ':unsub:' || $seed) % 1000000 / 1e6 AS u_unsub,
                   hash(m.idempotency_key || ':delay:' || $seed) % 1000000 / 1e6 AS u_delay
            FROM messages m JOIN contacts c USING (contact_id)
            WHERE m.flow_id = $flow AND m.sent_at = $now AND m.contact_id IS NOT NULL
              AND m.channel IN ('email', 'sms', 'web_push')
            """,
            {"seed": str(seed), "flow": flow_id, "now": now,
             "default_engagement": float(self.default_engagement),
             "open_base": float(self.open_base),
             "open_per_engagement": float(self.open_per_engagement),
             "click_base": float(self.click_base),
             "click_per_engagement": float(self.click_per_engagement),
             "unsubscribe_base": float(self.unsubscribe_base)},
        )
        for name, condition, extra in (
            ("email_open", "u_open < p_open AND channel <> 'sms'", "INTERVAL 0 MINUTE"),
            ("email_click", "u_open < p_open AND u_click < p_click", "INTERVAL 5 MINUTE"),
            ("conversion", "u_open < p_open AND u_click < p_click AND u_conv < $conv",
             "INTERVAL 30 MINUTE"),
            ("unsubscribe", "u_unsub < p_unsub", "INTERVAL 10 MINUTE"),
        ):
            connection.execute(
                f"""
                INSERT INTO events
                SELECT nextval('event_seq'), key || ':' || $name, contact_id, $name,
                       sent_at + to_microseconds(CAST(u_delay * $delay_us AS BIGINT)) + {extra},
                       '{{}}', 'simulation:' || $flow, NULL
                FROM reactions WHERE {condition}
                """,
                {"flow": flow_id, "name": name, "delay_us": float(self.open_delay_hours) * 3.6e9,
                 **({"conv": float(self.conversion_rate)} if "$conv" in condition else {})},
            )


@dataclass
class SimulationResult:
    """What a simulation produced; tables are pandas DataFrames, figures Plotly."""

    flow: Flow
    params: dict[str, Any]
    seed: int
    funnel: pd.DataFrame
    messages: pd.DataFrame
    messages_per_channel: dict[str, int]
    timeline: pd.DataFrame
    summary: dict[str, Any]
    workspace: Workspace
    ticks: int = 0
    figures: dict[str, go.Figure] = field(default_factory=dict)
    message_steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per message step: entered and each outbox outcome (`analytics.message_counts`)."""
    edges: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per edge: the tokens that took it (`analytics.edge_counts`)."""

    @property
    def conversions(self) -> int:
        return int(self.summary.get("converted_contacts", 0))

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `mawb simulate --json` (the CLI contract in docs/architecture.md)."""
        return {
            "flow": self.flow.id, "version": self.flow.version, "params": self.params,
            "seed": self.seed, "ticks": self.ticks, "summary": self.summary,
            "funnel": {row["node_id"]: {k: int(row[k]) for k in
                                        ("entered", "completed", "waiting", "failed",
                                         "converted")}
                       for row in self.funnel.to_dict("records")},
            "steps": {row["node_id"]: {k: int(row[k]) for k in analytics.STEP_COLUMNS}
                      for row in self.funnel.to_dict("records")},
            "message_steps": {row["node_id"]: {k: int(row[k]) for k in
                                               ("entered", *analytics.MESSAGE_OUTCOMES)}
                              for row in self.message_steps.to_dict("records")},
            "edges": [{"source": row["source"], "target": row["target"],
                       "branch": row["branch"] if isinstance(row["branch"], str) else None,
                       "tokens": int(row["tokens"])}
                      for row in self.edges.to_dict("records")],
            "messages": self.messages_per_channel,
        }

    def funnel_figure(self) -> go.Figure:
        return analytics.funnel_figure(self.funnel, f"{self.flow.name or self.flow.id}: funnel")

    def timeline_figure(self) -> go.Figure:
        return analytics.timeline_figure(self.timeline)

    def _repr_html_(self) -> str:
        from mawb.display import simulation_html  # notebooks only

        return simulation_html(self)


def _contacts_frame(contacts: Any) -> Any:
    if contacts is None:
        from mawb.data import demo_contacts

        return demo_contacts()
    if isinstance(contacts, int):
        from mawb.data import synthetic_contacts

        return synthetic_contacts(contacts)
    return contacts


def simulate(
    flow: Flow,
    contacts: Any = None,
    *,
    days: float = 14,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    responses: Responses = "model",
    events: Any = None,
    start: datetime | None = None,
    max_step: timedelta | None = None,
    response_model: ResponseModel | None = None,
    progress: bool = True,
    home: str | Path | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> SimulationResult:
    """Run `flow` over `contacts` (DataFrame, file path, an int for N synthetic, None = demo)
    for `days` of virtual time and return funnel, messages, timeline and figures.

    `params` override the flow's params (e.g. a threshold). `events` are recorded events
    (required for responses="history", optional otherwise: past behaviour for triggers).
    `on_progress` is called after every tick with the share of virtual time done (0..1), for
    progress bars other than tqdm's (the workbench).
    """
    from mawb.data import DEMO_EPOCH

    unknown = set(params or {}) - set(flow.params)
    if unknown:
        raise ValueError(f"unknown params {sorted(unknown)}; flow params: {sorted(flow.params)}")
    merged = {**flow.params, **(params or {})}
    report = validate_flow(flow.model_copy(update={"params": merged}))
    if not report.valid:
        raise FlowInvalidError(flow.id, report)
    workspace = Workspace(home or tempfile.mkdtemp(prefix="mawb-sim-"))
    workspace.import_contacts(_contacts_frame(contacts))
    if responses == "history" and events is None:
        from mawb.data import demo_events

        events = demo_events()
    if events is not None:
        workspace.import_events(events, source_name="history")
    if start is None and responses == "history":
        with workspace.connection(read_only=True) as connection:
            first = connection.execute("SELECT min(ts) FROM events").fetchone()
        start = first[0] if first and first[0] else DEMO_EPOCH
    now = utc_naive(start or DEMO_EPOCH)
    start_time, end = now, now + timedelta(days=days)
    step = max_step or (timedelta(hours=6) if responses != "none" else None)
    workspace.deploy(flow)
    model = response_model or ResponseModel()
    ticks = 0
    bar = tqdm(total=round(days * 24), unit="h", desc=f"simulating {flow.id}",
               disable=not progress, leave=False)
    position = now
    while now is not None and now <= end:
        workspace.tick(flow, now, merged)
        if responses == "model":
            with workspace.connection() as connection:
                model.apply(connection, flow.id, now, seed)
        ticks += 1
        upcoming = workspace.next_due(flow, now, include_events=responses == "history")
        if step is not None:
            upcoming = min(upcoming, now + step) if upcoming else now + step
        if upcoming is not None:
            bar.update(max(0, round((min(upcoming, end) - position).total_seconds() / 3600)))
            position = min(upcoming, end)
        if on_progress is not None:
            on_progress(min(1.0, (position - start_time) / (end - start_time)) if days else 1.0)
        now = upcoming
    bar.close()
    return _collect(workspace, flow, merged, seed, ticks)


def _collect(workspace: Workspace, flow: Flow, params: dict[str, Any], seed: int,
             ticks: int) -> SimulationResult:
    """Read the run back in the counts vocabulary of `mawb.analytics` (same words as the
    Monitor and the CLI)."""
    with workspace.connection(read_only=True) as connection:
        funnel = analytics.step_counts(connection, flow)
        messages = analytics.messages_by_node(connection, flow.id)
        per_channel = analytics.messages_by_channel(connection, flow.id)
        timeline = analytics.timeline(connection, flow.id)
        summary = analytics.summary(connection, flow)
        message_steps = analytics.message_counts(connection, flow)
        edges = analytics.edge_counts(connection, flow)
    result = SimulationResult(flow, params, seed, funnel, messages, per_channel, timeline,
                              summary, workspace, ticks, message_steps=message_steps,
                              edges=edges)
    result.figures = {"funnel": result.funnel_figure(), "timeline": result.timeline_figure()}
    return result


@dataclass
class SweepResult:
    """One row per param value; `figure` plots conversions against messages sent."""

    param: str
    table: pd.DataFrame
    results: list[SimulationResult]

    def figure(self) -> go.Figure:
        table = self.table
        figure = go.Figure(go.Scatter(
            x=table["messages_sent"], y=table["converted_contacts"], mode="lines+markers+text",
            text=[f"{self.param}={v}" for v in table["value"]], textposition="top center",
            marker={"size": 10, "color": "#2563eb"}))
        figure.update_layout(title=f"Sweep of {self.param}: conversions vs messages",
                             xaxis_title="messages sent", yaxis_title="converted contacts",
                             template="plotly_white", height=420)
        return figure

    def _repr_html_(self) -> str:
        from mawb.display import sweep_html  # notebooks only

        return sweep_html(self)


def sweep(flow: Flow, contacts: Any = None, *, param: str, values: list[Any],
          progress: bool = True, **options: Any) -> SweepResult:
    """Simulate the flow once per value of `param` (same seed) and compare in one table."""
    if param not in flow.params:
        raise ValueError(f"{param!r} is not a param of {flow.id}; params: {sorted(flow.params)}")
    frame = _contacts_frame(contacts)
    fixed = options.pop("params", None) or {}
    results = []
    rows = []
    for value in tqdm(values, desc=f"sweeping {param}", disable=not progress, leave=False):
        result = simulate(flow, frame, params={**fixed, param: value},
                          progress=False, **options)
        results.append(result)
        rows.append({"value": value, **result.summary})
    return SweepResult(param, pd.DataFrame(rows), results)
