"""Trigger steps: select who enters, create enrollments and their first tokens, set-based.

Each trigger computes a candidate set of contacts (`candidates` temp table) from its
audience, schedule, events or list, filters it by the flow's `reentry` rule, and inserts
enrollments plus one token per enrollment at the trigger node; the generic cohort step then
passes them down. Event-driven triggers only look at events that are new since their last
run: ingested after it (`seq`) or timestamped after it (`ts`) — whichever comes later — so
late and future-dated events are each counted exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from mawb import nodes
from mawb.engine.cohort import literal, quote
from mawb.engine.schedule import next_fire
from mawb.expr import to_sql
from mawb.nodes import triggers
from mawb.nodes.base import TriggerKind

if TYPE_CHECKING:
    from collections.abc import Callable

    import duckdb

    from mawb.model import Flow, Node
    from mawb.nodes.base import Params

EPOCH = datetime(1970, 1, 1)


def _state(connection: duckdb.DuckDBPyConnection, flow: Flow, node: Node) -> tuple[Any, Any]:
    row = connection.execute(
        "SELECT last_fired_at, last_event_seq FROM trigger_state WHERE flow_id = ? AND node_id = ?",
        [flow.id, node.id],
    ).fetchone()
    return (row[0], row[1]) if row else (None, None)


def _save_state(connection: duckdb.DuckDBPyConnection, flow: Flow, node: Node,
                fired: datetime | None, seq: int | None) -> None:
    connection.execute("DELETE FROM trigger_state WHERE flow_id = ? AND node_id = ?",
                       [flow.id, node.id])
    connection.execute("INSERT INTO trigger_state VALUES (?, ?, ?, ?)",
                       [flow.id, node.id, fired, seq])


def _audience(text: str | None, flow_params: dict[str, Any], now: datetime) -> str:
    if not text:
        return "true"
    column = lambda name: exp.column(name, table="c", quoted=True)  # noqa: E731
    return f"coalesce(({to_sql(text, flow_params, column=column, now=now)}), false)"


def _max_seq(connection: duckdb.DuckDBPyConnection, after: int | None) -> int:
    """The newest event seq; only events after the last one seen are read (seq grows with
    every insert, so row-group statistics skip the history)."""
    row = connection.execute("SELECT coalesce(max(seq), ?) FROM events WHERE seq > ?",
                             [int(after or 0), int(after or 0)]).fetchone()
    return int(row[0]) if row else int(after or 0)


def _new_events(last_seq: int | None, last_time: datetime | None) -> str:
    return (f"ev.ts <= ? AND (ev.seq > {int(last_seq or 0)} OR ev.ts > "
            f"{literal((last_time or EPOCH).isoformat(sep=' '))}::TIMESTAMP)")


def candidates(connection: duckdb.DuckDBPyConnection, flow: Flow, node: Node, params: Params,
               now: datetime, flow_params: dict[str, Any]) -> None:
    """Fill the `candidates` temp table (contact_id) for one trigger node, by the trigger
    kind its registered type declares."""
    connection.execute("CREATE OR REPLACE TEMP TABLE candidates (contact_id VARCHAR)")
    last_time, last_seq = _state(connection, flow, node)
    seq_now = _max_seq(connection, last_seq)
    audience = _audience(getattr(params, "audience", None), flow_params, now)
    fill = _CANDIDATES[trigger_kind(node)]
    fired = fill(_Run(connection, flow, node, params, now, flow_params, audience,
                      last_time, last_seq))
    _save_state(connection, flow, node, fired, seq_now)


def trigger_kind(node: Node) -> TriggerKind:
    """The kind of a trigger node (ValueError for a node that is no trigger)."""
    kind = nodes.get(node.type).trigger_kind
    if kind is None:
        raise ValueError(f"node {node.id}: {node.type} is not a trigger")
    return kind


@dataclass(frozen=True)
class _Run:
    """One trigger's run: what its candidate query needs."""

    connection: duckdb.DuckDBPyConnection
    flow: Flow
    node: Node
    params: Any
    now: datetime
    flow_params: dict[str, Any]
    audience: str
    last_time: datetime | None
    last_seq: int | None


def _time_candidates(run: _Run) -> datetime | None:
    """An audience on a schedule, or the contacts whose date attribute (plus offset) passed."""
    params, connection, now, last_time = run.params, run.connection, run.now, run.last_time
    if params.date_field:
        offset = int(params.offset_days * 86400 * 1e6)
        when = (f"TRY_CAST(c.{quote(params.date_field)} AS TIMESTAMP) "
                f"+ to_microseconds(CAST({offset} AS BIGINT))")
        connection.execute(
            f"INSERT INTO candidates SELECT c.contact_id FROM contacts c "
            f"WHERE {when} <= ? AND {when} > ? AND {run.audience}",
            [now, last_time or EPOCH],
        )
        return now
    due = next_fire(params.schedule, last_time)
    if due is not None and due <= now:
        connection.execute(
            f"INSERT INTO candidates SELECT c.contact_id FROM contacts c WHERE {run.audience}"
        )
        return now
    if last_time is None:
        return now  # a recurring schedule starts counting from the first tick
    return last_time


