"""Analytics: one vocabulary of counts over a workspace store, and the figures built on it.

The simulator's result, `mawb simulate --json`, the Monitor, Experiments and notebooks all read
runs through these functions, so a word means the same number everywhere:

- per step (`step_counts`): **entered** tokens that arrived (a contact passing twice counts
  twice; at a merge every incoming branch delivers one), **contacts** distinct entries that
  arrived (what a merge shows), **completed** tokens that left by a branch, **joined** tokens a
  merge absorbed, **waiting** tokens there now, **converted** tokens taken out by the flow goal
  while there, **failed** side effects of the step that failed or were dead-lettered. They add
  up: entered = completed + joined + waiting + converted.
- per message step (`message_counts`): every entry queues one outbox row, which ends **sent**,
  **suppressed** (by reason, `suppression_reasons`), **skipped** (frequency cap), **deferred**
  (pending until a later time: quiet hours, cap hold, retry backoff), **queued** (due now or
  being sent), **failed** or **dead**; their sum is **queued_total**, and `unqueued` (entered -
  queued_total) names entries that produced no row (a contact row missing) instead of hiding
  them.
- per edge (`edge_counts`): the tokens that took the edge (drawn on the canvas edges); the
  edges into a step add up to its entered count.
- **converted** (`conversion_summary`): a contact converts once: it reached the flow goal, or a
  conversion/purchase event of it arrived after it entered the flow. Conversion *events* are
  counted apart (`conversion_events`) and always labelled as events.
- engagement (`engagement_counts`): opens, clicks, conversion events, unsubscribes and bounces,
  split by origin: **simulated** (`source = 'simulation:<flow>'`) and **real** (every other
  source: tracking links, `/v1/events`, provider webhooks, imported history) of the flow's
  contacts since they entered (or naming one of the flow's messages). Dashboards show both
  and label them.
- rates (`kpis`) are shares of unique contacts: opened / reached by an openable message,
  converted / enrolled contacts; None when there is nothing to divide by (shown as a dash).
- daily figures (`daily_activity`) cover one date range with every day present, zeros
  included, so a chart never joins across days with no sends.

Queries take an open DuckDB connection (read-only is enough) so callers decide how long they
hold the store.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from mawb import nodes
from mawb.engine.store import contact_columns
from mawb.model import MESSAGE_CHANNELS
from mawb.nodes.base import CATEGORY_COLORS

if TYPE_CHECKING:
    import duckdb

    from mawb.model import Flow, Node

CHANNELS = MESSAGE_CHANNELS
ENGAGEMENT = ("email_open", "email_click", "conversion", "purchase", "unsubscribe",
              "email_bounce", "bounce")
CHANNEL_COLORS = {"email": "#2563eb", "sms": "#16a34a", "web_push": "#d97706",
                  "social": "#7c3aed", "http": "#64748b", "crm": "#0f766e",
                  "other": "#94a3b8"}
METRIC_COLORS = {"opens": "#2563eb", "clicks": "#0f766e", "conversion events": "#16a34a",
                 "unsubscribes": "#dc2626", "bounces": "#9333ea"}
ORIGINS = ("real", "simulated")
STEP_COLUMNS = ("entered", "contacts", "completed", "joined", "waiting", "converted", "failed")
MESSAGE_OUTCOMES = ("sent", "suppressed", "skipped", "deferred", "queued", "failed", "dead")
SUPPRESSION_REASONS = ("unsubscribed", "no_consent", "do_not_contact", "suppressed_address",
                       "frequency_cap", "quiet_hours", "render_failed")
"""Reason codes on outbox rows (the delivery contract); older rows carry free text in
`error`, which `suppression_reasons` maps onto these codes (else `other`)."""
_LEGACY_REASONS = {"no consent or unsubscribed": "no_consent", "frequency cap": "frequency_cap"}
DASH = "—"


# -- formatting (one rule for every page) ------------------------------------------------------
def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage (`0.0168` -> `1.7%`), a dash when there is no data."""
    if value is None or pd.isna(value):
        return DASH
    return f"{value * 100:.{digits}f}%"


def number(value: float | None) -> str:
    """A count with thousands separators, a dash when there is no data."""
    if value is None or pd.isna(value):
        return DASH
    return f"{int(value):,}"


def share(part: float, whole: float) -> float | None:
    """part / whole, or None when whole is 0 (a rate of nothing is not 0%)."""
    return part / whole if whole else None


# -- steps, messages, edges ------------------------------------------------------------------
def step_counts(connection: duckdb.DuckDBPyConnection, flow: Flow) -> pd.DataFrame:
    """Per step in flow order: entered, contacts, completed, joined, waiting, converted, failed
    (see the module docstring); label, type and category name the step."""
    counts = connection.execute(
        """
        WITH log AS (
            SELECT node_id,
                   count(*) FILTER (event = 'entered') AS entered,
                   count(DISTINCT enrollment_id) FILTER (event = 'entered') AS contacts,
                   count(*) FILTER (event = 'completed' AND coalesce(branch, '') <> 'joined')
                       AS completed,
                   count(*) FILTER (event = 'completed' AND branch = 'joined') AS joined,
                   count(*) FILTER (event = 'converted') AS converted
            FROM node_log WHERE flow_id = $1 GROUP BY node_id),
        waiting AS (SELECT node_id, count(*) AS waiting FROM tokens WHERE flow_id = $1
                    GROUP BY node_id),
        failed AS (SELECT node_id, count(*) AS failed FROM outbox_all WHERE flow_id = $1
                   AND status IN ('failed', 'dead') GROUP BY node_id)
        SELECT node_id, entered, contacts, completed, joined, waiting, converted, failed
        FROM log FULL JOIN waiting USING (node_id) FULL JOIN failed USING (node_id)
        """,
        [flow.id],
    ).fetchdf().set_index("node_id")
    rows = []
    for node in flow.nodes:
        node_type = nodes.get(node.type) if nodes.has(node.type) else None
        found = counts.loc[node.id] if node.id in counts.index else None
        row: dict[str, Any] = {
            "node_id": node.id, "label": step_label(node), "type": node.type,
            "category": node_type.category.value if node_type else "action"}
        for column in STEP_COLUMNS:
            value = found[column] if found is not None else 0
            row[column] = 0 if pd.isna(value) else int(value)
        rows.append(row)
    return pd.DataFrame(rows, columns=["node_id", "label", "type", "category", *STEP_COLUMNS])


funnel = step_counts
"""The historical name of `step_counts` (notebooks and `SimulationResult.funnel`)."""


def _outbox_reason_sql(connection: duckdb.DuckDBPyConnection) -> str:
    """The reason of an outbox row: the delivery contract's `reason` column when the store has
    it, else the `error` text (rows written before reason codes)."""
    columns = {row[0] for row in connection.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'main' "
        "AND table_name = 'outbox'").fetchall()}
    return "coalesce(reason, error)" if "reason" in columns else "error"


def _flow_now(connection: duckdb.DuckDBPyConnection, flow_id: str) -> datetime:
    """The flow's own clock: its last tick (a simulation runs in virtual time), else now."""
    row = connection.execute("SELECT max(tick_time) FROM runs WHERE flow_id = ?",
                             [flow_id]).fetchone()
    return row[0] if row and row[0] else datetime.now(UTC).replace(tzinfo=None)


def message_counts(connection: duckdb.DuckDBPyConnection, flow: Flow,
                   steps: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per message step (a node whose type sends on a channel), in flow order: entered and
    every outbox outcome (see the module docstring); columns entered, sent, suppressed,
    skipped, deferred, queued, failed, dead, queued_total, unqueued.

    `steps`: this store's `step_counts`, when the caller already read them (a simulation's
    read-back reads them once for the funnel, the message steps and the summary)."""
    now = _flow_now(connection, flow.id)
    outcomes = connection.execute(
        """
        SELECT node_id,
               count(*) FILTER (status = 'sent') AS sent,
               count(*) FILTER (status = 'suppressed') AS suppressed,
               count(*) FILTER (status = 'skipped') AS skipped,
               count(*) FILTER (status = 'pending' AND not_before > $now) AS deferred,
               count(*) FILTER (status = 'sending'
                                OR (status = 'pending' AND coalesce(not_before, $now) <= $now))
                   AS queued,
               count(*) FILTER (status = 'failed') AS failed,
               count(*) FILTER (status = 'dead') AS dead,
               count(*) AS queued_total
        FROM outbox_all WHERE flow_id = $flow GROUP BY node_id
        """,
        {"flow": flow.id, "now": now},
    ).fetchdf().set_index("node_id")
    steps = step_counts(connection, flow) if steps is None else steps
    entered = steps.set_index("node_id")["entered"]
    rows = []
    for node in flow.nodes:
        channel = nodes.get(node.type).channel if nodes.has(node.type) else None
        if channel is None:
            continue
        found = outcomes.loc[node.id] if node.id in outcomes.index else None
        row: dict[str, Any] = {"node_id": node.id, "label": step_label(node),
                               "channel": channel, "entered": int(entered.get(node.id, 0))}
        for column in (*MESSAGE_OUTCOMES, "queued_total"):
            row[column] = int(found[column]) if found is not None else 0
        row["unqueued"] = row["entered"] - row["queued_total"]
        rows.append(row)
    return pd.DataFrame(rows, columns=["node_id", "label", "channel", "entered",
                                       *MESSAGE_OUTCOMES, "queued_total", "unqueued"])


def step_label(node: Node) -> str:
    """What pages call a step: its label, else its type's label."""
    return node.label or (nodes.get(node.type).label if nodes.has(node.type) else node.type)


def reason_code(text: str | None) -> str:
    """An outbox row's reason as one of SUPPRESSION_REASONS (else `other`)."""
    if text is None or pd.isna(text):
        return "other"
    value = str(text).strip()
    if value in SUPPRESSION_REASONS:
        return value
    if value.startswith("render failed"):
        return "render_failed"
    return _LEGACY_REASONS.get(value.lower(), "other")


