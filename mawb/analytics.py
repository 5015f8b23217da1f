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

from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from mawb import nodes
from mawb.nodes.base import CATEGORY_COLORS

if TYPE_CHECKING:
    import duckdb

    from mawb.model import Flow

CHANNELS = ("email", "sms", "web_push", "social")
ENGAGEMENT = ("email_open", "email_click", "conversion", "purchase", "unsubscribe")
CHANNEL_COLORS = {"email": "#2563eb", "sms": "#16a34a", "web_push": "#d97706",
                  "social": "#7c3aed", "http": "#64748b", "crm": "#0f766e"}


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
        figure.add_trace(go.Scatter(x=part["day"], y=part["count"], mode="lines+markers",
                                    name=str(series),
                                    line={"color": CHANNEL_COLORS.get(str(series))}))
    figure.update_layout(title=title, template="plotly_white", height=360,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure
