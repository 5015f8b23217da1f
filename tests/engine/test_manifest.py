"""The workspace manifest, `mawb workspace info`, `mawb repartition N`, and dashboards that
read a partitioned workspace as one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

import mawb
from mawb import analytics
from mawb.cli import app
from mawb.data import synthetic_contacts, synthetic_events
from mawb.engine import Workspace, manifest
from mawb.engine.manifest import ManifestError
from mawb.engine.repartition import RepartitionError, repartition
from mawb.engine.store import STORE_SCHEMA_VERSION
from mawb.ui.monitor_view import read_snapshot
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 3, 2, 9, 0)
FLOW = "lead_qualification_v1"  # event + behavioural triggers, branches, messages


def populated(home: Path, partitions: int, contacts: int = 120) -> Workspace:
    workspace = Workspace(home, partitions)
    population = synthetic_contacts(contacts, seed=1)
    workspace.import_contacts(population)
    workspace.import_events(synthetic_events(population, days=3, seed=1, end=T0))
    flow = mawb.load_template(FLOW)
    workspace.deploy(flow)
    workspace.tick(flow, T0)
    return workspace


def table_counts(workspace: Workspace) -> dict[str, int]:
    counts: dict[str, int] = {}
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            for (table,) in connection.execute("SHOW TABLES").fetchall():
                row = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                counts[table] = counts.get(table, 0) + (int(row[0]) if row else 0)
    return counts


def per_contact(workspace: Workspace) -> dict[str, list[tuple[object, ...]]]:
    """What each contact went through: comparable whatever the partitioning."""
    found: dict[str, list[tuple[object, ...]]] = {"enrollments": [], "messages": [],
                                                  "node_log": [], "tokens": [], "outbox": []}
    queries = {
        "enrollments": "SELECT contact_id, flow_id, version, status, entry_number "
                       "FROM enrollments",
        "messages": "SELECT contact_id, node_id, channel, subject FROM messages",
        "node_log": "SELECT ts, contact_id, node_id, event, branch FROM node_log",
        "tokens": "SELECT contact_id, node_id, wake_at FROM tokens",
        "outbox": "SELECT idempotency_key, status FROM outbox_all",
    }
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            for name, query in queries.items():
                found[name] += connection.execute(query).fetchall()
    return {name: sorted(rows, key=repr) for name, rows in found.items()}


def test_a_new_workspace_writes_its_manifest(tmp_path: Path) -> None:
    Workspace(tmp_path, 3)
    written = json.loads((tmp_path / "workspace.json").read_text())
    assert written["partitions"] == 3
    assert written["schema_version"] == STORE_SCHEMA_VERSION
    assert written["created_by"] == f"mawb {mawb.__version__}"
    assert datetime.fromisoformat(written["created_at"]).tzinfo is not None
    assert Workspace(tmp_path).partitions == 3  # every later open reads it


def test_a_disagreeing_partition_count_is_refused(tmp_path: Path) -> None:
    Workspace(tmp_path, 2)
    with pytest.raises(ManifestError, match=r"has 2 partitions \(workspace.json\), not 3.*"
                                            r"mawb repartition 3"):
        Workspace(tmp_path, 3)
    contacts = tmp_path / "c.csv"
    contacts.write_text("contact_id,email\nc1,c1@example.com\n")
    result = CliRunner().invoke(app, ["import-contacts", str(contacts), "--home", str(tmp_path),
                                      "--partitions", "3"])
    assert result.exit_code == 2
    assert "not 3; drop --partitions" in result.output
    assert not (tmp_path / "partitions" / "2.duckdb").exists()


def test_a_workspace_from_before_the_manifest_gets_one_from_its_files(tmp_path: Path) -> None:
    populated(tmp_path, 2, contacts=10)
    (tmp_path / "workspace.json").unlink()
    assert manifest.read(tmp_path) is None
    assert WorkspaceReader(tmp_path).partitions == 2  # a reader infers, writes nothing
    assert manifest.read(tmp_path) is None
    assert Workspace(tmp_path).partitions == 2
    found = manifest.read(tmp_path)
    assert found is not None and found.partitions == 2


def test_workspace_info(tmp_path: Path) -> None:
    populated(tmp_path, 2, contacts=30)
    result = CliRunner().invoke(app, ["workspace", "info", "--home", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["manifest"]["partitions"] == data["partitions"] == 2
    assert sum(store["contacts"] for store in data["stores"]) == 30
    assert data["flows"] == {FLOW: [1]}
    text = CliRunner().invoke(app, ["workspace", "info", "--home", str(tmp_path)])
    assert "2 partitions, created" in text.output
    missing = CliRunner().invoke(app, ["workspace", "info", "--home", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no workspace at" in missing.output


@pytest.mark.slow
@pytest.mark.parametrize(("before", "after"), [(3, 2), (2, 1)])
def test_repartition_moves_contacts_and_all_their_state(tmp_path: Path, before: int,
                                                        after: int) -> None:
    """Row counts of every table with contacts are kept, each row lands in its contact's new
    partition, and the next tick (with new events) does exactly what it does on a workspace
    that was never repartitioned: no event is counted twice or lost by the triggers."""
    moved = populated(tmp_path / "moved", before)
    kept = populated(tmp_path / "kept", before)
    counts = table_counts(moved)
    assert counts["enrollments"] and counts["messages"] and counts["node_log"]
    result = CliRunner().invoke(app, ["repartition", str(after), "--home",
                                      str(tmp_path / "moved")])
    assert result.exit_code == 0, result.output
    moved = Workspace(tmp_path / "moved")
    assert moved.partitions == after
    assert manifest.read(moved.home).partitions == after  # type: ignore[union-attr]
    assert (tmp_path / "moved" / "backup").is_dir()
    recounted = table_counts(moved)
    routed = ("contacts", "events", "enrollments", "tokens", "outbox", "messages", "node_log",
              "crm_records", "manual_requests")
    assert {t: recounted[t] for t in routed} == {t: counts[t] for t in routed}
    for partition in range(after):
        with moved.connection(partition, read_only=True) as connection:
            for table in routed:
                ids = [r[0] for r in connection.execute(
                    f"SELECT DISTINCT contact_id FROM {table}").fetchall()]
                assert {moved.partition_of(c) for c in ids} <= {partition}, table
    assert per_contact(moved) == per_contact(kept)
    flow = mawb.load_template(FLOW)
    later = synthetic_events(synthetic_contacts(120, seed=1), days=1, seed=2,
                             end=T0 + timedelta(days=1))
    later = later.assign(event_id="later-" + later["event_id"])  # synthetic ids restart at 1
    for workspace in (moved, kept):
        workspace.import_events(later)
        workspace.import_contacts(synthetic_contacts(130, seed=1).tail(10))
        workspace.tick(flow, T0 + timedelta(days=1))
    assert per_contact(moved) == per_contact(kept)


def test_repartition_to_the_same_count_changes_nothing(tmp_path: Path) -> None:
    Workspace(tmp_path, 2)
    with pytest.raises(RepartitionError, match="already has 2 partitions"):
        repartition(tmp_path, 2)


def test_dashboards_read_a_partitioned_workspace_as_one(tmp_path: Path) -> None:
    """Monitor and Data readers union the partitions: the same numbers as one store."""
    split = populated(tmp_path / "split", 3)
    single = populated(tmp_path / "single", 1)
    flow = mawb.load_template(FLOW)
    readers = WorkspaceReader(split.home), WorkspaceReader(single.home)
    assert all(reader.has_store() for reader in readers)
    counts = []
    snapshots = []
    for reader in readers:
        with reader.read() as connection:
            counts.append(analytics.store_counts(connection))
        snapshots.append(read_snapshot(reader, flow))
    assert counts[0] == counts[1] and counts[0]["contacts"] == 120
    assert snapshots[0].node_counts() == snapshots[1].node_counts()
    assert snapshots[0].kpis == snapshots[1].kpis
    statuses = [{k: v for k, v in s.status.items() if k != "finished_at"}  # wall clock
                for s in snapshots]
    assert statuses[0] == statuses[1]  # store-wide rows (lifecycle, runs) read once


def test_the_data_page_writer_goes_to_the_right_partition(tmp_path: Path) -> None:
    """`Workspace(home)` (what the Data page imports through) routes by the manifest: a
    partitioned workspace gets no stray single store beside its partitions."""
    from mawb.ui.data_view import import_file

    Workspace(tmp_path, 3)
    outcome = import_file(tmp_path, "contacts", "c.csv",
                          b"contact_id,email\nc1,c1@example.com\nc2,c2@example.com\n")
    assert outcome.ok, outcome
    assert not (tmp_path / "store.duckdb").exists()
    workspace = Workspace(tmp_path)
    for contact in ("c1", "c2"):
        with workspace.connection(workspace.partition_of(contact), read_only=True) as c:
            assert c.execute("SELECT count(*) FROM contacts WHERE contact_id = ?",
                             [contact]).fetchone() == (1,)
