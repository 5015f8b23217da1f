"""Simulation: run a flow on a virtual clock, with simulated or recorded behaviour.

The simulator is the engine itself on a throw-away workspace: the clock jumps straight to the
next moment anything is due (a wake time, a deferred message, a schedule), but never further
than `max_step`, so behaviour that arrives in between (opens, clicks) is noticed. Behaviour
comes from one of:

- `model`: a seeded `ResponseModel` turns each sent message into opens, clicks, conversions
  and unsubscribes with probabilities that grow with the contact's `engagement_score`;
  draws are hashes of (seed, message key), so the same seed gives the same run;
- `none`: no behaviour at all — pure flow logic, counts reproducible by hand;
- `history`: a backtest over recorded events (timestamps as recorded); the clock picks
  them up on a grid of `tick` (default the flow's own tick), as the scheduler would.

Without `home`, a run lives in memory: one DuckDB held open for the whole run, in a temp
folder removed at the end. A sweep imports its population once and gives each value a copy
of that store (`COPY FROM DATABASE`), so values differ only in their params.

>>> result = simulate(load_template("lead_welcome_v1"), demo_contacts(), days=14)  # doctest: +SKIP
>>> result.funnel[["node_id", "entered"]]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import plotly.graph_objects as go
from tqdm.auto import tqdm

from mawb import analytics
from mawb.engine import Workspace
from mawb.engine.store import connect_memory, contact_column_names, utc_naive
from mawb.engine.workspace import DISPATCH, DRAIN
from mawb.flowplan import held
from mawb.validate import FlowInvalidError, validate_flow

if TYPE_CHECKING:
    import duckdb

    from mawb.engine.plan import TickPlan
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
              seed: int, *, engagement: bool | None = None) -> None:
        """Create the behaviour events for messages sent at `now` (one set-based statement).

        `engagement`: whether contacts have an engagement_score column; the simulator asks
        once per run, other callers may leave it to this method."""
        sent = connection.execute(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE sent_at = ? AND flow_id = ?)",
            [now, flow_id]).fetchone()
        if not (sent and sent[0]):
            return  # most ticks send nothing: skip the join with contacts
        if engagement is None:
            engagement = "engagement_score" in contact_column_names(connection)
        # Rates are bound as parameters, never spliced into the SQL text.
        score = ("coalesce(c.engagement_score, $default_engagement)" if engagement
                 else "$default_engagement")
        connection.execute(
            f"""
            INSERT INTO events
            SELECT nextval('event_seq'), r.key || ':' || k.name, r.contact_id, k.name,
                   r.sent_at + to_microseconds(CAST(r.u_delay * $delay_us AS BIGINT))
                       + to_microseconds(k.extra_us),
                   '{{}}', 'simulation:' || $flow, NULL
            FROM (
                SELECT m.idempotency_key AS key, m.contact_id, m.sent_at, m.channel,
                       least(greatest($open_base + $open_per_engagement * {score}, 0), 0.95)
                           AS p_open,
                       $click_base + $click_per_engagement * {score} AS p_click,
                       $unsubscribe_base * (1 - {score}) AS p_unsub,
                       hash(m.idempotency_key || ':open:' || $seed) % 1000000 / 1e6 AS u_open,
                       hash(m.idempotency_key || ':click:' || $seed) % 1000000 / 1e6 AS u_click,
                       hash(m.idempotency_key || ':conv:' || $seed) % 1000000 / 1e6 AS u_conv,
                       hash(m.idempotency_key || ':unsub:' || $seed) % 1000000 / 1e6 AS u_unsub,
                       hash(m.idempotency_key || ':delay:' || $seed) % 1000000 / 1e6 AS u_delay
                FROM messages m JOIN contacts c USING (contact_id)
                WHERE m.flow_id = $flow AND m.sent_at = $now AND m.contact_id IS NOT NULL
                  AND m.channel IN ('email', 'sms', 'web_push')) r,
                 (VALUES ('email_open', 0), ('email_click', 300000000),
                         ('conversion', 1800000000), ('unsubscribe', 600000000)) k(name, extra_us)
            WHERE CASE k.name
                    WHEN 'email_open' THEN r.u_open < r.p_open AND r.channel <> 'sms'
                    WHEN 'email_click' THEN r.u_open < r.p_open AND r.u_click < r.p_click
                    WHEN 'conversion' THEN r.u_open < r.p_open AND r.u_click < r.p_click
                                           AND r.u_conv < $conv
                    ELSE r.u_unsub < r.p_unsub END
            """,
            {"seed": str(seed), "flow": flow_id, "now": now,
             "default_engagement": float(self.default_engagement),
             "open_base": float(self.open_base),
             "open_per_engagement": float(self.open_per_engagement),
             "click_base": float(self.click_base),
             "click_per_engagement": float(self.click_per_engagement),
             "unsubscribe_base": float(self.unsubscribe_base),
             "conv": float(self.conversion_rate),
             "delay_us": float(self.open_delay_hours) * 3.6e9},
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
    workspace: Workspace | None  # the store in `home`; None after an in-memory run (gone)
    ticks: int = 0
    figures: Mapping[str, go.Figure] = field(default_factory=dict)
    """`funnel` and `timeline`, each built on first use (a slider's rerun may want neither)."""
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


class SimulationCancelled(RuntimeError):
    """`cancel` answered True: the run stopped between two ticks (an in-memory store is gone)."""


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
    tick: timedelta | str | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SimulationResult:
    """Run `flow` over `contacts` (DataFrame, file path, an int for N synthetic, None = demo)
    for `days` of virtual time and return funnel, messages, timeline and figures.

    `params` override the flow's params (e.g. a threshold). `events` are recorded events
    (required for responses="history", optional otherwise: past behaviour for triggers).
    `tick` is the grid on which a backtest picks recorded events up (default the flow's tick).
    `on_progress` is called after every tick with the share of virtual time done (0..1), for
    progress bars other than tqdm's (the workbench); `cancel` is asked after every tick and
    stops the run with `SimulationCancelled` once it returns True. Without `home` the run
    lives in memory and leaves nothing behind; with `home` its store is a file there (kept).
    """
    flow = sandboxed(flow)
    merged = _checked_params(flow, params)
    run = _run_options(flow, {"days": days, "seed": seed, "responses": responses,
                              "start": start, "max_step": max_step,
                              "response_model": response_model, "progress": progress,
                              "tick": tick}, on_progress=on_progress, cancel=cancel)
    with _population(flow, contacts, events, responses, home) as population:
        return population.run(flow, merged, run)


def sandboxed(flow: Flow) -> Flow:
    """The flow with every delivery connection removed: a simulation never sends for real.

    Flow-level `settings.connections`, node `connection` overrides and HTTP CRM adapters all
    fall back to the sandbox (and the local CRM table), so a simulated run records what it would
    have sent and nothing leaves the machine.
    """
    def local(params: dict[str, Any]) -> dict[str, Any]:
        kept = {name: value for name, value in params.items() if name != "connection"}
        return {**kept, "crm": "local"} if "crm" in kept else kept

    nodes = [node.model_copy(update={"params": local(node.params)}) for node in flow.nodes]
    settings = flow.settings.model_copy(update={"connections": {}})
    return flow.model_copy(update={"nodes": nodes, "settings": settings})


def _checked_params(flow: Flow, params: dict[str, Any] | None) -> dict[str, Any]:
    unknown = set(params or {}) - set(flow.params)
    if unknown:
        raise ValueError(f"unknown params {sorted(unknown)}; flow params: {sorted(flow.params)}")
    merged = {**flow.params, **(params or {})}
    report = validate_flow(flow.model_copy(update={"params": merged}))
    if not report.valid:
        raise FlowInvalidError(flow.id, report)
    return merged


def tick_interval(flow: Flow, tick: timedelta | str | None = None) -> timedelta:
    """`tick` (a timedelta, or `15m`/`1h`/`1d` as in the flow settings), else the flow's."""
    text = tick if tick is not None else flow.settings.tick
    if isinstance(text, timedelta):
        interval = text
    else:
        units = {"m": "minutes", "h": "hours", "d": "days"}
        number, unit = str(text)[:-1], str(text)[-1:]
        if unit not in units or not number.isdigit():
            raise ValueError(f"tick {text!r} must look like 5m, 1h or 1d")
        interval = timedelta(**{units[unit]: int(number)})
    if interval <= timedelta(0):
        raise ValueError(f"tick {text!r} must be positive")
    return interval


@dataclass(frozen=True)
class _RunOptions:
    days: float
    seed: int
    responses: Responses
    start: datetime | None
    max_step: timedelta | None
    model: ResponseModel
    progress: bool
    grid: timedelta
    on_progress: Callable[[float], None] | None
    cancel: Callable[[], bool] | None


def _run_options(flow: Flow, options: dict[str, Any], *,
                 on_progress: Callable[[float], None] | None,
                 cancel: Callable[[], bool] | None) -> _RunOptions:
    allowed = {"days", "seed", "responses", "start", "max_step", "response_model", "progress",
               "tick"}
    unknown = set(options) - allowed
    if unknown:
        raise TypeError(f"unknown simulation options {sorted(unknown)}")
    return _RunOptions(
        days=options.get("days", 14), seed=options.get("seed", 0),
        responses=options.get("responses", "model"), start=options.get("start"),
        max_step=options.get("max_step"),
        model=options.get("response_model") or ResponseModel(),
        progress=options.get("progress", False), grid=tick_interval(flow, options.get("tick")),
        on_progress=on_progress, cancel=cancel)


@dataclass
class _Population:
    """A store holding the imported population and the deployed flow, ready to simulate on.

    A simulation runs once in place. A sweep in memory (`copies`) runs its variants together
    while they cannot differ (`_shared_runs`), then each on its own copy (attached database
    `run_<n>`). `kept` is the workspace a result may hand out (a file store in `home`)."""

    workspace: Workspace
    copies: bool
    kept: Workspace | None
    runs: int = 0

    def run(self, flow: Flow, params: dict[str, Any], options: _RunOptions) -> SimulationResult:
        if self.runs:
            raise RuntimeError("this population runs once; a sweep runs its variants together")
        self.runs += 1
        with self.workspace.connection() as connection, self.workspace.steady():
            clock = _Clock.start(connection, options)
            _advance(self.workspace, connection, flow, params, options, clock)
        return _collect(self.workspace, flow, params, options.seed, clock.ticks, self.kept)

    def run_variants(self, flow: Flow, param: str, variants: list[dict[str, Any]],
                     options: list[_RunOptions]) -> list[SimulationResult]:
        """Every variant, row for row as if simulated alone (see `_shared_runs`)."""
        if self.runs or not self.copies:
            raise RuntimeError("variants run together once, on a population made for copies")
        self.runs += 1
        return _shared_runs(self.workspace, flow, param, variants, options)


@dataclass
class _Clock:
    """Where a run is on the virtual clock: the next tick time (None: nothing is ever due
    again), the run's first tick, its end, the time reported as done, ticks so far, and the
    engine's own next due time (`next_due`, which behaviour events do not change)."""

    now: datetime | None
    origin: datetime
    end: datetime
    position: datetime
    ticks: int = 0
    due: datetime | None = None  # the engine's next due time after the last tick (None:
    due_known: bool = False      # never again, once known)

    @classmethod
    def start(cls, connection: duckdb.DuckDBPyConnection, options: _RunOptions) -> _Clock:
        from mawb.data import DEMO_EPOCH

        start = options.start
        if start is None and options.responses == "history":
            first = connection.execute("SELECT min(ts) FROM events").fetchone()
            start = first[0] if first and first[0] else DEMO_EPOCH
        origin = utc_naive(start or DEMO_EPOCH)
        return cls(origin, origin, origin + timedelta(days=options.days), origin)


def _advance(workspace: Workspace, connection: duckdb.DuckDBPyConnection, flow: Flow,
             params: dict[str, Any], options: _RunOptions, clock: _Clock) -> None:
    """Tick on the virtual clock from `clock.now` until `days` have passed (or until a guard
    stops a tick, see `mawb.engine.plan.guarded`: `clock` then still names that tick)."""
    engagement = "engagement_score" in contact_column_names(connection)
    step = options.max_step or (timedelta(hours=6) if options.responses != "none" else None)
    hours = round(options.days * 24)
    bar = tqdm(total=hours, unit="h", desc=f"simulating {flow.id}", leave=False,
               initial=min(hours, round((clock.position - clock.origin).total_seconds() / 3600)),
               disable=not options.progress)
    with held():  # the flow does not change during the run: plan it once
        try:
            while clock.now is not None and clock.now <= clock.end:
                now = clock.now
                ran = workspace.tick(flow, now, params)
                if options.responses == "model" and not ran.isdisjoint((DISPATCH, DRAIN)):
                    # only a dispatch sends (most ticks send nothing)
                    options.model.apply(connection, flow.id, now, options.seed,
                                        engagement=engagement)
                clock.ticks += 1
                if ran or not clock.due_known or (clock.due is not None and clock.due <= now):
                    clock.due = workspace.next_due(flow, now, include_events=False)
                    clock.due_known = True
                # else a tick that ran no stage wrote nothing next_due reads: same answer
                upcoming = clock.due
                if options.responses == "history":
                    upcoming = _earliest(upcoming,
                                         _next_event(connection, now, clock.origin, options.grid))
                if step is not None:
                    upcoming = min(upcoming, now + step) if upcoming else now + step
                if upcoming is not None:
                    reached = min(upcoming, clock.end)
                    bar.update(max(0, round((reached - clock.position).total_seconds() / 3600)))
                    clock.position = reached
                if options.on_progress is not None:
                    options.on_progress(min(1.0, (clock.position - clock.origin)
                                            / (clock.end - clock.origin)) if options.days else 1.0)
                if options.cancel is not None and options.cancel():
                    raise SimulationCancelled(f"simulation of {flow.id} cancelled after "
                                              f"{clock.ticks} ticks")
                clock.now = upcoming
        finally:
            bar.close()


class _Diverged(Exception):
    """The next stage reads the swept param: from here on the variants differ."""


def param_readers(flow: Flow, param: str) -> set[str] | None:
    """The stages of `flow` whose work can depend on `param`: nodes whose params mention it
    (conditions `:name`, templates `{{ name }}`, audiences), DISPATCH when the settings do
    (the goal); None (every stage) when the settings mention it. A mention in a label or a
    string literal only makes the answer larger, never wrong."""
    from mawb.engine.plan import DISPATCH

    mention = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(param)}(?![A-Za-z0-9_])")
    if mention.search(json.dumps(flow.settings.model_dump(mode="json"), default=str)):
        return None
    readers = {node.id for node in flow.nodes
               if mention.search(json.dumps(node.params, default=str))}
    return readers | ({DISPATCH} if flow.settings.goal and mention.search(flow.settings.goal)
                      else set())


