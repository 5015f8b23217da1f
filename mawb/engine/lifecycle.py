"""Flow lifecycle: draft -> live -> paused -> stopped, recorded with who and when.

The state lives in `flow_lifecycle`, one row per change (the latest row wins), so the history
of who set a flow live, paused or stopped it stays readable; every partition holds a copy, so
a partition's tick reads only its own store. A flow never changed is a `draft`: the service
ticks only `live` flows, while an explicit `mawb run` or a simulation still ticks a draft (a
test run). `paused` holds contacts where they are — no node steps, nothing dispatched — until
the flow is live again; `stopped` ends every active enrollment with the reason `flow stopped`
and suppresses the messages still pending.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mawb.engine.store import now_utc, transaction, utc_naive

if TYPE_CHECKING:
    from datetime import datetime

    import duckdb

    from mawb.engine.workspace import Workspace


class State(StrEnum):
    DRAFT = "draft"
    LIVE = "live"
    PAUSED = "paused"
    STOPPED = "stopped"


# Which states each state may move to. A stopped flow can be launched again (new entries only:
# its earlier enrollments were ended when it stopped).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.DRAFT: frozenset({State.LIVE, State.STOPPED}),
    State.LIVE: frozenset({State.PAUSED, State.STOPPED}),
    State.PAUSED: frozenset({State.LIVE, State.STOPPED}),
    State.STOPPED: frozenset({State.LIVE}),
}
HELD = frozenset({State.PAUSED, State.STOPPED})
STOP_REASON = "flow stopped"


class LifecycleError(ValueError):
    """A transition the lifecycle does not allow (names the flow and both states)."""


@dataclass(frozen=True)
class Change:
    flow_id: str
    state: State
    version: int | None
    changed_at: datetime | None
    changed_by: str | None
    note: str | None


def actor(default: str | None = None) -> str:
    """Who makes a change: `MAWB_USER`, else the OS user, else `default` or "unknown"."""
    named = os.environ.get("MAWB_USER")
    if named:
        return named
    if default:
        return default
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def current(connection: duckdb.DuckDBPyConnection, flow_id: str) -> Change:
    """The flow's latest lifecycle row (a draft with no author when there is none)."""
    row = connection.execute(
        "SELECT state, version, changed_at, changed_by, note FROM flow_lifecycle "
        "WHERE flow_id = ? ORDER BY changed_at DESC, rowid DESC LIMIT 1", [flow_id],
    ).fetchone()
    if row is None:
        return Change(flow_id, State.DRAFT, None, None, None, None)
    return Change(flow_id, State(row[0]), row[1], row[2], row[3], row[4])


def states(connection: duckdb.DuckDBPyConnection) -> dict[str, Change]:
    """The latest change of every flow that has one."""
    rows = connection.execute(
        "SELECT flow_id, state, version, changed_at, changed_by, note FROM ("
        " SELECT *, row_number() OVER (PARTITION BY flow_id ORDER BY changed_at DESC, rowid DESC)"
        " AS newest FROM flow_lifecycle) WHERE newest = 1"
    ).fetchall()
    return {r[0]: Change(r[0], State(r[1]), r[2], r[3], r[4], r[5]) for r in rows}


def check(flow_id: str, found: State, wanted: State) -> None:
    if wanted not in TRANSITIONS[found]:
        allowed = ", ".join(sorted(TRANSITIONS[found])) or "none"
        raise LifecycleError(f"flow {flow_id} is {found}; it cannot become {wanted} "
                             f"(from {found}: {allowed})")


def record(connection: duckdb.DuckDBPyConnection, flow_id: str, state: State, version: int,
           by: str, note: str | None = None, at: datetime | None = None) -> Change:
    """Check and append one change on one partition (inside the caller's transaction).

    Every partition keeps its own copy of the lifecycle, so a partition's tick (an Airflow
    task) reads it from the one store it opens; a stop also ends that partition's enrollments.
    """
    found = current(connection, flow_id)
    if found.state is state:
        return found  # already so: nothing to record (a repeated request is harmless)
    check(flow_id, found.state, state)
    moment = utc_naive(at) if at else now_utc()
    connection.execute("INSERT INTO flow_lifecycle VALUES (?, ?, ?, ?, ?, ?)",
                       [flow_id, state.value, version, moment, by, note])
    if state is State.STOPPED:
        exit_stopped(connection, flow_id, moment)
    return Change(flow_id, state, version, moment, by, note)


