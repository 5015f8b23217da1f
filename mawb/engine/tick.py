"""Tick orchestration: which stages a tick runs, on which partitions and versions, with which
params.

`tick` advances a flow by one tick on every partition: `ingest` (spool + event effects) ->
every node in topological order -> `dispatch` (goal, outbox, completions) -> `drain` (every
other version that still holds contacts). `step` runs one of those stages for one partition at
an explicit tick time — the Airflow tasks do exactly that — and running every stage in order
gives exactly what `tick` gives. Each stage is a transaction of `engine.stage`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mawb import flowplan
from mawb.engine import enroll, lifecycle
from mawb.engine.plan import TRIGGERS, TickPlan, read_facts, trigger_states
from mawb.engine.stage import DISPATCH, INGEST, run_stage
from mawb.engine.store import utc_naive

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    import duckdb

    from mawb.engine.workspace import Workspace
    from mawb.model import Flow

# Advances every other version of the flow that still holds contacts (see `Workspace.tick`).
DRAIN = "_drain"
# Every stage of one partition's tick in one call (`mawb step --node _tick`, the coarse task).
TICK = "_tick"


def stages(flow: Flow) -> list[str]:
    """A tick's stages in order; running them one by one (`step`) is exactly `tick`."""
    return [INGEST, *flowplan.plan(flow).order, DISPATCH, DRAIN]


def tick(workspace: Workspace, flow: Flow, now: datetime,
         params: dict[str, Any] | None = None, load_spool: bool = True) -> set[str]:
    """Advance `flow` by one tick on every partition, then every other live version.

    `params` override `flow`'s own params and apply to that version only; they are
    recorded in `run_params`. Contacts on other versions of the flow (entered before a
    newer version was published, or still held by a removed node) move on in the DRAIN
    stage, with the params their version last ran with, and no new contact enters them.

    Returns the stages that ran on some partition (the plan skipped the others): a tick
    without DISPATCH or DRAIN sent nothing.
    """
    now = utc_naive(now)
    if load_spool:
        workspace.load_spool()
    ran: set[str] = set()
    with flowplan.held():
        for partition in range(workspace.partitions):
            ran.update(tick_partition(workspace, flow, now, partition, params))
    return ran


def tick_partition(workspace: Workspace, flow: Flow, now: datetime, partition: int,
                   params: dict[str, Any] | None) -> list[str]:
    ran = []
    with workspace.connection(partition) as connection, flowplan.held():
        workspace._once(("params", partition, flow.id, flow.version, as_json(params)),
                        lambda: record_params(connection, flow, now, params))
        held = workspace._once(("held", partition, flow.id),
                               lambda: lifecycle.held(connection, flow.id))
        # Within `steady`, a previous tick that ran to its end leaves nothing to complete, and
        # trigger states change only when a trigger stage runs.
        settled = ("settled", partition, flow.id, flow.version)
        steady = workspace._steady if workspace._steady is not None else {}
        known = triggers_key(partition, flow)
        plan = TickPlan(connection, flow, now,  # stages with nothing due are skipped
                        settled=bool(steady.pop(settled, False)), triggers=steady.get(known))
        steady[known] = plan.triggers
        triggers = flowplan.plan(flow).triggers
        for stage in workspace.stages(flow) if not held else [INGEST]:
            if plan.skip(stage):
                continue
            if stage in triggers:
                steady.pop(known, None)
            if run(workspace, connection, flow, stage, now, params):
                plan.ran(stage)
                ran.append(stage)
        steady[settled] = True
    return ran


def step(workspace: Workspace, flow: Flow, stage: str, now: datetime, partition: int = 0,
         params: dict[str, Any] | None = None) -> None:
    """Run one stage (INGEST, a node id, DISPATCH or DRAIN) for one partition, or TICK:
    every stage of the partition's tick in this one call (the coarse Airflow task).

    INGEST first loads the partition's share of the spool; a paused or stopped flow
    runs nothing else (its contacts stay where they are)."""
    if stage in (INGEST, TICK):
        workspace.load_spool([partition])
    if stage == TICK:
        tick_partition(workspace, flow, utc_naive(now), partition, params)
        return
    with workspace.connection(partition) as connection, flowplan.held():
        if stage != INGEST and lifecycle.held(connection, flow.id):
            return
        record_params(connection, flow, utc_naive(now), params)
        # Skip what `tick`'s plan would skip (an idle trigger or ingest), so both runners
        # leave the same bookkeeping; DISPATCH always runs (the plan would only skip it if
        # no node moved, which one stage alone cannot know).
        if stage != DISPATCH and TickPlan(connection, flow, utc_naive(now)).skip(stage):
            return
        run(workspace, connection, flow, stage, utc_naive(now), params)


def run(workspace: Workspace, connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str,
        now: datetime, params: dict[str, Any] | None) -> bool:
    """Run one stage; False when it was DRAIN and no older version holds contacts."""
    if stage != DRAIN:
        run_stage(connection, flow, stage, now, params)
        return True
    older_ones = older_versions(workspace, connection, flow)
    for older in older_ones:
        own = recorded_params(connection, older, now)
        record_params(connection, older, now, own)
        for older_stage in drain_stages(older):
            run_stage(connection, older, older_stage, now, own)
    return bool(older_ones)


