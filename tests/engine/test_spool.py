"""The spool loader: accepted records reach the store exactly once, whatever happened before.

Spool files are written here the way the service writes them (tmp file, fsync, rename), so the
loader sees exactly what it sees in production.
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from mawb.engine import Workspace, lifecycle, spool
from mawb.model import Flow

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime.now(UTC).replace(microsecond=0)


def write_spool(home: Path, records: list[dict[str, Any]], name: str | None = None) -> Path:
    """One spool file, durably, as `mawb.service.spool.write_batch` writes it."""
    folder = home / "spool"
    (folder / ".tmp").mkdir(parents=True, exist_ok=True)
    name = name or f"{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}.jsonl"
    tmp = folder / ".tmp" / name
    with tmp.open("w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / name)
    return folder / name


def event(event_id: str, contact_id: str = "c1", name: str = "signup",
          source: str = "api", **properties: Any) -> dict[str, Any]:
    return {"kind": "event", "event_id": event_id, "contact_id": contact_id, "name": name,
            "ts": NOW.isoformat(), "properties": properties, "source": source}


def workspace(tmp_path: Path, partitions: int = 1) -> Workspace:
    ws = Workspace(tmp_path / "ws", partitions)
    ws.import_contacts(pd.DataFrame({
        "contact_id": ["c1", "c2", "c3", "c4"],
        "email": [f"c{i}@example.com" for i in range(1, 5)],
        "email_consent": [True] * 4}))
    return ws


def rows(ws: Workspace, sql: str) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    for partition in range(ws.partitions):
        with ws.connection(partition, read_only=True) as connection:
            found += connection.execute(sql).fetchall()
    return sorted(found, key=repr)


def test_events_and_contacts_load_once_and_the_file_goes(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    path = write_spool(ws.home, [
        event("e1", plan="pro"), event("e1"), event("e2", contact_id="ghost"),
        {"kind": "contact", "contact": {"contact_id": "c9", "email": "c9@example.com"}},
        {"kind": "mystery"},
    ])
    report = ws.load_spool()
    assert (report.files, report.events, report.duplicates, report.unknown_contacts,
            report.contacts, report.rejected) == (1, 2, 1, 1, 1, 1)
    assert not path.exists()
    assert rows(ws, "SELECT event_id, contact_id, properties->>'plan' FROM events") == [
        ("e1", "c1", "pro"), ("e2", "ghost", None)]
    assert rows(ws, "SELECT email FROM contacts WHERE contact_id = 'c9'") == [
        ("c9@example.com",)]
    assert rows(ws, "SELECT file_name, records, events, duplicates, unknown_contacts, rejected "
                    "FROM spool_files") == [(path.name, 5, 2, 1, 1, 1)]
    # The same events again (a client retry, in a new file): kept out, counted.
    write_spool(ws.home, [event("e1"), event("e2", contact_id="ghost")])
    again = ws.load_spool()
    assert (again.events, again.duplicates) == (0, 2)
    assert len(rows(ws, "SELECT * FROM events")) == 2


def test_a_file_recorded_before_a_crash_is_only_deleted(tmp_path: Path) -> None:
    """Killed between the commit and the delete: the file is still there, named in the store."""
    ws = workspace(tmp_path)
    records = [event("e1"), event("e2", contact_id="c2"),
               {"kind": "contact", "contact": {"contact_id": "c5"}}]
    path = write_spool(ws.home, records)
    content = path.read_bytes()
    ws.load_spool()
    path.write_bytes(content)  # as if the delete never happened
    report = ws.load_spool()
    assert (report.files, report.finished, report.events) == (0, 1, 0)
    assert not path.exists()
    assert len(rows(ws, "SELECT * FROM events")) == 2
    assert rows(ws, "SELECT count(*) FROM spool_files") == [(1,)]


def test_files_load_in_arrival_order_later_contact_wins(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    write_spool(ws.home, [{"kind": "contact", "contact": {"contact_id": "c1", "plan": "free"}}],
                name="20260101T000000.000001Z-aaaa.jsonl")
    write_spool(ws.home, [{"kind": "contact", "contact": {"contact_id": "c1", "plan": "pro"}},
                          {"kind": "contact", "contact": {"contact_id": "c1", "score": 7}}],
                name="20260101T000000.000002Z-0000.jsonl")
    ws.load_spool()
    # Each record updates what it names: the email and consent imported earlier stay.
    assert rows(ws, "SELECT plan, score, email, email_consent FROM contacts "
                    "WHERE contact_id = 'c1'") == [("pro", 7, "c1@example.com", True)]


def test_a_broken_file_is_set_aside_with_its_reason_and_the_rest_loads(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    bad = write_spool(ws.home, [event("e1")], name="20260101T000000.000001Z-bad0.jsonl")
    bad.write_text(bad.read_text() + '{"kind": "event", "trunc\n')
    write_spool(ws.home, [event("e2")], name="20260101T000000.000002Z-good.jsonl")
    report = ws.load_spool()
    assert report.events == 1 and len(report.quarantined) == 1
    rejected = ws.home / "spool" / "rejected"
    assert (rejected / bad.name).exists()
    assert "line 2: not JSON" in (rejected / f"{bad.name}.error").read_text()
    assert rows(ws, "SELECT event_id FROM events") == [("e2",)]


def test_bad_records_are_counted_and_never_block_the_spool(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    write_spool(ws.home, [
        event("e1"), {**event("e2"), "ts": "yesterday"},
        {"kind": "contact", "contact": {"contact_id": "c7", "timezone": "Mars/Olympus"}},
        {"kind": "contact", "contact": {"contact_id": "c8"}},
    ])
    write_spool(ws.home, [{"kind": "contact", "contact": {"contact_id": "c9"}}])
    report = ws.load_spool()
    assert (report.files, report.events, report.rejected, report.contacts) == (2, 1, 3, 1)
    assert spool.pending(ws.home) == []
    assert rows(ws, "SELECT contact_id FROM contacts WHERE contact_id IN ('c7', 'c8', 'c9')") == [
        ("c9",)]  # a batch's contacts load all or nothing, like an import
    assert rows(ws, "SELECT rejected FROM spool_files") == [(0,), (3,)]


def test_a_file_the_store_refuses_is_set_aside_and_the_others_load(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    ws.load_contacts(pd.DataFrame({"contact_id": ["c1"], "visits": [3]}),
                     types={"visits": "int"})
    first = write_spool(ws.home, [event("e1")], name="20260101T000000.000001Z-0001.jsonl")
    bad = write_spool(ws.home, [{"kind": "contact", "contact": {"contact_id": "c2",
                                                                "visits": "many"}}],
                      name="20260101T000000.000002Z-0002.jsonl")
    last = write_spool(ws.home, [event("e3")], name="20260101T000000.000003Z-0003.jsonl")
    report = ws.load_spool()
    assert [q.split(":")[0] for q in report.quarantined] == [bad.name]
    assert "the store refused it" in (ws.home / "spool" / "rejected" / f"{bad.name}.error"
                                      ).read_text()
    assert rows(ws, "SELECT event_id FROM events") == [("e1",), ("e3",)]
    assert not first.exists() and not last.exists()


def test_partitions_each_load_their_share_exactly_once(tmp_path: Path) -> None:
    ws = workspace(tmp_path, partitions=2)
    ids = [f"c{i}" for i in range(1, 5)]
    path = write_spool(ws.home, [event(f"e{i}", contact_id=c) for i, c in enumerate(ids)])
    first = min(range(2), key=lambda p: -sum(ws.partition_of(c) == p for c in ids))
    ws.load_spool([first])  # one partition's task (Airflow) loads its share only
    assert path.exists(), "the other partition has not recorded the file yet"
    ws.load_spool([1 - first])
    assert not path.exists()
    ws.load_spool()
    for partition in range(2):
        with ws.connection(partition, read_only=True) as connection:
            held = {r[0] for r in connection.execute("SELECT contact_id FROM events").fetchall()}
        assert held == {c for c in ids if ws.partition_of(c) == partition}
    assert len(rows(ws, "SELECT * FROM events")) == 4


def manual_flow() -> Flow:
    return (Flow.new("hand_picked").add("start", "manual_trigger")
            .add("mail", "email_send", subject="Hi", body="Hello").connect("start", "mail"))


def test_commands_apply_in_order_and_are_recorded(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    flow = manual_flow()
    write_spool(ws.home, [
        {"kind": "command", "command": "deploy", "flow": flow.to_dict(), "by": "ann"},
        {"kind": "command", "command": "lifecycle", "flow_id": flow.id, "state": "live",
         "by": "ann"},
        {"kind": "command", "command": "enroll", "flow_id": flow.id, "node_id": "start",
         "contact_ids": ["c1", "c2"], "by": "ann"},
        {"kind": "command", "command": "enroll", "flow_id": flow.id, "node_id": "mail",
         "contact_ids": ["c3"], "by": "ann"},
        {"kind": "command", "command": "lifecycle", "flow_id": flow.id, "state": "draft"},
        {"kind": "command", "command": "import", "what": "events", "source": "crm.csv",
         "rows": [{"event_id": "x1", "contact_id": "c4", "name": "purchase",
                   "ts": NOW.isoformat()}]},
    ])
    report = ws.load_spool()
    assert ws.versions(flow.id) == [1]
    assert lifecycle.state_of(ws, flow.id) is lifecycle.State.LIVE
    assert rows(ws, "SELECT contact_id FROM manual_requests") == [("c1",), ("c2",)]
    assert rows(ws, "SELECT event_id, source FROM events") == [("x1", "crm.csv")]
    recorded = rows(ws, "SELECT line, command, status, detail, requested_by "
                        "FROM service_commands")
    assert [r[:3] for r in recorded] == [
        (1, "deploy", "done"), (2, "lifecycle", "done"), (3, "enroll", "done"),
        (4, "enroll", "failed"), (5, "lifecycle", "failed"), (6, "import", "done")]
    assert "not a manual_trigger" in recorded[3][3]
    assert "cannot become draft" in recorded[4][3]
    assert recorded[0][4] == "ann"
    assert len(report.failed_commands) == 2
    assert flow.id in report.wake_flows


def test_the_tick_loads_the_spool_without_a_service(tmp_path: Path) -> None:
    """`mawb run --once` with no service: the tick's ingest stage loads the spool first."""
    ws = workspace(tmp_path)
    flow = (Flow.new("welcome").add("start", "event_trigger", event="signup")
            .add("mail", "email_send", subject="Hi", body="Hello").connect("start", "mail"))
    ws.deploy(flow)
    write_spool(ws.home, [event("e1", contact_id="c2")])
    ws.tick(flow, NOW + timedelta(seconds=1))
    assert rows(ws, "SELECT contact_id FROM messages") == [("c2",)]
    assert spool.pending(ws.home) == []