def exit_stopped(connection: duckdb.DuckDBPyConnection, flow_id: str, at: datetime) -> int:
    """End a stopped flow's active enrollments on one partition; returns how many ended.

    Their tokens are removed (logged as `exited`), and messages still pending are suppressed
    with the reason, so a stopped flow sends nothing more."""
    at = utc_naive(at)
    connection.execute(
        "INSERT INTO node_log SELECT ?, flow_id, version, enrollment_id, contact_id, node_id, "
        "'exited', NULL, ? FROM tokens WHERE flow_id = ?", [at, STOP_REASON, flow_id])
    connection.execute("DELETE FROM tokens WHERE flow_id = ?", [flow_id])
    connection.execute(
        "UPDATE outbox SET status = 'suppressed', error = ? WHERE flow_id = ? "
        "AND status = 'pending'", [STOP_REASON, flow_id])
    row = connection.execute(
        "UPDATE enrollments SET status = 'exited', exited_at = ?, exit_reason = ? "
        "WHERE flow_id = ? AND status = 'active'", [at, STOP_REASON, flow_id]).fetchone()
    return int(row[0]) if row else 0


def change(workspace: Workspace, flow_id: str, state: State | str, by: str | None = None,
           note: str | None = None, at: datetime | None = None) -> Change:
    """Apply a lifecycle change directly (no service running): one transaction per partition,
    checked on partition 0 first, so a refused change touches nothing."""
    state = State(state)
    versions = workspace.versions(flow_id)
    if not versions:
        raise LifecycleError(f"flow {flow_id!r} is not deployed (deploy it first)")
    moment = utc_naive(at) if at else now_utc()
    found = state_of(workspace, flow_id)
    if found is not state:
        check(flow_id, found, state)
    made: Change | None = None
    for partition in range(workspace.partitions):
        with workspace.connection(partition) as connection:
            with transaction(connection):
                made = record(connection, flow_id, state, max(versions), by or actor(), note,
                              moment)
    assert made is not None
    return made


def state_of(workspace: Workspace, flow_id: str) -> State:
    """The flow's current state, read through a short read-only connection."""
    path = workspace.store_path(0)
    if not path.exists():
        return State.DRAFT
    with workspace.connection(0, read_only=True) as connection:
        if not _has_table(connection):
            return State.DRAFT
        return current(connection, flow_id).state


def held(connection: duckdb.DuckDBPyConnection, flow_id: str) -> bool:
    """Whether a flow's contacts are held (paused or stopped) on this partition: one indexed
    look-up per tick (a store from before lifecycles, e.g. in memory, holds nothing)."""
    import duckdb

    try:
        row = connection.execute(
            "SELECT state FROM flow_lifecycle WHERE flow_id = ? "
            "ORDER BY changed_at DESC, rowid DESC LIMIT 1", [flow_id]).fetchone()
    except duckdb.CatalogException:
        return False
    return row is not None and row[0] in HELD


def _has_table(connection: duckdb.DuckDBPyConnection) -> bool:
    row = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'flow_lifecycle'").fetchone()
    return bool(row and row[0])


def overview(workspace: Workspace) -> list[dict[str, Any]]:
    """Every deployed flow: id, latest version, state (who, when), contacts active and last
    tick, read through short read-only connections (`mawb flows list`, the Monitor)."""
    folder = workspace.home / "flows"
    ids = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    active: dict[str, int] = {}
    last_tick: dict[str, datetime] = {}
    changes: dict[str, Change] = {}
    for partition in range(workspace.partitions):
        if not workspace.store_path(partition).exists():
            continue
        with workspace.connection(partition, read_only=True) as connection:
            if partition == 0:
                changes = states(connection)
            for flow_id, count in connection.execute(
                    "SELECT flow_id, count(*) FROM enrollments WHERE status = 'active' "
                    "GROUP BY 1").fetchall():
                active[flow_id] = active.get(flow_id, 0) + int(count)
            for flow_id, moment in connection.execute(
                    "SELECT flow_id, max(tick_time) FROM runs GROUP BY 1").fetchall():
                if moment is not None and (flow_id not in last_tick
                                           or moment > last_tick[flow_id]):
                    last_tick[flow_id] = moment
    rows = []
    for flow_id in ids:
        versions = workspace.versions(flow_id)
        if not versions:
            continue
        change = changes.get(flow_id)
        moment = last_tick.get(flow_id)
        rows.append({
            "id": flow_id, "version": max(versions),
            "state": change.state.value if change else State.DRAFT.value,
            "changed_by": change.changed_by if change else None,
            "changed_at": change.changed_at.isoformat() if change and change.changed_at else None,
            "active": active.get(flow_id, 0),
            "last_tick": moment.isoformat() if moment else None,
        })
    return rows