def _shared_runs(workspace: Workspace, flow: Flow, param: str, variants: list[dict[str, Any]],
                 options: list[_RunOptions]) -> list[SimulationResult]:
    """Run the variants of a sweep, sharing their work until the swept param first matters.

    The first variant runs alone until a stage that reads `param` is about to run (the guard
    stops the tick there, with the stages before it committed, exactly as a crash would).
    Until then every variant would have written the same rows, so each one continues from a
    copy of that store, with its own params recorded as a lone run records them, and ticks
    the interrupted tick again: the stages already done are skipped (`runs`), the rest run
    with its params. A param that never matters in the run leaves only the record to fix.
    The variants then run side by side, one per CPU (see `_Variants`)."""
    from mawb.engine.plan import guarded

    readers = param_readers(flow, param)

    def guard(plan: TickPlan, stage: str) -> None:
        if plan.flow is not flow:
            return  # an older version, with its own recorded params
        if readers is None or (stage in readers and not plan.idle(stage)):
            raise _Diverged(stage)

    with workspace.connection() as connection:
        with workspace.steady():
            clock = _Clock.start(connection, options[0])
            diverged = False
            try:
                with guarded(guard):
                    _advance(workspace, connection, flow, variants[0], options[0], clock)
            except _Diverged:
                diverged = True
        return _Variants(workspace, connection, flow, clock, diverged).run(variants, options)


