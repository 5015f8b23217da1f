"""Shrunk failures of the multi-version and all-types property tests, kept as plain examples.

Each compares the engine with the reference interpreter and also asserts the behaviour that
was wrong (docs/architecture.md section 6: a version's dispatch is its own)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from engine_harness import (
    START,
    Publish,
    assert_same,
    run_both,
    scratch_home,
    written_attributes,
)

from mawb.model import Flow


def _contacts(n: int, **columns: object) -> pd.DataFrame:
    return pd.DataFrame([{"contact_id": f"c{i:02d}", "email": f"c{i:02d}@example.com",
                          "email_consent": True, "timezone": "UTC", "first_name": "Ada",
                          "score": 50 * i, **columns} for i in range(n)])


def _welcome(version: int = 1, **settings: Any) -> Flow:
    flow = (Flow.new("prop", settings=settings)
            .add("n0", "manual_trigger", contacts=["c00", "c01", "c02"])
            .add("n1", "delay_action", hours=2)
            .add("n2", "email_send", subject="Hi", body="x {{ first_name | upcase }}")
            .connect("n0", "n1").connect("n1", "n2"))
    return flow.model_copy(update={"version": version})


def test_a_newer_goal_does_not_convert_contacts_of_an_older_version() -> None:
    """v2's dispatch used to apply v2's goal to v1's enrollments."""
    v1, v2 = _welcome(), _welcome(2, goal="score > 40")
    with scratch_home() as home:
        pair = run_both(v1, _contacts(3), None, Path(home), publish=Publish(v2, 1))
        assert_same(pair, written_attributes(v1, v2))
    assert {row[2] for row in pair.engine.enrollments} == {"completed"}


def test_a_row_deferred_by_an_older_version_is_sent_under_its_settings_and_rendered() -> None:
    """v2's dispatch used to defer v1's row by v2's quiet hours and then sandbox-send it
    unrendered (body NULL), since rendering only looks at the dispatching version's rows."""
    v1 = _welcome(quiet_hours={"start": "10:00", "end": "13:00"})
    v2 = _welcome(2, quiet_hours={"start": "12:00", "end": "14:00"})
    with scratch_home() as home:
        pair = run_both(v1, _contacts(1), None, Path(home), publish=Publish(v2, 1))
        assert_same(pair, written_attributes(v1, v2))
        with pair.workspace.connection(0, read_only=True) as connection:
            rows = connection.execute("SELECT body, sent_at FROM outbox_all").fetchall()
    assert rows == [("x ADA", START + timedelta(hours=4))]  # 13:00 UTC, end of v1's quiet hours


def test_crm_update_to_a_connection_mirrors_attributes() -> None:
    """`mirror_attributes` was applied only for the local CRM table."""
    flow = (Flow.new("prop").add("n0", "time_based_trigger", schedule="@once")
            .add("n1", "crm_update", crm="stub_crm", object="lead",
                 fields={"lead_status": "working", "rating": 3}, mirror_attributes=True)
            .connect("n0", "n1"))
    with scratch_home() as home:
        pair = run_both(flow, _contacts(2), None, Path(home))
        assert_same(pair, written_attributes(flow))
    assert {row["lead_status"] for row in pair.engine.contacts.values()} == {"working"}
    assert [row[5] for row in pair.engine.outbox] == ["sent", "sent"]
