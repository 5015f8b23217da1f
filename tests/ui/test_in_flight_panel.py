"""Contacts in flight after a publish: counted per version and node, moved from the Builder's
versions tab (directly, or as a `move` command the service's loop applies)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from mawb.engine import Workspace, spool
from mawb.model import Flow
from mawb.service.app import ApiError
from mawb.service.client import command, submit
from mawb.service.commands import check_command
from mawb.ui.reader import WorkspaceReader
from mawb.versions import in_flight

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 3, 2, 9, 0)


def gated(version: int, wait: str = "wait") -> Flow:
    flow = (Flow.new("gate").add("start", "manual_trigger")
            .add(wait, "delay_action", days=1)
            .add("check", "if_condition", condition="score > 10")
            .add("hi", "data_update", set={"went": "true"})
            .add("lo", "data_update", set={"went": "false"})
            .connect("start", wait).connect(wait, "check")
            .connect("check", "hi", "true").connect("check", "lo", "false"))
    return flow.model_copy(update={"version": version})


def published(home: Path, partitions: int = 1) -> Workspace:
    """Three contacts waiting at v1's `wait`; v2 renamed it `pause`."""
    workspace = Workspace(home, partitions)
    workspace.import_contacts(pd.DataFrame({"contact_id": ["c1", "c2", "c3"],
                                            "score": [50, 50, 1]}))
    v1 = workspace.deploy(gated(1))
    workspace.request_enrollment(v1, "start", ["c1", "c2", "c3"], T0)
    workspace.tick(v1, T0)
    workspace.deploy(gated(2, wait="pause"))
    return workspace


def versions_of_enrollments(workspace: Workspace) -> dict[int, int]:
    with WorkspaceReader(workspace.home).read() as connection:
        return dict(connection.execute(
            "SELECT version, count(*) FROM enrollments WHERE status = 'active' GROUP BY 1"
        ).fetchall())


def _panel() -> None:  # runs inside AppTest: self-contained
    import os
    from pathlib import Path

    from mawb.ui.in_flight_panel import render_in_flight
    from mawb.versions import VersionStore

    render_in_flight("gate", VersionStore(Path(os.environ["MAWB_HOME"])))


def test_the_panel_maps_a_removed_node_and_moves_the_contacts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    workspace = published(tmp_path)
    monkeypatch.setenv("MAWB_HOME", str(tmp_path))
    app = AppTest.from_function(_panel, default_timeout=60).run()
    assert not app.exception
    assert app.expander[0].label == "v1: 3 enrollments waiting"
    table = app.dataframe[0].value
    assert table.to_dict("records") == [
        {"waiting at": "wait", "contacts": 3, "in v2": "— finishes on v1"}]
    choice = app.selectbox[0]
    assert choice.options == ["finish on v1", "pause"]
    choice.select("pause").run()
    assert app.dataframe[0].value["in v2"].tolist() == ["pause"]
    app.button[0].click().run()
    assert not app.exception
    assert versions_of_enrollments(workspace) == {2: 3}
    assert not app.expander  # nobody left on an older version: the panel has nothing to show
    workspace.tick(workspace.load_flow("gate"), T0 + timedelta(days=2))
    with WorkspaceReader(tmp_path).read() as connection:
        went = dict(connection.execute("SELECT contact_id, went FROM contacts").fetchall())
    assert went == {"c1": "true", "c2": "true", "c3": "false"}


def test_a_move_command_is_applied_by_the_loop_on_every_partition(tmp_path: Path) -> None:
    workspace = published(tmp_path, partitions=2)
    with WorkspaceReader(tmp_path).read() as connection:  # the union of both partitions
        found = in_flight(connection, "gate")
    assert list(found) == [1]
    assert (found[1].enrollments, found[1].at) == (3, {"wait": 3})
    submit(tmp_path, [command("move", flow_id="gate", from_version=1, to_version=2,
                              mapping={"wait": "pause"})])
    spool.load(workspace)
    assert versions_of_enrollments(workspace) == {2: 3}
    with WorkspaceReader(tmp_path).read() as connection:
        recorded = connection.execute(
            "SELECT command, status, detail FROM service_commands ORDER BY detail").fetchall()
    assert len(recorded) == 2 and {row[:2] for row in recorded} == {("move", "done")}
    assert sum(int(row[2].split(": ")[2].split()[0]) for row in recorded) == 3


def test_a_move_command_naming_a_wrong_node_fails_and_moves_nobody(tmp_path: Path) -> None:
    workspace = published(tmp_path)
    submit(tmp_path, [command("move", flow_id="gate", from_version=1, to_version=2,
                              mapping={"wait": "check"})])
    spool.load(workspace)
    assert versions_of_enrollments(workspace) == {1: 3}
    with WorkspaceReader(tmp_path).read() as connection:
        status, detail = connection.execute(
            "SELECT status, detail FROM service_commands").fetchone()
    assert status == "failed" and "cannot become a if_condition" in detail


@pytest.mark.parametrize(("field", "value"), [
    ("from_version", "1"), ("to_version", 0), ("mapping", {"wait": 3})])
def test_the_intake_refuses_a_malformed_move_naming_the_field(field: str, value: object) -> None:
    item = {"command": "move", "flow_id": "gate", "from_version": 1, "to_version": 2, field: value}
    with pytest.raises(ApiError) as refused:
        check_command(item, "body")
    assert refused.value.field == f"body.{field}"