@dataclass
class _Variants:
    """A sweep's variants after their shared prefix, run side by side.

    Each variant has its own cursor on the one in-memory DuckDB and its own store in it: a
    copy of the shared store (attached database `run_<n>`, detached after), or for the last
    variant the shared store itself, which it may change only once every copy is made. DuckDB
    runs a statement without Python's lock, so variants on two workers use both CPUs; each
    variant's rows are exactly a lone run's (tests/engine/test_sweep_shared.py)."""

    workspace: Workspace
    connection: duckdb.DuckDBPyConnection
    flow: Flow
    clock: _Clock
    diverged: bool
    copied: threading.Event = field(default_factory=threading.Event)
    pending_copies: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, variants: list[dict[str, Any]],
            options: list[_RunOptions]) -> list[SimulationResult]:
        self.pending_copies = len(variants) - 1
        if not self.pending_copies:
            self.copied.set()
        workers = max(1, min(len(variants), os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mawb-sweep") as pool:
            futures = [pool.submit(self._one, index, params, run, index < len(variants) - 1)
                       for index, (params, run) in enumerate(zip(variants, options,
                                                                 strict=True))]
            return [future.result() for future in futures]

    def _one(self, index: int, params: dict[str, Any], run: _RunOptions,
             copy: bool) -> SimulationResult:
        from mawb.engine.tick import record_params

        cursor = self.connection.cursor()
        name = f"run_{index}" if copy else "population"
        attached = False
        try:
            if copy:
                try:
                    cursor.execute(f"ATTACH ':memory:' AS {name}")
                    attached = True
                    cursor.execute(f"COPY FROM DATABASE population TO {name}")
                finally:
                    self._copy_made()  # made or failed: the shared store may change now
            else:
                self.copied.wait()  # nobody copies the shared store while it changes
            cursor.execute(f"USE {name}")
            own = Workspace.in_memory(self.workspace.home, cursor)
            with own.steady():
                cursor.execute("DELETE FROM run_params WHERE flow_id = ? AND version = ?",
                               [self.flow.id, self.flow.version])
                record_params(cursor, self.flow, self.clock.origin, params)
                clock = dataclasses.replace(self.clock)
                if self.diverged:
                    _advance(own, cursor, self.flow, params, run, clock)
                elif run.on_progress is not None:
                    run.on_progress(1.0)
                return _collect(own, self.flow, params, run.seed, clock.ticks)
        finally:
            if attached:
                cursor.execute("USE population")
                cursor.execute(f"DETACH {name}")
            cursor.close()

    def _copy_made(self) -> None:
        with self.lock:
            self.pending_copies -= 1
            if not self.pending_copies:
                self.copied.set()


@contextlib.contextmanager
def _population(flow: Flow, contacts: Any, events: Any, responses: Responses,
                home: str | Path | None, copies: bool = False) -> Iterator[_Population]:
    """Import contacts and events and deploy `flow`, once (see `_Population`)."""
    if home is not None:
        workspace = Workspace(home)
        with workspace.session():
            _load(workspace, flow, contacts, events, responses)
            yield _Population(workspace, copies=False, kept=workspace)
        return
    with tempfile.TemporaryDirectory(prefix="mawb-sim-") as folder:
        connection = connect_memory(Path(folder) / ".tmp")
        try:
            # The population lives in an attached database of its own, so runs can copy it.
            connection.execute("ATTACH ':memory:' AS population")
            connection.execute("USE population")
            workspace = Workspace.in_memory(folder, connection)
            _load(workspace, flow, contacts, events, responses)
            _size_threads(connection)
            yield _Population(workspace, copies=copies, kept=None)
        finally:
            connection.close()


# Up to this many contacts a run's statements are small: DuckDB's scheduling across threads
# then costs more CPU than the second thread gives (measured on 2 CPUs: 10k contacts 1.07 s
# CPU on one thread, 1.40 s on two), and a sweep uses the CPUs for its variants instead.
ONE_THREAD_CONTACTS = 250_000


def _size_threads(connection: duckdb.DuckDBPyConnection) -> None:
    row = connection.execute("SELECT count(*) FROM contacts").fetchone()
    if row and row[0] <= ONE_THREAD_CONTACTS:
        connection.execute("SET threads = 1")


def _load(workspace: Workspace, flow: Flow, contacts: Any, events: Any,
          responses: Responses) -> None:
    workspace.import_contacts(_contacts_frame(contacts))
    if responses == "history" and events is None:
        from mawb.data import demo_events

        events = demo_events()
    if events is not None:
        workspace.import_events(events, source_name="history")
    workspace.deploy(flow)


def _earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    return min((t for t in (first, second) if t is not None), default=None)


def _next_event(connection: duckdb.DuckDBPyConnection, now: datetime, origin: datetime,
                grid: timedelta) -> datetime | None:
    """The first grid point (origin + k * grid) at or after the next recorded event."""
    row = connection.execute("SELECT min(ts) FROM events WHERE ts > ?", [now]).fetchone()
    if not row or row[0] is None:
        return None
    steps = -((origin - row[0]) // grid)  # ceiling division
    return origin + steps * grid


def _collect(workspace: Workspace, flow: Flow, params: dict[str, Any], seed: int,
             ticks: int, keep: Workspace | None = None) -> SimulationResult:
    """Read the run back in the counts vocabulary of `mawb.analytics` (same words as the
    Monitor and the CLI)."""
    with workspace.connection(read_only=True) as connection:
        funnel = analytics.step_counts(connection, flow)  # read once, shared by the next two
        message_steps = analytics.message_counts(connection, flow, steps=funnel)
        messages = analytics.messages_by_node(connection, flow.id)
        per_channel = analytics.messages_by_channel(connection, flow.id)
        timeline = analytics.timeline(connection, flow.id)
        summary = analytics.summary(connection, flow, messages=message_steps)
        edges = analytics.edge_counts(connection, flow)
    result = SimulationResult(flow, params, seed, funnel, messages, per_channel, timeline,
                              summary, keep, ticks, message_steps=message_steps,
                              edges=edges)
    result.figures = _Figures({"funnel": result.funnel_figure,
                               "timeline": result.timeline_figure})
    return result


class _Figures(Mapping[str, go.Figure]):
    """Figures by name, each built once on first access: building Plotly figures costs more
    than reading a small run back."""

    def __init__(self, builders: dict[str, Callable[[], go.Figure]]) -> None:
        self._builders = builders
        self._built: dict[str, go.Figure] = {}

    def __getitem__(self, name: str) -> go.Figure:
        if name not in self._built:
            self._built[name] = self._builders[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


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
          progress: bool = True, on_progress: Callable[[float], None] | None = None,
          cancel: Callable[[], bool] | None = None, **options: Any) -> SweepResult:
    """Simulate the flow once per value of `param` (same seed) and compare in one table.

    The population is imported once; the values run together until the param first
    matters, then each on its own in-memory copy of that store (with `home`, each value gets
    a file store in `home/<param>-<n>` instead). `on_progress`
    gets the share of the whole sweep done (0..1); `cancel` stops it between two ticks."""
    flow = sandboxed(flow)
    if param not in flow.params:
        raise ValueError(f"{param!r} is not a param of {flow.id}; params: {sorted(flow.params)}")
    fixed = options.pop("params", None) or {}
    home = options.pop("home", None)
    merged = [_checked_params(flow, {**fixed, param: value}) for value in values]
    frame = _contacts_frame(contacts)
    events, responses = options.pop("events", None), options.get("responses", "model")

    done = [0.0] * len(values)  # each value's share done; they may run side by side
    lock = threading.Lock()

    def share(index: int) -> Callable[[float], None]:
        def report(value_done: float) -> None:
            if on_progress is not None:
                with lock:
                    done[index] = max(done[index], value_done)
                    on_progress(sum(done) / len(values))
        return report

    runs = [_run_options(flow, dict(options), on_progress=share(index), cancel=cancel)
            for index in range(len(values))]
    if not values:
        results: list[SimulationResult] = []
    elif home is None:
        with _population(flow, frame, events, responses, None, copies=True) as shared:
            results = shared.run_variants(flow, param, merged, runs)
    else:
        results = []
        for index, (params, run) in enumerate(
                zip(tqdm(merged, desc=f"sweeping {param}", disable=not progress, leave=False),
                    runs, strict=True)):
            with _population(flow, frame, events, responses,
                             Path(home) / f"{param}-{index}") as own:
                results.append(own.run(flow, params, run))
    rows = [{"value": value, **result.summary}
            for value, result in zip(values, results, strict=True)]
    return SweepResult(param, pd.DataFrame(rows), results)
