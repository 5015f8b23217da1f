"""The spool loader under kill -9: nothing accepted is lost, nothing is loaded twice.

A real loader process (forked) loads a two-partition workspace's spool (events with repeats across
files, contacts, an enrollment and a lifecycle command) and SIGKILLs itself right after its
N-th SQL statement: inside a partition's transaction, right after a COMMIT (before the file is
deleted), between the two partitions. A fresh loader then finishes the job. The stores must
equal those of one uninterrupted load, and the spool must be empty.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

import mawb.engine.workspace as workspace_module
from mawb.engine import Workspace, lifecycle
from mawb.engine.store import connect
from mawb.model import Flow

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

SEED = 20261201
RANDOM_KILLS = 4

def killed_load(home: Path, kill_at: int) -> int:
    """Fork a loader that SIGKILLs itself right after its `kill_at`-th SQL statement; returns
    its exit status (negative: the signal). Forked from this warm process (imports take
    seconds here), so each kill costs milliseconds and the child is still a real process."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            count = 0
            original = workspace_module.connect

            class Killing:
                def __init__(self, connection: Any) -> None:
                    self._connection = connection

                def execute(self, *args: Any) -> Any:
                    nonlocal count
                    result = self._connection.execute(*args)
                    count += 1
                    if count == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return result

                def __getattr__(self, name: str) -> Any:
                    return getattr(self._connection, name)

            workspace_module.connect = lambda *a, **k: Killing(original(*a, **k))
            Workspace(home).load_spool()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def spool_file(home: Path, name: str, records: list[dict[str, Any]]) -> None:
    folder = home / "spool"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))


def base_workspace(home: Path) -> None:
    workspace = Workspace(home, partitions=2)
    workspace.import_contacts(pd.DataFrame({
        "contact_id": [f"c{i}" for i in range(8)],
        "email": [f"c{i}@example.com" for i in range(8)]}))
    flow = (Flow.new("picked").add("start", "manual_trigger")
            .add("mail", "email_send", subject="Hi", body="Hello").connect("start", "mail"))
    workspace.deploy(flow)
    ts = datetime(2026, 12, 1, tzinfo=UTC).isoformat()
    for number in range(4):
        spool_file(home, f"20261201T00000{number}.000000Z-{number:04x}.jsonl", [
            *({"kind": "event", "event_id": f"c{i}-{number % 2}", "contact_id": f"c{i}",
               "name": "page_view", "ts": ts, "properties": {"n": number}, "source": "api"}
              for i in range(8)),
            {"kind": "contact", "contact": {"contact_id": f"n{number}",
                                            "email": f"n{number}@example.com"}},
            {"kind": "command", "command": "enroll", "flow_id": "picked", "node_id": "start",
             "contact_ids": [f"c{number}", f"c{number + 4}"]},
        ])
    spool_file(home, "20261201T000009.000000Z-ffff.jsonl", [
        {"kind": "command", "command": "lifecycle", "flow_id": "picked", "state": "live"}])


def snapshot(home: Path) -> dict[str, Any]:
    """Everything the load writes, per partition, without its timestamps."""
    queries = {
        "events": "SELECT event_id, contact_id, name, properties->>'n', source FROM events",
        "contacts": "SELECT contact_id, email FROM contacts",
        "requests": "SELECT flow_id, node_id, contact_id FROM manual_requests",
        "files": "SELECT file_name, records, events, contacts, commands, duplicates FROM "
                 "spool_files",
        "commands": "SELECT file_name, line, command, status, detail FROM service_commands",
        "lifecycle": "SELECT flow_id, state FROM flow_lifecycle",
    }
    found: dict[str, Any] = {"spool": sorted(p.name for p in (home / "spool").glob("*.jsonl"))}
    for partition in range(2):
        connection = connect(home / "partitions" / f"{partition}.duckdb", read_only=True)
        try:
            for name, sql in queries.items():
                found[f"{partition}.{name}"] = sorted(connection.execute(sql).fetchall())
        finally:
            connection.close()
    return found


def counted_load(home: Path) -> list[str]:
    """Load in this process, recording every statement the loader runs (its kill points)."""
    statements: list[str] = []

    class Counting:
        def __init__(self, connection: Any) -> None:
            self._connection = connection

        def execute(self, *args: Any) -> Any:
            statements.append(str(args[0]).strip().split()[0].upper())
            return self._connection.execute(*args)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._connection, name)

    original = workspace_module.connect
    workspace_module.connect = lambda *a, **k: Counting(original(*a, **k))  # type: ignore
    try:
        Workspace(home).load_spool()
    finally:
        workspace_module.connect = original  # type: ignore[assignment]
    return statements


def test_a_loader_killed_anywhere_loads_everything_exactly_once(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base_workspace(base)
    reference = tmp_path / "reference"
    shutil.copytree(base, reference)
    statements = counted_load(reference)
    expected = snapshot(reference)
    assert expected["spool"] == []
    assert sum(len(expected[f"{p}.events"]) for p in range(2)) == 16  # 32 sent, 16 distinct
    assert lifecycle.State.LIVE.value in {s for _, s in expected["0.lifecycle"]}

    commits = [i + 1 for i, word in enumerate(statements) if word == "COMMIT"]
    rng = random.Random(SEED)
    kill_points = sorted({commits[0], commits[-1], *rng.sample(range(1, len(statements)),
                                                               RANDOM_KILLS)})
    for kill_at in kill_points:
        home = tmp_path / f"kill{kill_at}"
        shutil.copytree(base, home)
        assert killed_load(home, kill_at) == -signal.SIGKILL, f"kill point {kill_at} missed"
        Workspace(home).load_spool()  # the next loader, after the crash
        assert snapshot(home) == expected, f"killed after statement {kill_at}"
