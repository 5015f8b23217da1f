"""Versions in flight: contacts keep the version (and params) they entered with.

The flow: a manual trigger, a one-day wait, then `score > :t` sends each contact down `true`
or `false`, where a data_update records which way it went. A contact enters v1, a v2 with
another `t` is published while it waits, and the next tick (driven by v2, as `mawb run` or
the DAG of the newest version does) must route it with v1's params.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from typer.testing import CliRunner

from mawb.cli import app
from mawb.engine import Workspace
from mawb.engine.workspace import DRAIN
from mawb.model import Flow
from mawb.versions import move_in_flight, plan_move

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 3, 2, 9, 0)
LATER = T0 + timedelta(days=2)


def gated(version: int, t: float, wait: str = "wait") -> Flow:
    flow = (Flow.new("gate").add("start", "manual_trigger")
            .add(wait, "delay_action", days=1)
            .add("check", "if_condition", condition="score > :t")
            .add("hi", "data_update", set={"went": "true"})
            .add("lo", "data_update", set={"went": "false"})
            .connect("start", wait).connect(wait, "check")
            .connect("check", "hi", "true").connect("check", "lo", "false"))
    return flow.model_copy(update={"version": version, "params": {"t": t}})


def workspace_with(home: Path, scores: dict[str, float], partitions: int = 1) -> Workspace:
    workspace = Workspace(home, partitions)
    workspace.import_contacts(pd.DataFrame({
        "contact_id": list(scores), "email": [f"{c}@example.com" for c in scores],
        "score": list(scores.values())}))
    return workspace


def went(workspace: Workspace) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            found.update(connection.execute("SELECT contact_id, went FROM contacts").fetchall())
    return found


def enter(workspace: Workspace, flow: Flow, contacts: list[str],
          params: dict[str, float] | None = None) -> None:
    workspace.deploy(flow)
    workspace.request_enrollment(flow, "start", contacts, T0)
    workspace.tick(flow, T0, params)


def test_an_older_version_keeps_its_own_params_after_a_publish(tmp_path: Path) -> None:
    """Reproduction: v1 `score > :t` with t = 100, v2 with t = 0; a contact with score 50
    that entered v1 goes down `false`, although the caller passes v2's params (as the CLI
    did, merging the new version's defaults)."""
    workspace = workspace_with(tmp_path, {"c1": 50})
    enter(workspace, gated(1, 100), ["c1"])
    v2 = workspace.deploy(gated(2, 0))
    workspace.tick(v2, LATER, {"t": 0})
    assert went(workspace) == {"c1": "false"}
    with workspace.connection(read_only=True) as connection:
        branch = connection.execute(
            "SELECT version, branch FROM node_log WHERE node_id = 'check' AND event = 'completed'"
        ).fetchall()
    assert branch == [(1, "false")]


def test_overrides_stay_with_the_version_they_were_given_for(tmp_path: Path) -> None:
    """v1 ran with an override t = 70 (recorded in run_params); after v2 (t = 90) is
    published, v1's contacts drain with 70: score 80 goes `true` (v1's default 100 and v2's
    90 would both say `false`), and the new version's contact gets v2's own t."""
    workspace = workspace_with(tmp_path, {"old": 80, "new": 80})
    enter(workspace, gated(1, 100), ["old"], params={"t": 70})
    v2 = workspace.deploy(gated(2, 90))
    workspace.request_enrollment(v2, "start", ["new"], T0 + timedelta(hours=1))
    workspace.tick(v2, T0 + timedelta(hours=1))
    workspace.tick(v2, LATER)
    assert went(workspace) == {"old": "true", "new": "false"}
    with workspace.connection(read_only=True) as connection:
        recorded = connection.execute(
            "SELECT version, tick_time, params FROM run_params ORDER BY version, tick_time"
        ).fetchall()
    assert recorded == [(1, T0, '{"t": 70}'), (2, T0 + timedelta(hours=1), '{"t": 90}')]