def test_a_webhook_trigger_enrolls_only_from_its_own_endpoint(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    flow = (Flow.new("hooked").add("hook", "webhook_trigger", event="order")
            .add("mail", "email_send", subject="Thanks", body="Got it").connect("hook", "mail"))
    ws.deploy(flow)
    write_spool(ws.home, [event("a1", contact_id="c1", name="order"),
                          event("a2", contact_id="c2", name="order",
                                source="webhook:other_flow:hook"),
                          event("a3", contact_id="c3", name="order", source="webhook:hooked:hook")])
    ws.tick(flow, NOW + timedelta(seconds=1))
    assert rows(ws, "SELECT contact_id FROM messages") == [("c3",)]


@pytest.mark.parametrize("state", ["paused", "stopped"])
def test_a_held_flow_moves_nobody_and_sends_nothing(tmp_path: Path, state: str) -> None:
    ws = workspace(tmp_path)
    flow = (Flow.new("drip").add("start", "event_trigger", event="signup")
            .add("wait", "delay_action", hours=1)
            .add("mail", "email_send", subject="Hi", body="Hello")
            .connect("start", "wait").connect("wait", "mail"))
    ws.deploy(flow)
    lifecycle.change(ws, flow.id, "live", by="ann")
    write_spool(ws.home, [event("e1", contact_id="c1")])
    ws.tick(flow, NOW + timedelta(seconds=1))
    assert rows(ws, "SELECT node_id FROM tokens") == [("wait",)]
    lifecycle.change(ws, flow.id, state, by="bob", note="checking copy")
    ws.tick(flow, NOW + timedelta(hours=2))
    assert rows(ws, "SELECT * FROM messages") == []
    if state == "paused":
        assert rows(ws, "SELECT node_id FROM tokens") == [("wait",)]  # held where it was
        lifecycle.change(ws, flow.id, "live", by="ann")
        ws.tick(flow, NOW + timedelta(hours=3))
        assert rows(ws, "SELECT contact_id FROM messages") == [("c1",)]
    else:
        assert rows(ws, "SELECT * FROM tokens") == []
        assert rows(ws, "SELECT status, exit_reason FROM enrollments") == [
            ("exited", "flow stopped")]
    history = rows(ws, "SELECT state, changed_by, note FROM flow_lifecycle")
    assert (state, "bob", "checking copy") in history


def test_lifecycle_refuses_what_it_does_not_allow(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    ws.deploy(manual_flow())
    with pytest.raises(lifecycle.LifecycleError, match="is draft; it cannot become paused"):
        lifecycle.change(ws, "hand_picked", "paused")
    with pytest.raises(lifecycle.LifecycleError, match="not deployed"):
        lifecycle.change(ws, "nope", "live")
    assert rows(ws, "SELECT * FROM flow_lifecycle") == []
