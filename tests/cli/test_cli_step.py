"""`mawb step`: the idempotent entry point every Airflow task calls.

Running every stage of a tick (`_ingest`, the nodes in order, `_dispatch`) through the CLI,
partition by partition, must leave the store exactly as one embedded `Workspace.tick` does;
an invalid flow or bad argument must change nothing and say what is wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from cli_helpers import BROKEN, cli, error_lines, store_rows

import mawb
from mawb.data import synthetic_contacts
from mawb.engine import Workspace

if TYPE_CHECKING:
    from pathlib import Path

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TICKS = [START, START + timedelta(days=2, hours=1)]


def _workspace(home: Path, partitions: int) -> Workspace:
    workspace = Workspace(home, partitions)
    workspace.import_contacts(synthetic_contacts(120, seed=3))
    return workspace


@pytest.mark.parametrize("partitions", [1, 2])
def test_steps_node_by_node_equal_whole_ticks(tmp_path: Path, partitions: int) -> None:
    flow = mawb.load_template("lead_welcome_v1")
    flow_file = flow.save(tmp_path / "flow.json")
    embedded = _workspace(tmp_path / "embedded", partitions)
    embedded.deploy(flow)
    stepped = _workspace(tmp_path / "stepped", partitions)
    for tick in TICKS:
        embedded.tick(flow, tick)
        for stage in stepped.stages(flow):
            for partition in range(partitions):
                result = cli("step", "--flow", flow_file, "--node", stage,
                              "--partition", partition, "--partitions", partitions,
                              "--tick-time", tick.isoformat(), "--home", stepped.home,
                              "--param", "engagement_threshold=0.7")
                assert result.exit_code == 0, result.output
    for partition in range(partitions):
        rows = store_rows(stepped.store_path(partition))
        assert rows == store_rows(embedded.store_path(partition))
        assert rows["messages"], "the ticks should have sent the welcome and guide emails"


def test_step_is_idempotent(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    workspace = _workspace(home, 1)
    args = ["step", "--flow", "lead_welcome_v1", "--tick-time", "2026-11-02T09:00:00Z",
            "--home", home]
    for stage in ("_ingest", "start", "welcome", "_dispatch"):
        assert cli(*args, "--node", stage).exit_code == 0
    once = store_rows(workspace.store_path())
    for stage in ("_ingest", "start", "welcome", "_dispatch"):  # an Airflow retry
        assert cli(*args, "--node", stage).exit_code == 0
    assert store_rows(workspace.store_path()) == once


def test_step_refuses_an_invalid_flow_and_changes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    result = cli("step", "--flow", BROKEN / "bad_condition.json", "--node", "_ingest",
                  "--tick-time", "2026-11-02T09:00:00Z", "--home", home)
    assert result.exit_code == 1
    lines = error_lines(result)
    assert any("[bad_condition]" in line for line in lines)
    assert lines[-1].startswith("error: ") and "nothing was changed" in lines[-1]
    assert not home.exists()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--node", "nowhere"], "--node nowhere: no such node in flow lead_welcome_v1"),
        (["--node", "start", "--partition", "2", "--partitions", "2"],
         "--partition 2 must be below --partitions 2"),
        (["--node", "start", "--param", "speed=3"], "--param speed: flow lead_welcome_v1 has no"),
        (["--node", "start", "--param", "engagement_threshold=high"], "expected a number"),
    ],
)
def test_step_rejects_bad_arguments(tmp_path: Path, extra: list[str], fragment: str) -> None:
    result = cli("step", "--flow", "lead_welcome_v1", "--tick-time", "2026-11-02T09:00:00Z",
                  "--home", tmp_path / "ws", *extra)
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line.startswith("error: lead_welcome_v1: ")
    assert fragment in line
    assert not (tmp_path / "ws").exists()


def test_step_rejects_a_bad_tick_time(tmp_path: Path) -> None:
    result = cli("step", "--flow", "lead_welcome_v1", "--node", "start", "--tick-time",
                  "next tuesday", "--home", tmp_path / "ws")
    assert result.exit_code == 2
    assert "--tick-time 'next tuesday': expected an ISO 8601 time" in result.stderr


def test_step_names_an_unreadable_flow_file(tmp_path: Path) -> None:
    result = cli("step", "--flow", tmp_path / "missing.json", "--node", "start",
                  "--tick-time", "2026-11-02T09:00:00Z", "--home", tmp_path / "ws")
    assert result.exit_code == 2
    (line,) = error_lines(result)
    assert line.startswith(f"error: {tmp_path / 'missing.json'}: no such flow file")


def test_a_partition_step_never_waits_for_another_partitions_writer(tmp_path: Path) -> None:
    """Airflow runs partitions in parallel: stepping partition 0 must not open partition 1."""
    import subprocess
    import sys

    home = tmp_path / "ws"
    workspace = _workspace(home, 2)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN'); "
         "print('holding', flush=True); time.sleep(60)", str(workspace.store_path(1))],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        for stage in ("_ingest", "start", "welcome", "_dispatch"):
            result = cli("step", "--flow", "lead_welcome_v1", "--node", stage,
                         "--partition", 0, "--partitions", 2,
                         "--tick-time", "2026-11-02T09:00:00Z", "--home", home)
            assert result.exit_code == 0, result.output
    finally:
        holder.kill()
        holder.wait()
    assert store_rows(workspace.store_path(0))["messages"]