def test_nobody_new_enters_an_older_version(tmp_path: Path) -> None:
    workspace = workspace_with(tmp_path, {"c1": 50, "c2": 50})
    enter(workspace, gated(1, 100), ["c1"])
    v2 = workspace.deploy(gated(2, 0))
    workspace.request_enrollment(v2, "start", ["c2"], LATER)
    workspace.tick(v2, LATER)
    with workspace.connection(read_only=True) as connection:
        versions = dict(connection.execute(
            "SELECT contact_id, version FROM enrollments").fetchall())
    assert versions == {"c1": 1, "c2": 2}


def test_step_by_step_with_drain_equals_tick(tmp_path: Path) -> None:
    """`step` over `stages(flow)` (which ends with DRAIN) is exactly `tick`, two versions."""
    ticked = workspace_with(tmp_path / "tick", {"c1": 50, "c2": 150}, partitions=2)
    stepped = workspace_with(tmp_path / "step", {"c1": 50, "c2": 150}, partitions=2)
    for workspace in (ticked, stepped):
        enter(workspace, gated(1, 100), ["c1", "c2"])
        workspace.deploy(gated(2, 0))
    v2 = ticked.load_flow("gate")
    assert stepped.stages(v2)[-1] == DRAIN
    ticked.tick(v2, LATER)
    with stepped.session():  # one connection per partition for the many single steps
        for partition in range(2):
            for stage in stepped.stages(v2):
                stepped.step(v2, stage, LATER, partition)
    assert went(ticked) == went(stepped) == {"c1": "false", "c2": "true"}


def test_cli_step_drains_the_older_version_with_its_params(tmp_path: Path) -> None:
    """`mawb step` with the v2 file: node tasks run v2 only, `--node _drain` moves v1."""
    home = tmp_path / "ws"
    workspace = workspace_with(home, {"c1": 50})
    enter(workspace, gated(1, 100), ["c1"])
    flow_file = tmp_path / "gate.json"
    gated(2, 0).save(flow_file)
    runner = CliRunner()
    for stage in Workspace(home).stages(gated(2, 0)):
        result = runner.invoke(app, ["step", "--flow", str(flow_file), "--node", stage,
                                     "--tick-time", LATER.isoformat(), "--home", str(home)])
        assert result.exit_code == 0, result.output
    assert went(Workspace(home)) == {"c1": "false"}


def test_moving_in_flight_contacts_to_the_new_version(tmp_path: Path) -> None:
    """Same id = same node: the waiting contact moves to v2 and is routed with v2's t."""
    workspace = workspace_with(tmp_path, {"c1": 50})
    enter(workspace, gated(1, 100), ["c1"])
    v2 = workspace.deploy(gated(2, 0))
    result = move_in_flight(workspace, "gate", 1, 2, now=T0)
    assert (result.moved, result.stayed) == (1, {})
    workspace.tick(v2, LATER)
    assert went(workspace) == {"c1": "true"}
    with workspace.connection(read_only=True) as connection:
        assert connection.execute(
            "SELECT version, node_id, reason FROM node_log WHERE event = 'moved'"
        ).fetchall() == [(2, "wait", "from v1")]


def test_a_removed_node_keeps_its_contacts_on_the_old_version_unless_mapped(
        tmp_path: Path) -> None:
    workspace = workspace_with(tmp_path, {"c1": 50, "c2": 50}, partitions=2)
    enter(workspace, gated(1, 100), ["c1", "c2"])
    v2 = workspace.deploy(gated(2, 0, wait="pause"))
    assert plan_move(gated(1, 100), v2).unmapped == ("wait",)
    left = move_in_flight(workspace, "gate", 1, 2, now=T0)
    assert (left.moved, left.stayed) == (0, {"wait": 2})
    moved = move_in_flight(workspace, "gate", 1, 2, {"wait": "pause"}, now=T0)
    assert (moved.moved, moved.stayed) == (2, {})
    workspace.tick(v2, LATER)
    assert went(workspace) == {"c1": "true", "c2": "true"}


def test_a_mapping_naming_a_wrong_node_is_refused() -> None:
    with pytest.raises(ValueError, match="has no node 'nope'"):
        plan_move(gated(1, 100), gated(2, 0), {"wait": "nope"})
    with pytest.raises(ValueError, match="a delay_action node cannot become a if_condition"):
        plan_move(gated(1, 100), gated(2, 0), {"wait": "check"})
