"""A store held by another process is waited for, and the wait is logged (who, how long).

A real second process opens the store for writing (DuckDB's file lock), so the lock error,
the holder's pid in it and the wait are DuckDB's own, not a simulation of them.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from mawb.engine.store import StoreBusyError, connect
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HOLDER = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
connection.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR)")
print("holding", flush=True)
sys.stdin.readline()
connection.close()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A second process that holds `store.duckdb` open for writing until told to let go."""
    path = tmp_path / "store.duckdb"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "holding"
        yield path, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def let_go(process: subprocess.Popen[str], after: float) -> threading.Thread:
    def release() -> None:
        time.sleep(after)
        assert process.stdin is not None
        process.stdin.write("\n")
        process.stdin.flush()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_writer_waits_for_the_lock_and_logs_who_waited_how_long(
        holder: tuple[Path, subprocess.Popen[str]], caplog: pytest.LogCaptureFixture) -> None:
    path, process = holder
    caplog.set_level(logging.INFO, logger="mawb.engine.store")
    released = let_go(process, after=1.5)
    started = time.monotonic()
    connection = connect(path, retry_seconds=20)
    waited = time.monotonic() - started
    connection.close()
    released.join()
    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert messages[0][0] == logging.INFO
    assert f"waits for the lock held by pid {process.pid}" in messages[0][1]
    assert str(path) in messages[0][1]
    level, got = messages[-1]
    assert "got the lock after waiting" in got and f"pid {process.pid}" in got
    assert level == logging.WARNING, "a wait over a second is a warning"
    logged = float(got.split("after waiting ")[1].split(" s")[0])
    assert 1.0 <= logged <= waited + 0.01


def test_a_reader_that_gives_up_says_so_in_the_log(
        holder: tuple[Path, subprocess.Popen[str]], caplog: pytest.LogCaptureFixture) -> None:
    path, process = holder
    caplog.set_level(logging.INFO, logger="mawb.engine.store")
    with pytest.raises(StoreBusyError, match="busy"), \
            WorkspaceReader(path.parent, retry_seconds=0.3).read():
        pytest.fail("the store is held by another process")
    warnings = [record.getMessage() for record in caplog.records
                if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "(read): pid" in warnings[0] and f"held by pid {process.pid}" in warnings[0]
    assert "gave up after waiting" in warnings[0]
