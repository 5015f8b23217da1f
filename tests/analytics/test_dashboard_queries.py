"""The monitor's and data page's queries against a real simulated store.

Each query is checked against an independent count over the same tables (or a hand-made
change to the store), so a query that double counts, drops a channel or leaks user text into
SQL fails here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pytest

import mawb
from mawb import analytics
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from pathlib import Path

FLOW_ID = "lead_welcome_v1"


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, *args: object) -> int:
    row = connection.execute(sql, list(args)).fetchone()
    assert row is not None
    return int(row[0])


def test_kpis_agree_with_the_tables(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        kpis = analytics.kpis(connection, FLOW_ID)
        enrolled = scalar(connection, "SELECT count(*) FROM enrollments WHERE flow_id = ?",
                          FLOW_ID)
        emails = scalar(connection, "SELECT count(*) FROM messages WHERE flow_id = ? "
                        "AND channel = 'email'", FLOW_ID)
        opens = scalar(connection, "SELECT count(*) FROM events WHERE name = 'email_open' "
                       "AND source = ?", f"simulation:{FLOW_ID}")
        reached = scalar(connection, "SELECT count(DISTINCT contact_id) FROM messages "
                         "WHERE flow_id = ? AND channel = 'email'", FLOW_ID)
        opened = scalar(connection, "SELECT count(DISTINCT e.contact_id) FROM events e "
                        "WHERE e.name = 'email_open' AND e.source = ? AND e.contact_id IN "
                        "(SELECT contact_id FROM messages WHERE flow_id = ?)",
                        f"simulation:{FLOW_ID}", FLOW_ID)
    assert kpis["enrolled"] == enrolled > 0
    assert kpis["active"] + kpis["completed"] + kpis["exited_goal"] == enrolled
    assert kpis["messages"] == emails > 0  # the welcome flow sends email only
    assert kpis["opens"] == kpis["simulated_opens"] == opens
    assert kpis["real_opens"] == 0  # nothing but the simulation engaged here
    # rates are shares of unique contacts reached by an openable message
    assert kpis["open_rate"] == pytest.approx(opened / reached)
    assert 0 <= kpis["click_rate"] <= kpis["open_rate"] <= 1


def test_kpis_of_an_unknown_flow_have_no_rates(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        kpis = analytics.kpis(connection, "never_ran")
    assert kpis["enrolled"] == kpis["messages"] == kpis["converted"] == 0
    assert kpis["open_rate"] is None and kpis["click_rate"] is None  # a dash, not 0%


def test_daily_activity_counts_every_message_and_attributes_engagement(
        simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        activity = analytics.daily_activity(connection, FLOW_ID)
        sent = scalar(connection, "SELECT count(*) FROM messages WHERE flow_id = ?", FLOW_ID)
        engaged = scalar(connection, "SELECT count(*) FROM events WHERE source = ? AND name IN "
                         "('email_open', 'email_click', 'conversion', 'unsubscribe')",
                         f"simulation:{FLOW_ID}")
    assert list(activity.columns) == ["day", "channel", "metric", "origin", "count"]
    assert activity.loc[activity["metric"] == "sent", "count"].sum() == sent
    assert activity.loc[activity["metric"] != "sent", "count"].sum() == engaged
    assert set(activity["metric"]) <= {"sent", *analytics.METRICS}
    assert set(activity["origin"]) <= {"sent", "simulated"}
    # Simulated engagement is traced back to the email that caused it.
    assert set(activity["channel"]) == {"email"}
    assert not activity.duplicated(["day", "channel", "metric", "origin"]).any()


def test_activity_figures_have_one_trace_per_channel_and_metric(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        activity = analytics.daily_activity(connection, FLOW_ID)
    messages = analytics.messages_figure(activity)
    assert [trace.name for trace in messages.data] == ["email"]
    engagement = analytics.engagement_figure(activity)
    names = {trace.name for trace in engagement.data}
    assert "opens (simulated)" in names
    assert names <= {f"{metric} (simulated)" for metric in analytics.METRICS}
    assert analytics.engagement_figure(activity, channel="sms").data == ()
    # both charts span the same days
    assert messages.layout.xaxis.range == engagement.layout.xaxis.range


def test_find_contacts_by_id_or_email_exact_id_first(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        some = connection.execute(
            "SELECT c.contact_id, c.email FROM contacts c JOIN enrollments e USING (contact_id) "
            "WHERE e.flow_id = ? ORDER BY 1 LIMIT 1", [FLOW_ID]).fetchone()
        assert some is not None
        contact_id, email = some
        by_id = analytics.find_contacts(connection, FLOW_ID, contact_id.upper())
        by_email = analytics.find_contacts(connection, FLOW_ID, email.split("@")[0])
        prefix = analytics.find_contacts(connection, FLOW_ID, contact_id[:-1], limit=5)
    assert by_id.iloc[0]["contact_id"] == contact_id
    assert by_id.iloc[0]["status"] in {"active", "completed", "converted"}
    assert contact_id in set(by_email["contact_id"])
    assert len(prefix) <= 5


def test_find_contacts_treats_text_as_data_not_sql(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        for text in ("' OR 1=1 --", "%", "_", "\"; DROP TABLE contacts; --"):
            assert analytics.find_contacts(connection, FLOW_ID, text).empty
        assert analytics.store_counts(connection)["contacts"] == 120


def test_where_is_follows_the_search_to_the_path(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        found = analytics.find_contacts(connection, FLOW_ID, "c0")
        contact_id = found.iloc[0]["contact_id"]
        journey = analytics.where_is(connection, FLOW_ID, contact_id)
    path = journey["path"]
    assert "start" in set(path.loc[path["ts"] == path["ts"].min(), "node_id"])
    assert len(journey["messages"]) >= 1


def test_error_summary_groups_failures_and_dead_letters(writable_home: Path) -> None:
    with duckdb.connect(str(writable_home / "store.duckdb")) as connection:
        connection.execute(
            "INSERT INTO outbox (idempotency_key, flow_id, contact_id, node_id, channel, status, "
            "attempts, error, created_at) SELECT 'k' || i, ?, 'c' || i, 'welcome', 'email', "
            "CASE WHEN i < 3 THEN 'dead' ELSE 'failed' END, 5, 'SMTP 550 mailbox unavailable', "
            "TIMESTAMP '2026-11-02 10:00:00' FROM range(5) t(i)", [FLOW_ID])
    with WorkspaceReader(writable_home).read() as connection:
        summary = analytics.error_summary(connection, FLOW_ID)
        listed = analytics.errors(connection, FLOW_ID)
        funnel = analytics.funnel(connection, mawb.load_template(FLOW_ID))
    assert sorted(zip(summary["status"], summary["count"], strict=True)) == [("dead", 3),
                                                                             ("failed", 2)]
    assert set(summary["node_id"]) == {"welcome"}
    assert len(listed) == 5
    assert int(funnel.set_index("node_id").loc["welcome", "failed"]) == 5


def test_run_status_is_live_only_right_after_a_tick(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        status = analytics.run_status(connection, FLOW_ID)
        later = analytics.run_status(connection, FLOW_ID,
                                     now=status["finished_at"] + timedelta(minutes=10))
        never = analytics.run_status(connection, "never_ran")
    assert status["ticks"] > 0 and isinstance(status["last_tick"], datetime)
    assert status["live"] is True
    assert later["live"] is False
    assert never == {"last_tick": None, "finished_at": None, "ticks": 0, "waiting": 0,
                     "live": False}


def test_store_counts_and_events_by_name(simulated_home: Path) -> None:
    with WorkspaceReader(simulated_home).read() as connection:
        counts = analytics.store_counts(connection)
        by_name = analytics.events_by_name(connection)
        events = scalar(connection, "SELECT count(*) FROM events")
    assert counts["contacts"] == 120
    assert counts["events"] == events == by_name["count"].sum()
    assert counts["messages"] > 0 and counts["enrollments"] > 0
    assert list(by_name["count"]) == sorted(by_name["count"], reverse=True)