def suppression_reasons(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Suppressed and skipped outbox rows per step, status and reason code (long format:
    node_id, status, reason, count); the counts per step add up to suppressed + skipped."""
    frame = connection.execute(
        f"SELECT node_id, status, {_outbox_reason_sql(connection)} AS reason, count(*) AS count "
        "FROM outbox_all WHERE flow_id = ? AND status IN ('suppressed', 'skipped') GROUP BY ALL",
        [flow_id],
    ).fetchdf()
    frame["reason"] = frame["reason"].map(reason_code)
    frame = frame.groupby(["node_id", "status", "reason"], as_index=False)["count"].sum()
    return frame.sort_values(["node_id", "status", "count"], ascending=[True, True, False]
                             ).reset_index(drop=True)


def edge_counts(connection: duckdb.DuckDBPyConnection, flow: Flow) -> pd.DataFrame:
    """Per flow edge (source, branch, target): the tokens that took it.

    A token entering a step records the step it came from (`node_log.reason` of an `entered`
    row), so the count is exact for every edge; two edges between the same pair of steps
    (two branches to one target) are told apart by the branch the source logged.
    """
    taken = connection.execute(
        """
        SELECT reason AS source, node_id AS target, count(*) AS tokens FROM node_log
        WHERE flow_id = ? AND event = 'entered' AND reason IS NOT NULL GROUP BY ALL
        """,
        [flow.id],
    ).fetchdf()
    by_pair = {(r.source, r.target): int(r.tokens) for r in taken.itertuples()}
    by_branch = _branch_counts(connection, flow)
    rows = []
    for edge in flow.edges:
        siblings = [e for e in flow.edges if e.source == edge.source and e.target == edge.target]
        if len(siblings) > 1:
            count = by_branch.get((edge.source, edge.branch or "out"), 0)
        else:
            count = by_pair.get((edge.source, edge.target), 0)
        rows.append({"source": edge.source, "branch": edge.branch, "target": edge.target,
                     "tokens": count})
    return pd.DataFrame(rows, columns=["source", "branch", "target", "tokens"])


def _branch_counts(connection: duckdb.DuckDBPyConnection, flow: Flow) -> dict[tuple[str, str], int]:
    rows = connection.execute(
        "SELECT node_id, coalesce(branch, 'out'), count(*) FROM node_log WHERE flow_id = ? "
        "AND event = 'completed' GROUP BY ALL", [flow.id]).fetchall()
    return {(node_id, branch): int(count) for node_id, branch, count in rows}


# -- engagement and conversion -------------------------------------------------------------------
ENGAGEMENT_METRICS = {"email_open": "opens", "email_click": "clicks",
                      "conversion": "conversion events", "purchase": "conversion events",
                      "unsubscribe": "unsubscribes", "email_bounce": "bounces",
                      "bounce": "bounces"}
"""Engagement event names and the metric each counts as on the dashboards."""
METRICS = ("opens", "clicks", "conversion events", "unsubscribes", "bounces")


MESSAGE_ENGAGEMENT = ("email_open", "email_click", "email_bounce", "bounce")
"""Events that answer a message: a real one counts when it names one of the flow's messages
or follows the first message the flow sent the contact."""


def _flow_events_sql(names: tuple[str, ...]) -> str:
    """Engagement events of a flow ($flow) with their origin, as a query.

    Simulated: `source = 'simulation:<flow>'`. Real (any source not `simulation:`): an event
    whose id starts with one of the flow's idempotency keys (`<flow>:...`, how tracking links
    and the simulator name them) or whose properties name the flow; else an answer to a
    message after the flow's first message to the contact, or another event (conversion,
    unsubscribe) after the contact entered the flow.
    """
    placeholders = ", ".join(f"'{name}'" for name in names)  # our own constants
    answers = ", ".join(f"'{name}'" for name in MESSAGE_ENGAGEMENT)
    return f"""
        WITH since AS (SELECT contact_id, min(entered_at) AS since FROM enrollments
                       WHERE flow_id = $flow GROUP BY contact_id),
             first_sent AS (SELECT contact_id, min(sent_at) AS first_sent FROM messages
                            WHERE flow_id = $flow GROUP BY contact_id)
        SELECT e.event_id, e.contact_id, e.name, e.ts,
               CASE WHEN e.source = 'simulation:' || $flow THEN 'simulated' ELSE 'real' END
                   AS origin
        FROM events e LEFT JOIN since s USING (contact_id) LEFT JOIN first_sent f
             USING (contact_id)
        WHERE e.name IN ({placeholders})
          AND (e.source = 'simulation:' || $flow
               OR (NOT starts_with(coalesce(e.source, ''), 'simulation:')
                   AND (starts_with(coalesce(e.event_id, ''), $flow || ':')
                        OR json_extract_string(e.properties, '$.flow_id') = $flow
                        OR CASE WHEN e.name IN ({answers}) THEN e.ts > f.first_sent
                                ELSE e.ts >= s.since END)))
    """


def engagement_counts(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Engagement events of the flow per metric and origin (rows METRICS, columns real,
    simulated, total)."""
    rows = connection.execute(
        f"SELECT name, origin, count(*) FROM ({_flow_events_sql(ENGAGEMENT)}) GROUP BY ALL",
        {"flow": flow_id},
    ).fetchall()
    frame = pd.DataFrame(0, index=list(METRICS), columns=[*ORIGINS, "total"])
    for name, origin, count in rows:
        frame.loc[ENGAGEMENT_METRICS[name], origin] += int(count)
    frame["total"] = frame["real"] + frame["simulated"]
    return frame


