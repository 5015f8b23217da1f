"""The Monitor page on a workspace with a simulated run, and on empty ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pytest
from streamlit.testing.v1 import AppTest
from ui_workspace import FLOW_ID, canvases, copy_of_demo, demo_home

import mawb
from mawb import analytics
from mawb.ui import monitor_view
from mawb.ui.reader import WorkspaceReader
from mawb.versions import VersionStore

if TYPE_CHECKING:
    from pathlib import Path

PAGE = "pages/3_Monitor.py"
TIMEOUT = 120


@pytest.fixture
def seeded(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = demo_home(tmp_path_factory.getbasetemp())
    monkeypatch.setenv("MAWB_HOME", str(home))
    return home


def monitor_app() -> AppTest:
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / PAGE
    return AppTest.from_file(str(page), default_timeout=TIMEOUT).run()


def frames(app: AppTest, *columns: str) -> list:
    """The dataframes on the page that have all of `columns`."""
    return [f.value for f in app.dataframe if set(columns) <= set(f.value.columns)]


def sql(home: Path, query: str, *args: object) -> int:
    with WorkspaceReader(home).read() as connection:
        row = connection.execute(query, list(args)).fetchone()
    assert row is not None
    return int(row[0])


def test_tiles_badges_edges_and_tables_add_up_to_the_store(seeded: Path) -> None:
    app = monitor_app()
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    enrolled = sql(seeded, "SELECT count(*) FROM enrollments WHERE flow_id = ?", FLOW_ID)
    sent = sql(seeded, "SELECT count(*) FROM messages WHERE flow_id = ?", FLOW_ID)
    active = sql(seeded, "SELECT count(*) FROM enrollments WHERE flow_id = ? AND "
                 "status = 'active'", FLOW_ID)
    converted = sql(seeded, "SELECT count(DISTINCT contact_id) FROM events WHERE name IN "
                    "('conversion', 'purchase') AND source = ?", f"simulation:{FLOW_ID}")
    assert metrics["Enrolled"] == f"{enrolled:,}" != "0"
    assert metrics["Messages sent"] == f"{sent:,}"
    assert metrics["Active"] == f"{active:,}"
    assert metrics["Converted"] == f"{converted:,}"
    assert metrics["Open rate"].endswith("%") and metrics["Conversion rate"].endswith("%")
    canvas = canvases(app)[f"monitor_canvas_{FLOW_ID}"]
    assert canvas["read_only"] is True and canvas["minimap"] is False
    counts = {node["id"]: node["data"]["counts"] for node in canvas["graph"]["nodes"]}
    assert counts["start"]["entered"] == enrolled
    assert sum(c["waiting"] for c in counts.values()) == active
    # every edge carries the tokens that took it; the edges into a step add up to its entries
    into: dict[str, int] = {}
    for edge in canvas["graph"]["edges"]:
        into[edge["target"]] = into.get(edge["target"], 0) + int(edge.get("label", "0")
                                                                 .replace(",", ""))
    for node_id, tokens in into.items():
        assert tokens == counts[node_id]["entered"], node_id
    # the message-steps table adds up to the step's entries, and its sent to the tile
    table = frames(app, "step", "entered", "sent", "suppressed")[0]
    outcomes = table[["sent", "suppressed", "skipped", "deferred", "queued", "failed", "dead"]]
    assert (outcomes.sum(axis=1) == table["entered"]).all()
    assert table["sent"].sum() == sent
    welcome = table.set_index("step").loc["Welcome email"]
    assert welcome["entered"] == counts["welcome"]["entered"]
    assert len(app.get("plotly_chart")) == 3  # messages, engagement, funnel (in an expander)
    assert any("No failed" in caption.value for caption in app.caption)
    assert any("sandbox" in m.value for m in app.markdown)  # no connection configured


def test_who_is_where_shows_profile_path_and_messages(seeded: Path) -> None:
    app = monitor_app()
    app.text_input(key=f"monitor_search_{FLOW_ID}").input("c000").run()
    assert not app.exception
    contact = app.selectbox(key=f"monitor_contact_{FLOW_ID}")
    assert contact.value is not None and "active" in contact.format_func(contact.value)
    path = frames(app, "step", "event")[0]
    assert list(dict.fromkeys(path["step"]))[:3] == ["New leads", "Welcome email",
                                                     "Wait 2 days"]
    assert "None" not in path.astype(str).to_numpy()  # empty cells, never a literal None
    assert len(frames(app, "sent_at", "step", "channel")[0]) >= 1
    attributes = frames(app, "attribute", "value")[0]
    assert "email" in set(attributes["attribute"])
    app.selectbox(key=f"monitor_waiting_{FLOW_ID}").set_value("wait_2d").run()
    waiting = sql(seeded, "SELECT count(*) FROM tokens WHERE flow_id = ? AND node_id = ?",
                  FLOW_ID, "wait_2d")
    listed = frames(app, "contact_id", "arrived_at", "wake_at")
    assert (len(listed[0]) if listed else 0) == min(waiting, 200)
    app.text_input(key=f"monitor_search_{FLOW_ID}").input("nobody-here").run()
    assert any("No contact" in info.value for info in app.info)


def test_snapshot_counts_equal_the_funnel(seeded: Path) -> None:
    flow = VersionStore(seeded).load(FLOW_ID)
    snapshot = monitor_view.read_snapshot(WorkspaceReader(seeded), flow)
    counts = snapshot.node_counts()
    assert list(counts) == [node.id for node in flow.nodes]
    assert counts["welcome"]["entered"] == int(
        snapshot.funnel.set_index("node_id").loc["welcome", "entered"])


def test_ordered_path_follows_the_flow_within_a_tick() -> None:
    import pandas as pd

    flow = mawb.load_template(FLOW_ID)
    ts = pd.Timestamp("2026-11-02")
    path = pd.DataFrame({"ts": [ts] * 5,
                         "node_id": ["wait_2d", "welcome", "start", "start", "wait_2d"],
                         "event": ["waiting", "entered", "completed", "entered", "entered"],
                         "branch": None, "reason": None})
    ordered = monitor_view.ordered_path(path, flow)
    assert list(zip(ordered["node_id"], ordered["event"], strict=True)) == [
        ("start", "entered"), ("start", "completed"), ("welcome", "entered"),
        ("wait_2d", "entered"), ("wait_2d", "waiting")]


def test_empty_workspace_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("MAWB_HOME", str(tmp_path / "empty"))
    app = monitor_app()
    assert not app.exception
    assert [info.value for info in app.info] == [monitor_view.NOTHING_DEPLOYED]
    assert not app.metric


def test_deployed_flow_that_never_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    VersionStore(home).save(mawb.load_template(FLOW_ID), "first")
    monkeypatch.setenv("MAWB_HOME", str(home))
    app = monitor_app()
    assert [info.value for info in app.info] == [monitor_view.NO_STORE]
    from mawb.engine import Workspace

    with Workspace(home).connection():  # an empty store: the flow is deployed, never ran
        pass
    app = monitor_app()
    assert not app.exception
    assert any("has not run yet" in info.value for info in app.info)
    assert {metric.label: metric.value for metric in app.metric}["Enrolled"] == "0"


def test_flows_that_ran_come_first_most_recent_first(
        tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert monitor_view.monitor_order(["a", "b", "c", "d"], ["c", "x", "a"]) == [
        "c", "a", "b", "d"]
    home = copy_of_demo(tmp_path_factory.getbasetemp(), tmp_path / "home")
    VersionStore(home).save(mawb.load_template("abandoned_cart_v1"), "deployed, never ran")
    with WorkspaceReader(home).read() as connection:
        assert list(analytics.last_runs(connection)) == [FLOW_ID]
    monkeypatch.setenv("MAWB_HOME", str(home))
    app = monitor_app()
    flow = app.selectbox(key="monitor_flow")
    assert flow.value == FLOW_ID  # the page opens on the flow that ran, not the first by name
    assert flow.options[1].endswith("· no runs yet")


@pytest.mark.parametrize(("finished_ago", "live"), [(timedelta(seconds=5), True),
                                                    (timedelta(hours=3), False)])
def test_auto_refresh_defaults_on_while_a_run_is_live(
        finished_ago: timedelta, live: bool, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = copy_of_demo(tmp_path_factory.getbasetemp(), tmp_path / "home")
    finished = datetime.now(UTC).replace(tzinfo=None) - finished_ago
    with duckdb.connect(str(home / "store.duckdb")) as connection:
        connection.execute("UPDATE runs SET finished_at = ?", [finished])
    monkeypatch.setenv("MAWB_HOME", str(home))
    app = monitor_app()
    assert app.toggle(key=f"monitor_auto_{FLOW_ID}").value is live
    badge = next(m.value for m in app.markdown if "last tick" in m.value)
    assert ("[ticking]" in badge) is live and ("[idle]" in badge) is not live
    assert "[draft]" in badge  # the lifecycle state: never set live in this workspace


def test_live_pause_and_stop_from_the_monitor(tmp_path: Path,
                                              tmp_path_factory: pytest.TempPathFactory,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mawb.engine.lifecycle")
    home = copy_of_demo(tmp_path_factory.getbasetemp(), tmp_path / "home")
    monkeypatch.setenv("MAWB_HOME", str(home))
    app = monitor_app()

    def state() -> str:
        with WorkspaceReader(home).read() as connection:
            return str(analytics.service_health(connection, FLOW_ID)["state"])

    def click(label: str) -> None:
        next(b for b in app.button if b.label == label).click().run()
        assert not app.exception, app.exception

    assert state() == "draft"
    click("Go live")
    assert state() == "live"
    assert any("[live]" in m.value for m in app.markdown)
    assert {b.label for b in app.button} >= {"Pause", "Stop"}
    click("Pause")
    assert state() == "paused"
    click("Resume")
    assert state() == "live"
    click("Stop")
    assert state() == "stopped"
    with WorkspaceReader(home).read() as connection:
        active = connection.execute("SELECT count(*) FROM enrollments WHERE flow_id = ? AND "
                                    "status = 'active'", [FLOW_ID]).fetchone()
    assert active == (0,)  # stopping ends every active enrollment
