"""Store migrations cannot be skipped: every past schema version migrates and ticks.

Fixture stores of each past version are built here by applying `SCHEMA_STEPS` up to N (what a
workspace made by that mawb holds), with contacts in them, then opened the way the CLI opens
them (a read-only look first, as `deploy_checked` does) and ticked.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import duckdb
import pytest
from typer.testing import CliRunner

from mawb.cli import app, deploy_checked
from mawb.engine import Workspace
from mawb.engine.store import STORE_SCHEMA_VERSION, StoreSchemaError, migrate, schema_version
from mawb.model import Flow
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from pathlib import Path

PAST = list(range(1, STORE_SCHEMA_VERSION))


def tagging_flow() -> Flow:
    return (Flow.new("tagging").add("start", "manual_trigger", contacts=["c1", "c2", "c3"])
            .add("tag", "data_update", set={"tag": "seen"}).connect("start", "tag"))


def old_store(path: Path, version: int, contacts: list[str]) -> None:
    """A store as mawb at schema `version` left it, holding `contacts`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = duckdb.connect(str(path))
    try:
        migrate(connection, target=version)
        connection.executemany("INSERT INTO contacts (contact_id) VALUES (?)",
                               [[c] for c in contacts])
    finally:
        connection.close()


def old_workspace(home: Path, version: int, partitions: int) -> Workspace:
    probe = Workspace(home / ".probe", partitions)  # only to route the contacts as mawb does
    if partitions == 1:
        old_store(home / "store.duckdb", version, ["c1", "c2", "c3"])
    else:
        for p in range(partitions):
            old_store(home / "partitions" / f"{p}.duckdb", version,
                      [c for c in ("c1", "c2", "c3") if probe.partition_of(c) == p])
    return Workspace(home)  # a workspace of that age has no manifest: inferred from the files


def versions_in(workspace: Workspace) -> list[int]:
    found = []
    for partition in range(workspace.partitions):
        connection = duckdb.connect(str(workspace.store_path(partition)), read_only=True)
        try:
            found.append(schema_version(connection))
        finally:
            connection.close()
    return found


@pytest.mark.parametrize("version", PAST)
def test_a_store_of_every_past_version_migrates_deploys_and_ticks(
        tmp_path: Path, version: int) -> None:
    from datetime import datetime

    workspace = old_workspace(tmp_path, version, partitions=2 if version % 2 else 1)
    assert versions_in(workspace) == [version] * workspace.partitions
    flow = tagging_flow()
    deploy_checked(workspace, flow, "tagging")  # a read-only open first, then the deploy
    workspace.tick(flow, datetime(2026, 3, 2, 9))
    assert versions_in(workspace) == [STORE_SCHEMA_VERSION] * workspace.partitions
    tags: dict[str, str] = {}
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            tags.update(connection.execute("SELECT contact_id, tag FROM contacts").fetchall())
    assert tags == {"c1": "seen", "c2": "seen", "c3": "seen"}


def test_a_read_only_open_migrates_first_and_only_then_counts_as_migrated(
        tmp_path: Path) -> None:
    """Reproduction: the first open was read-only, so the store was marked migrated without
    being migrated, and deploy + tick failed on `runs.version`; `meta` still said 1."""
    workspace = old_workspace(tmp_path, 1, partitions=1)
    with workspace.connection(read_only=True) as connection:
        assert schema_version(connection) == STORE_SCHEMA_VERSION
    assert versions_in(workspace) == [STORE_SCHEMA_VERSION]


def test_mawb_run_on_a_schema_v1_store(tmp_path: Path) -> None:
    """The reported path end to end: `mawb run --once` on a workspace made at schema v1."""
    old_workspace(tmp_path, 1, partitions=1)
    flow_file = tmp_path / "tagging.json"
    tagging_flow().save(flow_file)
    result = CliRunner().invoke(app, ["run", str(flow_file), "--once", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    connection = duckdb.connect(str(tmp_path / "store.duckdb"), read_only=True)
    try:
        assert schema_version(connection) == STORE_SCHEMA_VERSION
        assert connection.execute("SELECT count(*) FROM contacts WHERE tag = 'seen'"
                                  ).fetchone() == (3,)
    finally:
        connection.close()


def test_a_dashboard_refuses_an_old_store_until_mawb_migrate(tmp_path: Path) -> None:
    old_workspace(tmp_path, 2, partitions=2)
    reader = WorkspaceReader(tmp_path)
    with pytest.raises(StoreSchemaError, match=r"schema version 2.*run `mawb migrate`"), \
            reader.read():
        pass
    runner = CliRunner()
    result = runner.invoke(app, ["migrate", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"partition 1: v2 -> v{STORE_SCHEMA_VERSION}" in result.output
    with reader.read() as connection:
        assert connection.execute("SELECT count(*) FROM contacts").fetchone() == (3,)
    info = runner.invoke(app, ["workspace", "info", "--home", str(tmp_path), "--json"])
    data = json.loads(info.output)
    assert not data["needs_migrate"]
    assert [s["schema_version"] for s in data["stores"]] == [STORE_SCHEMA_VERSION] * 2


def test_a_store_from_a_newer_mawb_is_refused(tmp_path: Path) -> None:
    old_store(tmp_path / "store.duckdb", STORE_SCHEMA_VERSION, ["c1"])
    connection = duckdb.connect(str(tmp_path / "store.duckdb"))
    connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                       [str(STORE_SCHEMA_VERSION + 1)])
    connection.close()
    with pytest.raises(StoreSchemaError, match="newer than this mawb"), \
            Workspace(tmp_path).connection():
        pass