def engagement_totals(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, int]:
    """Totals of `engagement_counts` by dashboard key (opens, clicks, conversion_events,
    unsubscribes, bounces), real and simulated together."""
    totals = engagement_counts(connection, flow_id)["total"]
    return {metric.replace(" ", "_"): int(totals[metric]) for metric in METRICS}


def conversion_summary(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, int]:
    """`converted` contacts (each once: the goal, or a conversion event after entering),
    `goal_contacts` (reached the goal) and `conversion_events` (events, counted apart)."""
    row = connection.execute(
        f"""
        WITH conv AS (SELECT * FROM ({_flow_events_sql(("conversion", "purchase"))})),
        goal AS (SELECT DISTINCT contact_id FROM enrollments
                 WHERE flow_id = $flow AND status = 'converted')
        SELECT (SELECT count(*) FROM (SELECT contact_id FROM goal UNION
                SELECT c.contact_id FROM conv c
                WHERE c.contact_id IN (SELECT contact_id FROM enrollments
                                       WHERE flow_id = $flow))),
               (SELECT count(*) FROM goal), (SELECT count(*) FROM conv)
        """,
        {"flow": flow_id},
    ).fetchone()
    converted, goal, events = row or (0, 0, 0)
    return {"converted": int(converted), "goal_contacts": int(goal),
            "conversion_events": int(events)}


def enrollment_summary(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, int]:
    """Enrollments by status (`enrolled` = active + completed + exited_goal) and the distinct
    contacts among them."""
    rows = dict(connection.execute(
        "SELECT status, count(*) FROM enrollments WHERE flow_id = ? GROUP BY status", [flow_id]
    ).fetchall())
    contacts = connection.execute(
        "SELECT count(DISTINCT contact_id) FROM enrollments WHERE flow_id = ?", [flow_id]
    ).fetchone()
    return {"enrolled": int(sum(rows.values())), "active": int(rows.get("active", 0)),
            "completed": int(rows.get("completed", 0)),
            "exited_goal": int(rows.get("converted", 0)),
            "enrolled_contacts": int(contacts[0]) if contacts else 0}


def _unique_rates(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, int]:
    """Contacts reached by an openable message, and those of them who opened / clicked."""
    row = connection.execute(
        f"""
        WITH reached AS (SELECT DISTINCT contact_id FROM messages
                         WHERE flow_id = $flow AND channel IN ('email', 'web_push')),
             engaged AS (SELECT * FROM ({_flow_events_sql(("email_open", "email_click"))}))
        SELECT (SELECT count(*) FROM reached),
               (SELECT count(DISTINCT contact_id) FROM engaged WHERE name = 'email_open'
                AND contact_id IN (SELECT contact_id FROM reached)),
               (SELECT count(DISTINCT contact_id) FROM engaged WHERE name = 'email_click'
                AND contact_id IN (SELECT contact_id FROM reached))
        """,
        {"flow": flow_id},
    ).fetchone()
    reached, opened, clicked = row or (0, 0, 0)
    return {"reached": int(reached), "opened_contacts": int(opened),
            "clicked_contacts": int(clicked)}


def messages_by_node(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Outbox outcomes per node and channel (sent, suppressed, skipped, failed, dead,
    pending), for any outbox row, message step or not."""
    return connection.execute(
        """
        SELECT node_id, channel,
               count(*) FILTER (status = 'sent') AS sent,
               count(*) FILTER (status = 'suppressed') AS suppressed,
               count(*) FILTER (status = 'skipped') AS skipped,
               count(*) FILTER (status = 'failed') AS failed,
               count(*) FILTER (status = 'dead') AS dead,
               count(*) FILTER (status IN ('pending', 'sending')) AS pending
        FROM outbox_all WHERE flow_id = ? GROUP BY ALL ORDER BY node_id, channel
        """,
        [flow_id],
    ).fetchdf()


def messages_by_channel(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, int]:
    """Sent messages per channel, every channel present (0 when unused)."""
    rows = dict(connection.execute(
        "SELECT channel, count(*) FROM messages WHERE flow_id = ? GROUP BY channel", [flow_id]
    ).fetchall())
    return {channel: int(rows.get(channel, 0)) for channel in CHANNELS}


def timeline(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Per day (every day of the range, zeros included): messages sent per channel and
    engagement per metric (columns day, series, count)."""
    activity = daily_activity(connection, flow_id)
    frame = activity.assign(series=activity["metric"].where(activity["metric"] != "sent",
                                                             activity["channel"]))
    frame = frame.groupby(["day", "series"], as_index=False)["count"].sum()
    return frame.sort_values(["day", "series"]).reset_index(drop=True)


def summary(connection: duckdb.DuckDBPyConnection, flow: Flow,
            messages: pd.DataFrame | None = None) -> dict[str, Any]:
    """The headline numbers of a run in the shared vocabulary (simulation result, CLI JSON,
    Experiments); every key is defined in the module docstring.

    `converted_contacts` repeats `converted` (the name notebooks and sweeps use); `conversions`
    repeats `conversion_events`. `messages`: this store's `message_counts`, if already read."""
    enrolled = enrollment_summary(connection, flow.id)
    messages = message_counts(connection, flow) if messages is None else messages
    engagement = engagement_totals(connection, flow.id)
    conversion = conversion_summary(connection, flow.id)
    rates = _unique_rates(connection, flow.id)
    outcome = {column: int(messages[column].sum()) for column in MESSAGE_OUTCOMES}
    sent = sum(messages_by_channel(connection, flow.id).values())
    return {
        **enrolled, **conversion, "converted_contacts": conversion["converted"],
        "messages_sent": sent, **{k: v for k, v in outcome.items() if k != "sent"},
        **engagement, "conversions": engagement["conversion_events"],
        "open_rate": share(rates["opened_contacts"], rates["reached"]),
        "click_rate": share(rates["clicked_contacts"], rates["reached"]),
        "conversion_rate": share(conversion["converted"], enrolled["enrolled_contacts"]),
    }


def where_is(connection: duckdb.DuckDBPyConnection, flow_id: str, contact_id: str
             ) -> dict[str, pd.DataFrame]:
    """Who-is-where for one contact: enrollments, path (node_log), messages, current tokens."""
    def query(sql: str) -> pd.DataFrame:
        return connection.execute(sql, [flow_id, contact_id]).fetchdf()

    return {
        "enrollments": query("SELECT enrollment_id, version, status, entered_at, exited_at, "
                             "exit_reason FROM enrollments WHERE flow_id = ? AND contact_id = ? "
                             "ORDER BY entered_at"),
        "path": query("SELECT ts, node_id, event, branch, reason FROM node_log "
                      "WHERE flow_id = ? AND contact_id = ? ORDER BY ts, event DESC"),
        "messages": query("SELECT sent_at, node_id, channel, recipient, subject, body "
                          "FROM messages WHERE flow_id = ? AND contact_id = ? ORDER BY sent_at"),
        "waiting": query("SELECT node_id, wake_at, iteration FROM tokens "
                         "WHERE flow_id = ? AND contact_id = ?"),
    }


def errors(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Failed and dead-lettered side effects, newest first."""
    return connection.execute(
        "SELECT created_at, node_id, contact_id, channel, status, attempts, error FROM outbox_all "
        "WHERE flow_id = ? AND status IN ('failed', 'dead') ORDER BY created_at DESC LIMIT 500",
        [flow_id],
    ).fetchdf()


LIVE_WINDOW = timedelta(minutes=2)
"""A flow whose last tick finished this recently counts as running (the monitor refreshes)."""


def kpis(connection: duckdb.DuckDBPyConnection, flow_id: str, flow: Flow | None = None
         ) -> dict[str, Any]:
    """The Monitor's headline numbers, in the vocabulary of `summary`: enrollments, converted
    contacts, messages, engagement (total, and `real_*` / `simulated_*` apart) and rates of
    unique contacts (None when there is nothing to divide by)."""
    per_channel = messages_by_channel(connection, flow_id)
    engagement = engagement_counts(connection, flow_id)
    enrolled = enrollment_summary(connection, flow_id)
    conversion = conversion_summary(connection, flow_id)
    rates = _unique_rates(connection, flow_id)
    split = {f"{origin}_{metric.replace(' ', '_')}": int(engagement.loc[metric, origin])
             for origin in ORIGINS for metric in METRICS}
    totals = {metric.replace(" ", "_"): int(engagement.loc[metric, "total"])
              for metric in METRICS}
    return {**enrolled, **conversion, "messages": sum(per_channel.values()), **totals, **split,
            **rates,
            "open_rate": share(rates["opened_contacts"], rates["reached"]),
            "click_rate": share(rates["clicked_contacts"], rates["reached"]),
            "conversion_rate": share(conversion["converted"], enrolled["enrolled_contacts"])}


def activity_range(connection: duckdb.DuckDBPyConnection, flow_id: str
                   ) -> tuple[date, date] | None:
    """The page's one date range: first to last day with an enrollment, a message or an
    engagement event of the flow (None when nothing happened yet)."""
    row = connection.execute(
        f"""
        SELECT min(day), max(day) FROM (
            SELECT entered_at AS day FROM enrollments WHERE flow_id = $flow
            UNION ALL SELECT sent_at FROM messages WHERE flow_id = $flow
            UNION ALL SELECT ts FROM ({_flow_events_sql(ENGAGEMENT)}))
        """,
        {"flow": flow_id},
    ).fetchone()
    if not row or row[0] is None:
        return None
    return row[0].date(), row[1].date()


def daily_activity(connection: duckdb.DuckDBPyConnection, flow_id: str,
                   days: tuple[date, date] | None = None) -> pd.DataFrame:
    """Per day, channel and origin: messages sent and the engagement of the flow (long format).

    Columns `day, channel, metric, origin, count`; metric is `sent` (origin `sent`) or a value
    of ENGAGEMENT_METRICS (origin `real` or `simulated`). Every day of `days` (default
    `activity_range`) is present for every series, with 0 on days without activity. An
    engagement event is attributed to the channel of the message whose idempotency key starts
    its id (how the simulator and tracking links name them), else to channel `other`.
    """
    days = days or activity_range(connection, flow_id)
    frame = connection.execute(
        f"""
        SELECT date_trunc('day', sent_at) AS day, channel, 'sent' AS metric, 'sent' AS origin,
               count(*) AS count
        FROM messages WHERE flow_id = $flow GROUP BY ALL
        UNION ALL
        SELECT date_trunc('day', e.ts), coalesce(m.channel, 'other'), e.name, e.origin, count(*)
        FROM ({_flow_events_sql(ENGAGEMENT)}) e
        LEFT JOIN (SELECT idempotency_key, channel FROM messages WHERE flow_id = $flow) m
          -- an equality on one column each side, so DuckDB hash-joins (not a nested loop)
          ON m.idempotency_key = left(e.event_id, length(e.event_id) - length(e.name) - 1)
        GROUP BY ALL
        """,
        {"flow": flow_id},
    ).fetchdf()
    columns = ["day", "channel", "metric", "origin", "count"]
    if frame.empty or days is None:
        return pd.DataFrame(columns=columns).astype({"count": "int64"})
    frame["metric"] = frame["metric"].map(lambda name: ENGAGEMENT_METRICS.get(name, name))
    frame["day"] = pd.to_datetime(frame["day"])
    frame = frame.groupby(columns[:-1], as_index=False)["count"].sum()
    return _every_day(frame, days)


def _every_day(frame: pd.DataFrame, days: tuple[date, date]) -> pd.DataFrame:
    """`frame` with a row (count 0) for every day of `days` and every series it has."""
    calendar = pd.date_range(pd.Timestamp(days[0]), pd.Timestamp(days[1]), freq="D")
    series = frame[["channel", "metric", "origin"]].drop_duplicates()
    grid = series.merge(pd.DataFrame({"day": calendar}), how="cross")
    full = grid.merge(frame, on=["day", "channel", "metric", "origin"], how="left")
    full["count"] = full["count"].fillna(0).astype("int64")
    full = full[["day", "channel", "metric", "origin", "count"]]
    return full.sort_values(["day", "channel", "metric", "origin"]).reset_index(drop=True)


def find_contacts(connection: duckdb.DuckDBPyConnection, flow_id: str, text: str,
                  limit: int = 20) -> pd.DataFrame:
    """Contacts whose id or email contains `text` (case-insensitive): an exact id first, then
    contacts enrolled in the flow.

    Columns `contact_id, email, status, entered_at` (status of the latest enrollment in the
    flow, empty when the contact never entered it).
    """
    has_email = "email" in contact_columns(connection)
    email = "c.email" if has_email else "CAST(NULL AS VARCHAR)"
    needle = text.strip().lower()
    return connection.execute(
        f"""
        SELECT c.contact_id, {email} AS email, e.status, e.entered_at
        FROM contacts c LEFT JOIN (
            SELECT contact_id, arg_max(status, entered_at) AS status,
                   max(entered_at) AS entered_at
            FROM enrollments WHERE flow_id = ? GROUP BY contact_id) e USING (contact_id)
        WHERE contains(lower(c.contact_id), ?) OR contains(lower(coalesce({email}, '')), ?)
        ORDER BY lower(c.contact_id) <> ?, e.status IS NULL, c.contact_id
        LIMIT ?
        """,
        [flow_id, needle, needle, needle, limit],
    ).fetchdf()


def error_summary(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Failed and dead-lettered side effects grouped by node, channel, status and error."""
    return connection.execute(
        "SELECT node_id, channel, status, coalesce(error, '') AS error, count(*) AS count, "
        "max(created_at) AS last_seen FROM outbox_all "
        "WHERE flow_id = ? AND status IN ('failed', 'dead') GROUP BY ALL "
        "ORDER BY count DESC, node_id",
        [flow_id],
    ).fetchdf()


def run_status(connection: duckdb.DuckDBPyConnection, flow_id: str,
               now: datetime | None = None) -> dict[str, object]:
    """When the flow last ran: `last_tick` (flow time), `finished_at` (wall clock, UTC),
    `ticks`, `waiting` tokens and `live` (a tick finished within LIVE_WINDOW of `now`)."""
    row = connection.execute(
        "SELECT max(tick_time), max(finished_at), count(DISTINCT tick_time), "
        "(SELECT count(*) FROM tokens WHERE flow_id = $1) FROM runs WHERE flow_id = $1",
        [flow_id],
    ).fetchone()
    last_tick, finished_at, ticks, waiting = row if row else (None, None, 0, 0)
    return {"last_tick": last_tick, "finished_at": finished_at, "ticks": int(ticks or 0),
            "waiting": int(waiting or 0), "live": is_live(finished_at, now)}


def last_runs(connection: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """When each flow that ran last finished a tick (wall clock, UTC), most recent first."""
    rows = connection.execute(
        "SELECT flow_id, max(finished_at) AS finished FROM runs GROUP BY flow_id "
        "ORDER BY finished DESC, flow_id"
    ).fetchall()
    return {flow_id: finished for flow_id, finished in rows}


def is_live(finished_at: datetime | None, now: datetime | None = None) -> bool:
    """Whether a tick that finished at `finished_at` means the flow is running now."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    return finished_at is not None and now - finished_at <= LIVE_WINDOW


def store_counts(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """How much data the store holds: contacts, events, enrollments, messages."""
    row = connection.execute(
        "SELECT (SELECT count(*) FROM contacts), (SELECT count(*) FROM events), "
        "(SELECT count(*) FROM enrollments), (SELECT count(*) FROM messages)"
    ).fetchone()
    names = ("contacts", "events", "enrollments", "messages")
    return {name: int(value) for name, value in zip(names, row or (0, 0, 0, 0), strict=True)}


def events_by_name(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Events per name with their first and last time, most frequent first."""
    return connection.execute(
        "SELECT name, count(*) AS count, min(ts) AS first, max(ts) AS last FROM events "
        "GROUP BY name ORDER BY count DESC, name"
    ).fetchdf()


# -- the live service and contacts -------------------------------------------------------------
INTAKE_WINDOW = timedelta(minutes=5)
"""Events loaded over this window give the Monitor's intake rate."""


def _tables(connection: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()}


def service_health(connection: duckdb.DuckDBPyConnection, flow_id: str,
                   now: datetime | None = None) -> dict[str, Any]:
    """What the Monitor says about the live side: the flow's lifecycle `state` (draft when
    never changed), `last_tick` / `last_finished`, `queue` (outbox rows not finished),
    `dead_letters`, and `intake_per_minute` (events loaded from the spool over INTAKE_WINDOW;
    None when this store never loaded a spool file)."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    tables = _tables(connection)
    state, changed_at, changed_by = "draft", None, None
    if "flow_lifecycle" in tables:
        row = connection.execute(
            "SELECT state, changed_at, changed_by FROM flow_lifecycle WHERE flow_id = ? "
            "ORDER BY changed_at DESC, rowid DESC LIMIT 1", [flow_id]).fetchone()
        if row:
            state, changed_at, changed_by = row
    ticks = connection.execute(
        "SELECT max(tick_time), max(finished_at) FROM runs WHERE flow_id = ?", [flow_id]
    ).fetchone() or (None, None)
    queue = connection.execute(
        "SELECT count(*) FILTER (status IN ('pending', 'sending')), "
        "count(*) FILTER (status = 'dead') FROM outbox_all WHERE flow_id = ?", [flow_id]
    ).fetchone() or (0, 0)
    intake = None
    if "spool_files" in tables:
        row = connection.execute(
            "SELECT count(*), coalesce(sum(events) FILTER (loaded_at >= ?), 0) FROM spool_files",
            [now - INTAKE_WINDOW]).fetchone()
        if row and row[0]:
            intake = float(row[1]) / (INTAKE_WINDOW.total_seconds() / 60)
    return {"state": str(state), "changed_at": changed_at, "changed_by": changed_by,
            "last_tick": ticks[0], "last_finished": ticks[1], "queue": int(queue[0] or 0),
            "dead_letters": int(queue[1] or 0), "intake_per_minute": intake}


def waiting_at(connection: duckdb.DuckDBPyConnection, flow_id: str, node_id: str,
               limit: int = 200) -> pd.DataFrame:
    """The contacts waiting at one step now, the longest waiting first: contact_id, email,
    arrived_at, wake_at (their number in total is the step's `waiting`)."""
    email = "c.email" if "email" in contact_columns(connection) else "CAST(NULL AS VARCHAR)"
    return connection.execute(
        f"""
        SELECT t.contact_id, {email} AS email, t.arrived_at, t.wake_at
        FROM tokens t LEFT JOIN contacts c USING (contact_id)
        WHERE t.flow_id = ? AND t.node_id = ? ORDER BY t.arrived_at, t.contact_id LIMIT ?
        """,
        [flow_id, node_id, limit],
    ).fetchdf()


def contact_profile(connection: duckdb.DuckDBPyConnection, contact_id: str
                    ) -> dict[str, Any]:
    """One contact across the workspace: `attributes` (name -> value, empty ones left out),
    `consent` (channel -> yes/no, plus unsubscribed / do-not-contact), `flows` (enrollments),
    `messages` (every outbox row with its status, reason and the opens/clicks it drew)."""
    frame = connection.execute("SELECT * FROM contacts WHERE contact_id = ?",
                               [contact_id]).fetchdf()
    if frame.empty:
        return {"attributes": {}, "consent": {}, "flows": pd.DataFrame(),
                "messages": pd.DataFrame()}
    record = frame.iloc[0].to_dict()
    consent_keys = ("email_consent", "sms_consent", "push_consent", "unsubscribed",
                    "do_not_contact")
    consent = {key: bool(record[key]) for key in consent_keys
               if key in record and not pd.isna(record[key])}
    attributes = {key: value for key, value in record.items()
                  if key not in consent_keys and key != "contact_id" and value is not None
                  and not (isinstance(value, float) and pd.isna(value)) and value != ""}
    flows = connection.execute(
        "SELECT flow_id, version, status, entered_at, exited_at, exit_reason FROM enrollments "
        "WHERE contact_id = ? ORDER BY entered_at", [contact_id]).fetchdf()
    messages = connection.execute(
        f"""
        SELECT o.created_at, o.flow_id, o.node_id, o.channel, o.subject, o.status,
               {_outbox_reason_sql(connection)} AS reason, o.sent_at,
               (SELECT count(*) FROM events e WHERE e.contact_id = o.contact_id
                  AND e.name = 'email_open' AND starts_with(e.event_id, o.idempotency_key))
                   AS opens,
               (SELECT count(*) FROM events e WHERE e.contact_id = o.contact_id
                  AND e.name = 'email_click' AND starts_with(e.event_id, o.idempotency_key))
                   AS clicks
        FROM outbox_all o WHERE o.contact_id = ? ORDER BY o.created_at, o.node_id
        """,
        [contact_id],
    ).fetchdf()
    if not messages.empty:
        messages["reason"] = [None if status in ("sent", "pending") else reason_code(reason)
                              for status, reason in zip(messages["status"], messages["reason"],
                                                        strict=True)]
    return {"attributes": attributes, "consent": consent, "flows": flows,
            "messages": messages}


# -- figures --------------------------------------------------------------------------------
def funnel_figure(table: pd.DataFrame, title: str = "Contacts per node") -> go.Figure:
    colors = [CATEGORY_COLORS[nodes.Category(c)] for c in table["category"]]
    figure = go.Figure(go.Bar(x=table["entered"], y=table["label"], orientation="h",
                              marker_color=colors, text=table["entered"],
                              customdata=table[["completed", "waiting", "converted"]],
                              hovertemplate="%{y}: %{x} entered<br>%{customdata[0]} completed, "
                              "%{customdata[1]} waiting, %{customdata[2]} converted"
                              "<extra></extra>"))
    figure.update_layout(title=title, yaxis={"autorange": "reversed"}, height=60 + 28 * len(table),
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, template="plotly_white")
    return figure


def timeline_figure(frame: pd.DataFrame, title: str = "Messages and engagement per day"
                    ) -> go.Figure:
    """Daily series of `timeline`: channels solid in their colour, engagement dotted."""
    figure = go.Figure()
    for series, part in frame.groupby("series"):
        name = str(series)
        metric = name if name in METRICS else None
        line = ({"color": METRIC_COLORS[name], "dash": "dot"} if metric
                else {"color": CHANNEL_COLORS.get(name)})
        figure.add_trace(go.Scatter(x=part["day"], y=part["count"], mode="lines+markers",
                                    name=name if metric else f"{name} sent", line=line))
    figure.update_layout(title=title, template="plotly_white", height=360,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def _day_axis(figure: go.Figure, activity: pd.DataFrame) -> None:
    """Every daily chart of a page spans the same days (those of `activity`), one tick a day."""
    if activity.empty:
        return
    first, last = activity["day"].min(), activity["day"].max()
    half = pd.Timedelta(hours=12)
    figure.update_xaxes(range=[first - half, last + half], dtick=86_400_000,
                        tickformat="%b %d")


def messages_figure(activity: pd.DataFrame, title: str = "Messages sent per day") -> go.Figure:
    """Stacked daily bars of sent messages, one colour per channel (days without sends: 0)."""
    sent = activity[activity["metric"] == "sent"]
    figure = go.Figure()
    for channel, part in sent.groupby("channel"):
        figure.add_trace(go.Bar(x=part["day"], y=part["count"], name=str(channel),
                                marker_color=CHANNEL_COLORS.get(str(channel))))
    figure.update_layout(title=title, barmode="stack", template="plotly_white", height=340,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title="channel")
    _day_axis(figure, activity)
    return figure


def engagement_figure(activity: pd.DataFrame, channel: str | None = None,
                      title: str = "Engagement per day") -> go.Figure:
    """Daily opens, clicks, conversion events, unsubscribes and bounces (of one channel, or
    all): real engagement solid, the simulation's dotted and named as simulated."""
    engaged = activity[activity["metric"] != "sent"]
    if channel is not None:
        engaged = engaged[engaged["channel"] == channel]
    daily = engaged.groupby(["day", "metric", "origin"], as_index=False)["count"].sum()
    figure = go.Figure()
    for origin in ORIGINS:
        for metric in METRICS:
            part = daily[(daily["metric"] == metric) & (daily["origin"] == origin)]
            if part.empty:
                continue
            dash = None if origin == "real" else "dot"
            figure.add_trace(go.Scatter(
                x=part["day"], y=part["count"], mode="lines+markers",
                name=metric if origin == "real" else f"{metric} (simulated)",
                line={"color": METRIC_COLORS[metric], "dash": dash}))
    figure.update_layout(title=title, template="plotly_white", height=340,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    _day_axis(figure, activity)
    return figure
