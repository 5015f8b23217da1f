"""A partitioned workspace built by the Airflow path opens in the Monitor with correct counts.

Two ticks of a compiled DAG (two partitions) under `dag.test()` write `partitions/0.duckdb`
and `partitions/1.duckdb`, as a Kubernetes deployment does; the workbench (`streamlit run
app.py`) on that workspace, read in Debian chromium, must show the KPI tiles and the per-step
badges that SQL over the union of the two partition stores gives.
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from airflow_parity import PARITY_TICK, demo_workspace
from support.browser import chromium_path, launch_chromium, serve_streamlit

import mawb
from mawb.compile import compile_airflow

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.browser]
REPO = Path(__file__).resolve().parents[2]
FLOW_ID = "monitored_welcome"
WAIT_MS = 90_000


def _union_counts(home: Path, partitions: int) -> dict[str, Any]:
    """The Monitor's numbers, counted with SQL over every partition store at once."""
    connection = duckdb.connect()
    try:
        for partition in range(partitions):
            path = home / "partitions" / f"{partition}.duckdb"
            connection.execute(f"ATTACH ? AS p{partition} (READ_ONLY)", [str(path)])

        def union(table: str) -> str:
            return " UNION ALL ".join(f"SELECT * FROM p{k}.{table}" for k in range(partitions))

        def scalar(query: str) -> int:
            row = connection.execute(query, [FLOW_ID]).fetchone()
            return int(row[0]) if row else 0

        enrollments = f"({union('enrollments')}) WHERE flow_id = ?"
        return {
            "Enrolled": scalar(f"SELECT count(*) FROM {enrollments}"),
            "Active": scalar(f"SELECT count(*) FROM {enrollments} AND status = 'active'"),
            "Completed": scalar(f"SELECT count(*) FROM {enrollments} AND status = 'completed'"),
            "Messages sent": scalar(f"SELECT count(*) FROM ({union('messages')}) "
                                    "WHERE flow_id = ?"),
            "entered": dict(connection.execute(
                f"SELECT node_id, count(*) FROM ({union('node_log')}) WHERE flow_id = ? "
                "AND event = 'entered' GROUP BY node_id", [FLOW_ID]).fetchall()),
            "waiting": dict(connection.execute(
                f"SELECT node_id, count(*) FROM ({union('tokens')}) WHERE flow_id = ? "
                "GROUP BY node_id", [FLOW_ID]).fetchall()),
            "per partition": [scalar(f"SELECT count(*) FROM p{k}.enrollments WHERE flow_id = ?")
                              for k in range(partitions)],
        }
    finally:
        connection.close()


def _badge(page: Any, node_id: str, field: str) -> int:
    badge = page.locator(f'.react-flow__node[data-id="{node_id}"] .mawb-count-{field} b')
    return int(badge.inner_text().replace(",", "")) if badge.count() else 0


def test_monitor_counts_a_workspace_two_airflow_ticks_partitioned(
    dags_folder: Path, tmp_path: Path, timings: dict[str, float]
) -> None:
    if chromium_path() is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from airflow.dag_processing.dagbag import DagBag
    from playwright.sync_api import sync_playwright

    flow = mawb.load_template("lead_welcome_v1").model_copy(update={"id": FLOW_ID})
    workspace = demo_workspace(tmp_path / "home", flow, 2)
    compile_airflow(flow, dags_folder, partitions=2, home=str(workspace.home),
                    task_shape="coarse")
    dag = DagBag(dag_folder=str(dags_folder)).dags[f"mawb_{FLOW_ID}"]
    started = time.perf_counter()
    for tick in (PARITY_TICK, PARITY_TICK + timedelta(days=2)):  # welcome, then the 2-day wait
        assert dag.test(logical_date=tick).state == "success"
    timings["monitor: dag.test coarse, 2 ticks x 2 partitions"] = time.perf_counter() - started
    assert not (workspace.home / "store.duckdb").exists()  # only the partition stores
    expected = _union_counts(workspace.home, 2)
    assert all(expected["per partition"]), expected  # both partitions hold contacts

    started = time.perf_counter()
    log_path = tmp_path / "streamlit.log"
    with (serve_streamlit(REPO / "app.py", cwd=REPO, home=workspace.home,
                          log_path=log_path) as url,
          sync_playwright() as playwright):
        browser = launch_chromium(playwright)
        with contextlib.closing(browser):
            page = browser.new_page(viewport={"width": 1440, "height": 1400})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            nav = page.get_by_test_id("stSidebarNav")
            nav.get_by_role("link", name="Home").wait_for(timeout=WAIT_MS)
            nav.get_by_role("link", name="Monitor").click()
            page.wait_for_url("**/Monitor", timeout=WAIT_MS)
            page.get_by_test_id("stMetric").first.wait_for(timeout=WAIT_MS)
            page.locator(".react-flow__node .mawb-node-counts").first.wait_for(timeout=WAIT_MS)
            tiles = {}
            for label in ("Enrolled", "Active", "Completed", "Messages sent"):
                box = page.get_by_test_id("stMetric").filter(has_text=label).first
                tiles[label] = box.get_by_test_id("stMetricValue").inner_text()
            badges = {node.id: (_badge(page, node.id, "entered"), _badge(page, node.id, "waiting"))
                      for node in flow.nodes}
            assert errors == []
    timings["monitor: streamlit + chromium read"] = time.perf_counter() - started
    assert tiles == {label: f"{expected[label]:,}"
                     for label in ("Enrolled", "Active", "Completed", "Messages sent")}
    assert expected["Enrolled"] == sum(expected["per partition"]) > 0
    assert expected["Messages sent"] > 0 and sum(expected["waiting"].values()) > 0
    assert badges == {node.id: (expected["entered"].get(node.id, 0),
                                expected["waiting"].get(node.id, 0)) for node in flow.nodes}
    assert "Traceback" not in log_path.read_text(errors="replace")