def older_versions(workspace: Workspace, connection: duckdb.DuckDBPyConnection,
                   flow: Flow) -> list[Flow]:
    key = ("no older versions", id(connection), flow.id, flow.version)
    if workspace._steady is not None and key in workspace._steady:
        return []
    rows = connection.execute(
        "SELECT DISTINCT version FROM tokens WHERE flow_id = ? AND version <> ? UNION "
        "SELECT DISTINCT version FROM outbox WHERE flow_id = ? AND version <> ? "
        "AND status = 'pending' ORDER BY 1",  # deferred rows of a drained version
        [flow.id, flow.version, flow.id, flow.version],
    ).fetchall()
    if not rows and workspace._steady is not None:
        workspace._steady[key] = True
    return [workspace.load_flow(flow.id, row[0]) for row in rows]


# The earliest wake time, deferred message or (with $events) event after $now, as a fact row.
_NEXT = """SELECT 'next', NULL, least(
    (SELECT min(wake_at) FROM tokens WHERE flow_id = $flow AND wake_at > $now),
    (SELECT min(not_before) FROM outbox WHERE flow_id = $flow
       AND status = 'pending' AND not_before > $now),
    (SELECT min(ts) FROM events WHERE ts > $now AND $events)), NULL"""


def triggers_key(partition: int, flow: Flow) -> tuple[str, int, str]:
    """Where `steady` keeps a partition's trigger states of `flow` (see `tick_partition`)."""
    return ("triggers", partition, flow.id)


def next_due(workspace: Workspace, flow: Flow, now: datetime,
             include_events: bool = True) -> datetime | None:
    """The earliest time after `now` at which a tick would change anything.

    `include_events=False` ignores future-dated events (the simulator's own behaviour
    events, which it picks up at its regular steps instead of jumping to each one)."""
    now = utc_naive(now)
    candidates: list[datetime] = []
    for partition in range(workspace.partitions):
        with workspace.connection(partition) as connection, flowplan.held():
            known = (workspace._steady or {}).get(triggers_key(partition, flow))
            # each trigger's state in this statement rather than one per trigger
            facts = read_facts(connection, [_NEXT] + ([] if known is not None else [TRIGGERS]),
                               {"flow": flow.id, "now": now, "events": include_events})
            earliest = facts["next"][0][1]
            if earliest is not None:
                candidates.append(earliest)
            states = known if known is not None else trigger_states(facts)
            for node_id in flowplan.plan(flow).triggers:
                due = enroll.next_trigger_time(connection, flow, flow.node(node_id),
                                               flowplan.node_params(flow, node_id), now,
                                               states.get(node_id, (None, None)))
                if due is not None:
                    candidates.append(due)
    return min(candidates) if candidates else None


def drain_stages(flow: Flow) -> list[str]:
    """The stages of a version that only finishes its contacts: its nodes in order, except
    its triggers (nobody new enters an older version; a token never rests at a trigger),
    then DISPATCH."""
    planned = flowplan.plan(flow)
    return [node_id for node_id in planned.order
            if not planned.types[node_id].is_trigger()] + [DISPATCH]


def record_params(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
                  params: dict[str, Any] | None) -> None:
    """Record the params `flow` runs with from this tick on (its defaults plus the
    overrides), when they differ from the ones last recorded: the params of any tick are the
    latest row at or before it, and an unchanged run writes nothing."""
    effective = {**flow.params, **(params or {})}
    last = connection.execute(
        "SELECT params FROM run_params WHERE flow_id = ? AND version = ? AND tick_time <= ? "
        "ORDER BY tick_time DESC LIMIT 1", [flow.id, flow.version, now],
    ).fetchone()
    if last is not None and json.loads(last[0]) == json.loads(json.dumps(effective, default=str)):
        return
    connection.execute("INSERT OR REPLACE INTO run_params VALUES (?, ?, ?, ?)",
                       [flow.id, flow.version, now,
                        json.dumps(effective, sort_keys=True, default=str)])


def tick_counts(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
                stages: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """What a tick did, per node (every version of the flow): node_log rows written at `now`
    by event (entered, completed, waiting, failed, converted, moved), and messages sent.

    What `mawb step` logs and a compiled DAG's task returns as its XCom, so the Airflow UI
    shows per-stage row counts without opening the store."""
    wanted = None if stages is None else list(stages)
    counts: dict[str, dict[str, int]] = {}
    for node_id, event, count in connection.execute(
        "SELECT node_id, event, count(*) FROM node_log WHERE flow_id = ? AND ts = ? "
        "GROUP BY ALL ORDER BY ALL", [flow.id, now],
    ).fetchall():
        if wanted is None or node_id in wanted:
            counts.setdefault(node_id, {})[event] = int(count)
    for node_id, count in connection.execute(
        "SELECT node_id, count(*) FROM messages WHERE flow_id = ? AND sent_at = ? "
        "GROUP BY ALL ORDER BY ALL", [flow.id, now],
    ).fetchall():
        if wanted is None or node_id in wanted or DISPATCH in wanted:
            counts.setdefault(node_id, {})["sent"] = int(count)
    return counts


def recorded_params(connection: duckdb.DuckDBPyConnection, flow: Flow,
                    now: datetime) -> dict[str, Any]:
    """The params `flow` (a version) last ran with up to `now`; its defaults if never run.

    Only names the version declares are kept: a param a newer version added or renamed
    never leaks into an older one."""
    row = connection.execute(
        "SELECT params FROM run_params WHERE flow_id = ? AND version = ? AND tick_time <= ? "
        "ORDER BY tick_time DESC LIMIT 1", [flow.id, flow.version, now],
    ).fetchone()
    recorded = json.loads(row[0]) if row else {}
    return {name: recorded.get(name, value) for name, value in flow.params.items()}


def as_json(value: Any) -> str:
    return json.dumps(value, default=str)


__all__ = ["DRAIN", "TICK", "drain_stages", "next_due", "record_params", "recorded_params",
           "stages", "step", "tick", "tick_counts"]
