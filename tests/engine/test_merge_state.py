"""A merge keeps its state beside the tokens, not in the node_log audit table.

The flow forks; one branch reaches an `any` merge at once, the other a day later. The merge
lets the enrollment through once, absorbs the late branch, and forgets the enrollment when it
finishes — whatever the audit log holds (it may be pruned or archived), and across the
migration from a store that kept this state only in node_log.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from mawb.engine import Workspace
from mawb.model import Flow

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 3, 2, 9, 0)
LATER = T0 + timedelta(days=2)


def forked() -> Flow:
    return (Flow.new("forked").add("start", "manual_trigger")
            .add("fork", "parallel_execution")
            .add("fast", "data_update", set={"fast": True})
            .add("slow", "delay_action", days=1)
            .add("join", "merge_branches", mode="any")
            .add("count", "data_update", increment={"passes": 1})
            .connect("start", "fork").connect("fork", "fast").connect("fork", "slow")
            .connect("fast", "join").connect("slow", "join").connect("join", "count"))


def entered(home: Path) -> tuple[Workspace, Flow]:
    workspace = Workspace(home)
    workspace.import_contacts(pd.DataFrame({"contact_id": ["c1", "c2"]}))
    flow = workspace.deploy(forked())
    workspace.request_enrollment(flow, "start", ["c1", "c2"], T0)
    workspace.tick(flow, T0)
    return workspace, flow


def state(workspace: Workspace) -> tuple[dict[str, float], list[str], int]:
    with workspace.connection(read_only=True) as connection:
        passes = dict(connection.execute("SELECT contact_id, passes FROM contacts").fetchall())
        statuses = [row[0] for row in connection.execute(
            "SELECT status FROM enrollments ORDER BY contact_id").fetchall()]
        remembered = connection.execute("SELECT count(*) FROM merge_passed").fetchone()
    return passes, statuses, int(remembered[0]) if remembered else -1


def test_the_late_branch_is_absorbed_without_reading_the_audit_log(tmp_path: Path) -> None:
    workspace, flow = entered(tmp_path)
    assert state(workspace) == ({"c1": 1, "c2": 1}, ["active", "active"], 2)
    with workspace.connection() as connection:
        connection.execute("DELETE FROM node_log")  # pruned history changes nothing
    workspace.tick(flow, LATER)
    assert state(workspace) == ({"c1": 1, "c2": 1}, ["completed", "completed"], 0)


def test_a_store_that_kept_merge_state_in_node_log_migrates_it(tmp_path: Path) -> None:
    workspace, flow = entered(tmp_path)
    connection = duckdb.connect(str(workspace.store_path(0)))
    try:  # the store as schema v7 left it: the merge's passage only in node_log
        connection.execute("DROP TABLE merge_passed")
        connection.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    finally:
        connection.close()
    reopened = Workspace(tmp_path)
    reopened.tick(flow, LATER)
    assert state(reopened) == ({"c1": 1, "c2": 1}, ["completed", "completed"], 0)
