"""Analytics: DuckDB queries over a workspace store and the Plotly figures built on them.

The simulator's results, the monitor page and notebooks all read runs through these
functions, so a funnel means the same thing everywhere:

- entered: tokens that arrived at the node (a contact passing twice counts twice);
- completed: tokens that left it (joins at a merge excluded);
- waiting: tokens there now;
- failed: side effects of the node that failed or were dead-lettered;
- converted: contacts that met the flow goal while at the node.

Queries take an open DuckDB connection (read-only is enough) so callers decide how long they
hold the store.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from mawb import nodes
from mawb.engine.store import contact_columns
from mawb.nodes.base import CATEGORY_COLORS

if TYPE_CHECKING:
    import duckdb

    from mawb.model import Flow

CHANNELS = ("email", "sms", "web_push", "social")
ENGAGEMENT = ("email_open", "email_click", "conversion", "purchase", "unsubscribe")
CHANNEL_COLORS = {"email": "#2563eb", "sms": "#16a34a", "web_push": "#d97706",
                  "social": "#7c3aed", "http": "#64748b", "crm": "#0f766e",
                  "other": "#94a3b8"}
METRIC_COLORS = {"opens": "#2563eb", "clicks": "#0f766e", "conversions": "#16a34a",
                 "unsubscribes": "#dc2626"}


def funnel(connection: duckdb.DuckDBPyConnection, flow: Flow) -> pd.DataFrame:
    """Per node counts in flow order (see module docstring)."""
    counts = connection.execute(
        """
        WITH log AS (
            SELECT node_id,
                   count(*) FILTER (event = 'entered') AS entered,
                   count(*) FILTER (event = 'completed' AND coalesce(branch, '') <> 'joined')
                       AS completed,
                   count(*) FILTER (event = 'converted') AS converted
            FROM node_log WHERE flow_id = $1 GROUP BY node_id),
        waiting AS (SELECT node_id, count(*) AS waiting FROM tokens WHERE flow_id = $1
                    GROUP BY node_id),
        failed AS (SELECT node_id, count(*) AS failed FROM outbox WHERE flow_id = $1
                   AND status IN ('failed', 'dead') GROUP BY node_id)
        SELECT node_id, coalesce(entered, 0) AS entered, coalesce(completed, 0) AS completed,
               coalesce(waiting, 0) AS waiting, coalesce(failed, 0) AS failed,
               coalesce(converted, 0) AS converted
        FROM log FULL JOIN waiting USING (node_id) FULL JOIN failed USING (node_id)
        """,
        [flow.id],
    ).fetchdf().set_index("node_id")
    rows = []
    for node in flow.nodes:
        node_type = nodes.get(node.type)
        found = counts.loc[node.id] if node.id in counts.index else None
        row = {"node_id": node.id, "label": node.label or node_type.label, "type": node.type,
               "category": node_type.category.value}
        for column in ("entered", "completed", "waiting", "failed", "converted"):
            row[column] = int(found[column]) if found is not None else 0
        rows.append(row)
    return pd.DataFrame(rows)


def messages_by_node(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Outbox outcomes per node and channel: sent, suppressed, skipped, failed, pending."""
    return connection.execute(
        """
        SELECT node_id, channel,
               count(*) FILTER (status = 'sent') AS sent,
               count(*) FILTER (status = 'suppressed') AS suppressed,
               count(*) FILTER (status = 'skipped') AS skipped,
               count(*) FILTER (status IN ('failed', 'dead')) AS failed,
               count(*) FILTER (status = 'pending') AS pending
        FROM outbox WHERE flow_id = ? GROUP BY ALL ORDER BY node_id, channel
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
    """Per day: messages sent per channel and engagement events of the flow's contacts."""
    sent = connection.execute(
        """
        SELECT date_trunc('day', sent_at) AS day, channel AS series, count(*) AS count
        FROM messages WHERE flow_id = ? GROUP BY ALL
        """,
        [flow_id],
    ).fetchdf()
    engaged = connection.execute(
        f"""
        SELECT date_trunc('day', ts) AS day, name AS series, count(*) AS count
        FROM events WHERE name IN ({", ".join("?" for _ in ENGAGEMENT)})
          AND source = 'simulation:' || ? GROUP BY ALL
        """,
        [*ENGAGEMENT, flow_id],
    ).fetchdf()
    frame = pd.concat([sent, engaged], ignore_index=True)
    return frame.sort_values(["day", "series"]).reset_index(drop=True)


def enrollment_summary(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, int]:
    rows = dict(connection.execute(
        "SELECT status, count(*) FROM enrollments WHERE flow_id = ? GROUP BY status", [flow_id]
    ).fetchall())
    return {"enrolled": int(sum(rows.values())), "active": int(rows.get("active", 0)),
            "completed": int(rows.get("completed", 0)),
            "converted": int(rows.get("converted", 0))}


def engagement_totals(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, int]:
    rows = dict(connection.execute(
        "SELECT name, count(*) FROM events WHERE source = 'simulation:' || ? GROUP BY name",
        [flow_id],
    ).fetchall())
    return {"opens": int(rows.get("email_open", 0)), "clicks": int(rows.get("email_click", 0)),
            "conversions": int(rows.get("conversion", 0)),
            "unsubscribes": int(rows.get("unsubscribe", 0))}


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
        "SELECT created_at, node_id, contact_id, channel, status, attempts, error FROM outbox "
        "WHERE flow_id = ? AND status IN ('failed', 'dead') ORDER BY created_at DESC LIMIT 500",
        [flow_id],
    ).fetchdf()


ENGAGEMENT_METRICS = {"email_open": "opens", "email_click": "clicks", "conversion": "conversions",
                      "purchase": "conversions", "unsubscribe": "unsubscribes"}
"""Engagement event names and the metric each counts as on the dashboards."""
LIVE_WINDOW = timedelta(minutes=2)
"""A flow whose last tick finished this recently counts as running (the monitor refreshes)."""


def kpis(connection: duckdb.DuckDBPyConnection, flow_id: str) -> dict[str, float]:
    """The monitor's headline numbers: enrollments by status, messages, engagement and rates.

    Rates are per message that can be opened (email and web push); 0 when nothing was sent.
    """
    per_channel = messages_by_channel(connection, flow_id)
    engagement = engagement_totals(connection, flow_id)
    openable = per_channel["email"] + per_channel["web_push"]
    return {**enrollment_summary(connection, flow_id),
            "messages": sum(per_channel.values()), **engagement,
            "open_rate": engagement["opens"] / openable if openable else 0.0,
            "click_rate": engagement["clicks"] / openable if openable else 0.0}


def daily_activity(connection: duckdb.DuckDBPyConnection, flow_id: str) -> pd.DataFrame:
    """Per day and channel: messages sent and the engagement they drew (long format).

    Columns `day, channel, metric, count`; metric is `sent` or a value of ENGAGEMENT_METRICS.
    An engagement event is attributed to the message whose idempotency key starts its id
    (how the simulator and tracking links name them), else to channel `other`.
    """
    names = list(ENGAGEMENT_METRICS)
    placeholders = ", ".join("?" for _ in names)
    frame = connection.execute(
        f"""
        SELECT date_trunc('day', sent_at) AS day, channel, 'sent' AS metric, count(*) AS count
        FROM messages WHERE flow_id = ? GROUP BY ALL
        UNION ALL
        SELECT date_trunc('day', e.ts), coalesce(m.channel, 'other'), e.name, count(*)
        FROM events e LEFT JOIN (SELECT idempotency_key, channel FROM messages
                                 WHERE flow_id = ?) m
          -- an equality on one column each side, so DuckDB hash-joins (not a nested loop)
          ON m.idempotency_key = left(e.event_id, length(e.event_id) - length(e.name) - 1)
        WHERE e.source = 'simulation:' || ? AND e.name IN ({placeholders}) GROUP BY ALL
        """,
        [flow_id, flow_id, flow_id, *names],
    ).fetchdf()
    frame["metric"] = frame["metric"].map(lambda name: ENGAGEMENT_METRICS.get(name, name))
    frame = frame.groupby(["day", "channel", "metric"], as_index=False)["count"].sum()
    return frame.sort_values(["day", "channel", "metric"]).reset_index(drop=True)


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
        "max(created_at) AS last_seen FROM outbox "
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
    figure = go.Figure()
    for series, part in frame.groupby("series"):
        name = str(series)
        metric = ENGAGEMENT_METRICS.get(name)
        # Channels are solid lines in their colour; engagement dashed in its metric's colour.
        line = ({"color": METRIC_COLORS[metric], "dash": "dot"} if metric
                else {"color": CHANNEL_COLORS.get(name)})
        figure.add_trace(go.Scatter(x=part["day"], y=part["count"], mode="lines+markers",
                                    name=f"{metric} ({name})" if metric else f"{name} sent",
                                    line=line))
    figure.update_layout(title=title, template="plotly_white", height=360,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def messages_figure(activity: pd.DataFrame, title: str = "Messages sent per day") -> go.Figure:
    """Stacked daily bars of sent messages, one colour per channel."""
    sent = activity[activity["metric"] == "sent"]
    figure = go.Figure()
    for channel, part in sent.groupby("channel"):
        figure.add_trace(go.Bar(x=part["day"], y=part["count"], name=str(channel),
                                marker_color=CHANNEL_COLORS.get(str(channel))))
    figure.update_layout(title=title, barmode="stack", template="plotly_white", height=340,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title="channel")
    return figure


def engagement_figure(activity: pd.DataFrame, channel: str | None = None,
                      title: str = "Engagement per day") -> go.Figure:
    """Daily opens, clicks, conversions and unsubscribes (of one channel, or all)."""
    engaged = activity[activity["metric"] != "sent"]
    if channel is not None:
        engaged = engaged[engaged["channel"] == channel]
    daily = engaged.groupby(["day", "metric"], as_index=False)["count"].sum()
    figure = go.Figure()
    for metric in ("opens", "clicks", "conversions", "unsubscribes"):
        part = daily[daily["metric"] == metric]
        if not part.empty:
            figure.add_trace(go.Scatter(x=part["day"], y=part["count"], name=metric,
                                        mode="lines+markers",
                                        line={"color": METRIC_COLORS[metric]}))
    figure.update_layout(title=title, template="plotly_white", height=340,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure
