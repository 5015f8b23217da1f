"""Dashboards read while the engine writes: they wait (bounded), never show a lock error."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from mawb.engine.store import StoreBusyError
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from pathlib import Path

HOLD = """
import sys, time, duckdb
connection = duckdb.connect(sys.argv[1])
connection.execute("BEGIN")
connection.execute("UPDATE contacts SET score = score")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
connection.close()
"""


def hold_store(home: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process writing to the store for `seconds` (like a tick)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(home / "store.duckdb"),
                                str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def test_reader_waits_for_a_writer_in_another_process(writable_home: Path) -> None:
    writer = hold_store(writable_home, 1.5)
    started = time.monotonic()
    try:
        with WorkspaceReader(writable_home, retry_seconds=20).read() as connection:
            row = connection.execute("SELECT count(*) FROM contacts").fetchone()
    finally:
        writer.wait(timeout=30)
    assert row is not None and row[0] == 120
    assert time.monotonic() - started >= 0.5  # it really had to wait


def test_a_store_busy_past_the_budget_is_a_friendly_error(writable_home: Path) -> None:
    writer = hold_store(writable_home, 3)
    try:
        with pytest.raises(StoreBusyError, match="busy") as caught, \
                WorkspaceReader(writable_home, retry_seconds=0.3).read():
            pass
    finally:
        writer.wait(timeout=30)
    assert "lock" not in str(caught.value).lower()


def test_a_workspace_without_store_is_reported_not_created(tmp_path: Path) -> None:
    reader = WorkspaceReader(tmp_path / "empty")
    assert not reader.has_store()
    with pytest.raises(FileNotFoundError), reader.read():
        pass
    assert not (tmp_path / "empty").exists()
