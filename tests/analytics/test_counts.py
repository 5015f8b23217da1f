"""The counts vocabulary on a store the engine built: every figure adds up with its neighbours.

The flow below exercises each outcome a message step can have: consent suppressions (synthetic
contacts without consent), a frequency cap that skips, quiet hours that defer the last step
past the end of the run; a branch and a merge; a parallel split joined again (a merge that
receives two tokens per contact). Figures are checked against each other and against SQL
counts over the same tables, not against numbers copied from a run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from mawb import analytics
from mawb.data import synthetic_contacts
from mawb.engine import Workspace
from mawb.model import Flow, Settings
from mawb.simulate import simulate
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb


def counts_flow() -> Flow:
    flow = (Flow.new("counts", "Counts")
            .add("start", "time_based_trigger", audience="true", schedule="@once")
            .add("hello", "email_send", subject="Hi", body="Hello {{ first_name }}")
            .add("check", "if_condition", condition="engagement_score > 0.5")
            .add("text", "sms_send", body="Hi")
            .add("nudge", "email_send", subject="Nudge", body="x")
            .add("join", "merge_branches", mode="any")
            .add("split", "parallel_execution")
            .add("left", "data_update", increment={"score": 1})
            .add("right", "delay_action", hours=1)
            .add("both", "merge_branches", mode="all")
            .add("wait", "delay_action", hours=18)
            .add("after", "email_send", subject="After", body="y")
            .connect("start", "hello").connect("hello", "check")
            .connect("check", "text", "true").connect("check", "nudge", "false")
            .connect("text", "join").connect("nudge", "join").connect("join", "split")
            .connect("split", "left").connect("split", "right")
            .connect("left", "both").connect("right", "both")
            .connect("both", "wait").connect("wait", "after"))
    settings = Settings.model_validate({
        "frequency_cap": {"max_messages": 2, "per_days": 7, "mode": "skip"},
        "quiet_hours": {"start": "19:00", "end": "23:59"}})
    return flow.model_copy(update={"settings": settings})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Flow, dict]:
    home = tmp_path_factory.mktemp("counts") / "home"
    flow = counts_flow()
    result = simulate(flow, synthetic_contacts(200, seed=1), days=0.9, seed=0,
                      responses="model", progress=False, home=home)
    return home, flow, result.to_dict()


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, *args: object) -> int:
    row = connection.execute(sql, list(args)).fetchone()
    assert row is not None
    return int(row[0])


def test_step_counts_add_up_and_merges_count_contacts(run: tuple[Path, Flow, dict]) -> None:
    home, flow, _ = run
    with WorkspaceReader(home).read() as connection:
        steps = analytics.step_counts(connection, flow).set_index("node_id")
        tokens = scalar(connection, "SELECT count(*) FROM tokens WHERE flow_id = 'counts'")
    # entered = completed + joined + waiting + converted, at every step
    balance = steps["completed"] + steps["joined"] + steps["waiting"] + steps["converted"]
    assert (steps["entered"] == balance).all()
    assert steps["waiting"].sum() == tokens
    # the all-merge receives one token per branch of the split, and lets one contact through
    both = steps.loc["both"]
    assert both["entered"] == 2 * both["contacts"] > 0
    assert both["joined"] == both["contacts"]
    assert both["completed"] == both["contacts"]


def test_message_outcomes_add_up_to_entries(run: tuple[Path, Flow, dict]) -> None:
    home, flow, _ = run
    with WorkspaceReader(home).read() as connection:
        messages = analytics.message_counts(connection, flow).set_index("node_id")
        reasons = analytics.suppression_reasons(connection, flow.id)
        sent = scalar(connection, "SELECT count(*) FROM messages WHERE flow_id = 'counts'")
        rows = scalar(connection, "SELECT count(*) FROM outbox_all WHERE flow_id = 'counts' "
                      "AND channel IN ('email', 'sms')")
    outcomes = messages[list(analytics.MESSAGE_OUTCOMES)].sum(axis=1)
    assert (outcomes == messages["entered"]).all()
    assert (messages["unqueued"] == 0).all()
    assert messages["sent"].sum() == sent
    assert messages["entered"].sum() == rows
    # each kind of outcome really happens in this run
    assert messages["suppressed"].sum() > 0
    assert messages.loc["after", "skipped"] > 0
    assert messages.loc["after", "deferred"] > 0
    # reasons are codes and add up to suppressed + skipped per step
    assert set(reasons["reason"]) <= {*analytics.SUPPRESSION_REASONS, "other"}
    assert "other" not in set(reasons["reason"])
    per_step = reasons.groupby("node_id")["count"].sum()
    for node_id, row in messages.iterrows():
        assert per_step.get(node_id, 0) == row["suppressed"] + row["skipped"]


def test_edges_into_a_step_add_up_to_its_entries(run: tuple[Path, Flow, dict]) -> None:
    home, flow, _ = run
    with WorkspaceReader(home).read() as connection:
        edges = analytics.edge_counts(connection, flow)
        steps = analytics.step_counts(connection, flow).set_index("node_id")
    assert len(edges) == len(flow.edges)
    into = edges.groupby("target")["tokens"].sum()
    for node_id, entered in into.items():
        assert entered == steps.loc[node_id, "entered"]
    # out of the if: the two branches share the contacts between them
    out = edges[edges["source"] == "check"].set_index("branch")["tokens"]
    assert out["true"] + out["false"] == steps.loc["check", "completed"]
    assert out["true"] > 0 and out["false"] > 0


def test_conversion_is_once_per_contact_and_events_apart(run: tuple[Path, Flow, dict]) -> None:
    home, flow, _ = run
    with WorkspaceReader(home).read() as connection:
        summary = analytics.summary(connection, flow)
        converters = scalar(connection, "SELECT count(DISTINCT contact_id) FROM events "
                            "WHERE name = 'conversion' AND source = 'simulation:counts'")
        events = scalar(connection, "SELECT count(*) FROM events WHERE name = 'conversion' "
                        "AND source = 'simulation:counts'")
    assert summary["converted"] == converters == summary["converted_contacts"]
    assert summary["conversion_events"] == events >= converters
    assert summary["conversion_rate"] == pytest.approx(converters / summary["enrolled_contacts"])
    assert summary["active"] + summary["completed"] + summary["exited_goal"] == \
        summary["enrolled"]


def test_real_engagement_counts_and_is_shown_apart(run: tuple[Path, Flow, dict],
                                                   tmp_path: Path) -> None:
    import shutil

    home = shutil.copytree(run[0], tmp_path / "home")
    flow = run[1]
    with WorkspaceReader(home).read() as connection:
        before = analytics.kpis(connection, flow.id)
        contact, sent_at = connection.execute(
            "SELECT contact_id, sent_at FROM messages WHERE flow_id = 'counts' "
            "AND channel = 'email' ORDER BY contact_id LIMIT 1").fetchone()
    workspace = Workspace(home)
    later, earlier = sent_at + timedelta(minutes=5), sent_at - timedelta(days=1)
    # a real open (tracking link) and conversion; an open before the flow wrote to the contact
    # and one of another flow's simulation, neither of which is this flow's engagement
    with workspace.connection() as connection:
        connection.executemany(
            "INSERT INTO events VALUES (nextval('event_seq'), ?, ?, ?, ?, '{}', ?, NULL)",
            [("real-1", contact, "email_open", later, "link"),
             ("real-2", contact, "conversion", later, "api"),
             ("old-1", contact, "email_open", earlier, "import"),
             ("other-1", contact, "email_open", later, "simulation:other")])
    with WorkspaceReader(home).read() as connection:
        after = analytics.kpis(connection, flow.id)
        activity = analytics.daily_activity(connection, flow.id)
    assert after["real_opens"] == before["real_opens"] + 1
    assert after["opens"] == before["opens"] + 1
    assert after["simulated_opens"] == before["simulated_opens"]
    assert after["real_conversion_events"] == before["real_conversion_events"] + 1
    real = activity[(activity["origin"] == "real") & (activity["metric"] == "opens")]
    assert real["count"].sum() == after["real_opens"]


def test_daily_activity_has_every_day_and_rates_have_no_data_dash(
        run: tuple[Path, Flow, dict]) -> None:
    home, flow, _ = run
    with WorkspaceReader(home).read() as connection:
        activity = analytics.daily_activity(connection, flow.id)
        span = analytics.activity_range(connection, flow.id)
        empty = analytics.kpis(connection, "never_ran")
    assert span is not None
    days = (span[1] - span[0]).days + 1
    for _, part in activity.groupby(["channel", "metric", "origin"]):
        assert len(part) == days  # every series has every day, zeros included
    assert empty["open_rate"] is None and empty["conversion_rate"] is None
    assert analytics.percent(empty["open_rate"]) == analytics.DASH
    assert analytics.percent(0.0168) == "1.7%"


def test_the_cli_json_speaks_the_same_vocabulary(run: tuple[Path, Flow, dict]) -> None:
    home, flow, document = run
    with WorkspaceReader(home).read() as connection:
        messages = analytics.message_counts(connection, flow).set_index("node_id")
    assert document["message_steps"]["after"]["skipped"] == messages.loc["after", "skipped"]
    assert set(document["steps"]["both"]) == set(analytics.STEP_COLUMNS)
    assert sum(e["tokens"] for e in document["edges"] if e["target"] == "join") == \
        document["steps"]["join"]["entered"]
    assert document["summary"]["messages_sent"] == messages["sent"].sum()