def _behavioral_candidates(run: _Run) -> datetime:
    params, now = run.params, run.now
    names = ", ".join(literal(name) for name in params.events)
    window = (f"AND ev.ts > CAST(? AS TIMESTAMP) - to_microseconds("
              f"CAST({int(params.within_days * 86400 * 1e6)} AS BIGINT))"
              if params.within_days else "AND ? IS NOT NULL")
    run.connection.execute(
        f"""
        INSERT INTO candidates
        SELECT c.contact_id FROM contacts c
        WHERE c.contact_id IN (SELECT ev.contact_id FROM events ev
                               WHERE ev.name IN ({names})
                                 AND {_new_events(run.last_seq, run.last_time)})
          AND (SELECT count(*) FROM events ev WHERE ev.contact_id = c.contact_id
               AND ev.name IN ({names}) AND ev.ts <= ? {window}) >= {int(params.min_count)}
          AND {run.audience}
        """,
        [now, now, now],
    )
    return now


def _event_candidates(run: _Run) -> datetime:
    """Contacts named by new events of the trigger's name (whose properties match `where`)."""
    params, flow, node, now = run.params, run.flow, run.node, run.now
    where = "true"
    if params.where:
        column = lambda name: exp.func(  # noqa: E731
            "json_extract_string", exp.column("properties", table="ev"),
            exp.Literal.string(f"$.{name}"))
        condition = to_sql(params.where, run.flow_params, column=column, now=now)
        where = f"coalesce(({condition}), false)"
    if trigger_kind(node) is TriggerKind.WEBHOOK:
        # Of the live sources, only calls to this node's own endpoint enroll: an API event
        # of the same name (or another flow's webhook, a link, a provider) never does. The
        # service records the source. Recorded events (imports, history, simulations)
        # stand in for past calls, so backtests and simulations of webhook flows work.
        own = literal(f"webhook:{flow.id}:{node.id}")
        where += (f" AND (ev.source = {own} OR NOT (ev.source IN ('api', 'link') "
                  "OR ev.source LIKE 'webhook:%' OR ev.source LIKE 'provider:%'))")
    run.connection.execute(
        f"""
        INSERT INTO candidates
        SELECT c.contact_id FROM contacts c
        WHERE c.contact_id IN (SELECT ev.contact_id FROM events ev
                               WHERE ev.name = ? AND {_new_events(run.last_seq, run.last_time)}
                                 AND {where})
          AND {run.audience}
        """,
        [params.event, now],
    )
    return now


def _manual_candidates(run: _Run) -> datetime:
    """The inline list (first run only) and the lists requested since (`mawb enroll`)."""
    connection, flow, node, now = run.connection, run.flow, run.node, run.now
    connection.execute(
        "INSERT INTO candidates SELECT contact_id FROM contacts WHERE contact_id IN "
        "(SELECT unnest(?::VARCHAR[]) UNION SELECT contact_id FROM manual_requests "
        " WHERE flow_id = ? AND node_id = ? AND NOT consumed AND requested_at <= ?)",
        [list(run.params.contacts) if run.last_time is None else [], flow.id, node.id, now],
    )
    connection.execute(
        "UPDATE manual_requests SET consumed = true WHERE flow_id = ? AND node_id = ? "
        "AND requested_at <= ?", [flow.id, node.id, now],
    )
    return now


_CANDIDATES: dict[TriggerKind, Callable[[_Run], datetime | None]] = {
    TriggerKind.TIME: _time_candidates,
    TriggerKind.BEHAVIORAL: _behavioral_candidates,
    TriggerKind.EVENT: _event_candidates,
    TriggerKind.WEBHOOK: _event_candidates,
    TriggerKind.MANUAL: _manual_candidates,
}


def may_enroll(connection: duckdb.DuckDBPyConnection, flow: Flow, node: Node, params: Params,
               now: datetime, state: tuple[Any, Any] | None = None) -> bool:
    """False only when `candidates` would certainly find nobody now, so that a tick may skip
    the trigger's stage (and its transaction) altogether.

    Skipping leaves `trigger_state` as it was; that is the same state for what follows,
    because the next run still looks at every event newer than the state's seq or time, and
    a skip means no event of the trigger's names was among them now. `state` is the node's
    (last_fired_at, last_event_seq) when the caller already read it (the tick plan)."""
    last_time, last_seq = state if state is not None else _state(connection, flow, node)
    if last_time is None:
        return True
    kind = trigger_kind(node)
    if kind is TriggerKind.TIME:
        assert isinstance(params, triggers.TimeBasedParams)
        if params.date_field:
            return True
        due = next_fire(params.schedule, last_time)
        return due is not None and due <= now
    if kind in (TriggerKind.BEHAVIORAL, TriggerKind.EVENT, TriggerKind.WEBHOOK):
        names = (params.events if isinstance(params, triggers.BehavioralParams)
                 else [params.event])  # type: ignore[attr-defined]
        row = connection.execute(
            f"SELECT EXISTS (SELECT 1 FROM events ev WHERE list_contains(?, ev.name) "
            f"AND {_new_events(last_seq, last_time)})",
            [list(names), now],
        ).fetchone()
        return bool(row and row[0])
    if kind is TriggerKind.MANUAL:
        row = connection.execute(
            "SELECT EXISTS (SELECT 1 FROM manual_requests WHERE flow_id = ? AND node_id = ? "
            "AND NOT consumed AND requested_at <= ?)",
            [flow.id, node.id, now],
        ).fetchone()
        return bool(row and row[0])
    return True


def enroll(connection: duckdb.DuckDBPyConnection, flow: Flow, node: Node, now: datetime) -> None:
    """Turn `candidates` into enrollments + tokens at the trigger node, honouring reentry."""
    found = connection.execute("SELECT EXISTS (SELECT 1 FROM candidates)").fetchone()
    if not (found and found[0]):
        return
    # Past entries come from `flow_entries` (one row per contact that ever entered), not
    # from counting the enrollment history; "active" is read from the active enrollments,
    # which lie in the newest row groups (older ones are skipped by their statistics).
    reentry = {
        "never": "p.entries IS NULL",
        "after_exit": "NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.flow_id = $flow "
                      "AND e.status = 'active' AND e.contact_id = k.contact_id)",
        "always": "true",
    }[flow.settings.reentry.value]
    connection.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE entering AS
        WITH k AS (SELECT DISTINCT contact_id FROM candidates),
             p AS (SELECT contact_id, entries FROM flow_entries
                   WHERE flow_id = $flow AND contact_id IN (SELECT contact_id FROM k))
        SELECT (SELECT coalesce(max(enrollment_id), 0) FROM enrollments)
                   + row_number() OVER (ORDER BY k.contact_id) AS enrollment_id, k.contact_id,
               1 + coalesce(p.entries, 0) AS entry_number
        FROM k LEFT JOIN p USING (contact_id)
        WHERE {reentry}
        """,
        {"flow": flow.id},
    )
    connection.execute(
        "INSERT INTO enrollments SELECT enrollment_id, contact_id, ?, ?, ?, 'active', ?, NULL, "
        "NULL, entry_number FROM entering",
        [flow.id, flow.version, node.id, now],
    )
    if flow.settings.reentry.value != "never":  # otherwise every entry is a first one
        connection.execute(
            "UPDATE flow_entries SET entries = n.entry_number FROM entering n "
            "WHERE flow_entries.flow_id = ? AND flow_entries.contact_id = n.contact_id "
            "AND n.entry_number > 1", [flow.id])
    connection.execute(
        "INSERT INTO flow_entries SELECT ?, contact_id, entry_number FROM entering "
        "WHERE entry_number = 1", [flow.id])
    connection.execute(
        "INSERT INTO tokens SELECT (SELECT coalesce(max(token_id), 0) FROM tokens) "
        "+ row_number() OVER (ORDER BY enrollment_id), enrollment_id, contact_id, ?, ?, ?, "
        "NULL, ?, ?, NULL, 0, NULL FROM entering",
        [flow.id, flow.version, node.id, now, now],
    )
    connection.execute(
        "INSERT INTO node_log SELECT ?, ?, ?, enrollment_id, contact_id, ?, 'entered', NULL, "
        "'enrolled' FROM entering",
        [now, flow.id, flow.version, node.id],
    )


def next_trigger_time(connection: duckdb.DuckDBPyConnection, flow: Flow, node: Node,
                      params: Params, now: datetime,
                      state: tuple[Any, Any] | None = None) -> datetime | None:
    """When this trigger could next enroll anyone (for the virtual clock), or None; `state`
    as in `may_enroll`."""
    last_time, _ = state if state is not None else _state(connection, flow, node)
    if trigger_kind(node) is TriggerKind.TIME:
        assert isinstance(params, triggers.TimeBasedParams)
        if params.date_field:
            offset = int(params.offset_days * 86400 * 1e6)
            row = connection.execute(
                f"SELECT min(TRY_CAST({quote(params.date_field)} AS TIMESTAMP) "
                f"+ to_microseconds(CAST({offset} AS BIGINT))) FROM contacts "
                f"WHERE TRY_CAST({quote(params.date_field)} AS TIMESTAMP) "
                f"+ to_microseconds(CAST({offset} AS BIGINT)) > ?",
                [now],
            ).fetchone()
            return row[0] if row else None
        due = next_fire(params.schedule, last_time or now)
        return due if due is None or due > now else now + timedelta(microseconds=1)
    return None
