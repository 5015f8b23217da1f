"""Shrunk failures of the engine-vs-reference property test, kept as plain examples.

Each test names the bug it caught; all compare the engine with the reference interpreter and
also assert the specific behaviour that was wrong, so a regression fails with a clear message.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from engine_harness import START, assert_same, run_both, scratch_home, written_attributes

from mawb.model import Flow
from mawb.validate import validate_flow


def _contacts(n: int, **columns: object) -> pd.DataFrame:
    rows = [{"contact_id": f"c{i:02d}", "email": f"c{i:02d}@example.com",
             "email_consent": True, **columns} for i in range(n)]
    return pd.DataFrame(rows)


def test_increment_of_an_attribute_imported_without_any_value() -> None:
    """An all-null imported column used to get DuckDB type "NULL" and break `increment`."""
    flow = (Flow.new("prop").add("n0", "time_based_trigger", schedule="@once")
            .add("n1", "data_update", increment={"bump": 1}).connect("n0", "n1"))
    contacts = _contacts(5, bump=None, tag=None)
    with scratch_home() as home:
        pair = run_both(flow, contacts, None, Path(home))
        assert_same(pair, written_attributes(flow))
    assert {row["bump"] for row in pair.engine.contacts.values()} == {1.0}


def test_fork_paths_meeting_again_without_a_merge_send_once() -> None:
    """Two tokens of one enrollment reaching an email node in the same tick share one key."""
    flow = (Flow.new("fork").add("start", "time_based_trigger", schedule="@once")
            .add("fork", "parallel_execution")
            .add("left", "data_update", increment={"bump": 1})
            .add("right", "data_update", set={"tag": "hot"})
            .add("mail", "email_send", subject="Hi", body="Hello {{ first_name }}")
            .connect("start", "fork").connect("fork", "left").connect("fork", "right")
            .connect("left", "mail").connect("right", "mail"))
    assert validate_flow(flow).valid
    with scratch_home() as home:
        pair = run_both(flow, _contacts(3, first_name="Ada"), None, Path(home))
        assert_same(pair, written_attributes(flow))
    assert len(pair.engine.messages) == 3
    assert len({row[0] for row in pair.engine.outbox}) == len(pair.engine.outbox) == 3
    entered_mail = [r for r in pair.engine.node_log if r[3] == "mail" and r[4] == "entered"]
    assert len(entered_mail) == 6  # both tokens are logged; only the message is deduplicated
    assert START in pair.engine.ticks
