"""A trigger counts a contact's past entries from `flow_entries`, not from the enrollment history.

Re-entry rules and `entry_number` (part of every idempotency key) need how many times each
entering contact has entered the flow before. Reading that from the enrollments made every
trigger stage's cost grow with the store's history; the count now lives beside the
enrollments, written in the same transaction, and migrates from older stores.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import duckdb
import pandas as pd
import pytest

from mawb.engine import Workspace
from mawb.model import Flow, Reentry

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 3, 2, 9, 0)


def tagging(reentry: Reentry, wait_days: int = 0) -> Flow:
    flow = Flow.new("again").add("start", "manual_trigger")
    if wait_days:
        flow = flow.add("wait", "delay_action", days=wait_days).connect("start", "wait")
    flow = flow.add("tag", "data_update", increment={"visits": 1}).connect(
        "wait" if wait_days else "start", "tag")
    flow.settings = flow.settings.model_copy(update={"reentry": reentry})
    return flow


def enter(workspace: Workspace, flow: Flow, at: datetime, contacts: list[str]) -> None:
    workspace.request_enrollment(flow, "start", contacts, at)
    workspace.tick(flow, at)


def entries(workspace: Workspace) -> tuple[list[tuple[str, int]], dict[str, int]]:
    with workspace.connection(read_only=True) as connection:
        numbers = connection.execute("SELECT contact_id, entry_number FROM enrollments "
                                     "ORDER BY contact_id, entry_number").fetchall()
        counts = dict(connection.execute(
            "SELECT contact_id, entries FROM flow_entries WHERE flow_id = 'again'").fetchall())
    return numbers, counts


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path)
    workspace.import_contacts(pd.DataFrame({"contact_id": ["c1", "c2"]}))
    return workspace


def test_entry_numbers_follow_the_count_even_when_old_enrollments_are_gone(
        workspace: Workspace) -> None:
    flow = workspace.deploy(tagging(Reentry.ALWAYS))
    enter(workspace, flow, T0, ["c1", "c2"])
    enter(workspace, flow, T0 + timedelta(days=1), ["c1"])
    assert entries(workspace) == ([("c1", 1), ("c1", 2), ("c2", 1)], {"c1": 2, "c2": 1})
    with workspace.connection() as connection:  # archived history changes nothing
        connection.execute("DELETE FROM enrollments WHERE status = 'completed'")
    enter(workspace, flow, T0 + timedelta(days=2), ["c1", "c2"])
    assert entries(workspace) == ([("c1", 3), ("c2", 2)], {"c1": 3, "c2": 2})


def test_never_lets_a_contact_enter_twice(workspace: Workspace) -> None:
    never = workspace.deploy(tagging(Reentry.NEVER))
    enter(workspace, never, T0, ["c1"])
    enter(workspace, never, T0 + timedelta(days=1), ["c1", "c2"])
    assert entries(workspace) == ([("c1", 1), ("c2", 1)], {"c1": 1, "c2": 1})


def test_after_exit_refuses_a_contact_still_inside(workspace: Workspace) -> None:
    flow = workspace.deploy(tagging(Reentry.AFTER_EXIT, wait_days=2))
    enter(workspace, flow, T0, ["c1"])
    enter(workspace, flow, T0 + timedelta(days=1), ["c1"])  # still waiting: refused
    assert entries(workspace) == ([("c1", 1)], {"c1": 1})
    workspace.tick(flow, T0 + timedelta(days=2))  # the delay ends, the path ends
    enter(workspace, flow, T0 + timedelta(days=3), ["c1"])
    assert entries(workspace) == ([("c1", 1), ("c1", 2)], {"c1": 2})


def test_a_store_that_counted_entries_from_enrollments_migrates_the_counts(
        workspace: Workspace, tmp_path: Path) -> None:
    flow = workspace.deploy(tagging(Reentry.ALWAYS))
    enter(workspace, flow, T0, ["c1", "c2"])
    enter(workspace, flow, T0 + timedelta(days=1), ["c1"])
    connection = duckdb.connect(str(workspace.store_path(0)))
    try:  # the store as schema v8 left it: the counts only in the enrollments
        connection.execute("DROP TABLE flow_entries")
        connection.execute("UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    finally:
        connection.close()
    reopened = Workspace(tmp_path)
    enter(reopened, flow, T0 + timedelta(days=2), ["c1"])
    assert entries(reopened) == ([("c1", 1), ("c1", 2), ("c1", 3), ("c2", 1)],
                                 {"c1": 3, "c2": 1})
