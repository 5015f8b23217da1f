"""Read-only access to a workspace for dashboards: short connections, bounded retry.

DuckDB lets one process write a store file, and while it writes no other process can even
open the file read-only (in the same process, a read-only open fails while a writing
connection is open). The engine holds its connection only for a tick, so a dashboard that
waits a moment always gets in. This module is that wait: every read opens a fresh read-only
connection, retries with jittered backoff for a bounded time, and turns a store that stays
busy into `StoreBusyError` with a message fit for a user. It never creates or migrates
anything, unlike `Workspace(home)`, which opens the store for writing. Saved flow versions
are plain files: read them with `mawb.versions.VersionStore`.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mawb.engine.store import StoreBusyError
from mawb.engine.workspace import default_home

if TYPE_CHECKING:
    from collections.abc import Iterator

RETRY_SECONDS = 10.0
_BUSY_WORDS = ("lock", "conflicting", "different configuration", "another process")


class WorkspaceReader:
    """The read side of one workspace (default `MAWB_HOME` or `./.mawb`)."""

    def __init__(self, home: str | Path | None = None,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.retry_seconds = retry_seconds

    @property
    def store_path(self) -> Path:
        return self.home / "store.duckdb"

    def has_store(self) -> bool:
        return self.store_path.is_file()

    # -- store -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short read-only connection; waits (bounded) while a writer holds the store.

        Raises FileNotFoundError when the workspace has no store yet and StoreBusyError when
        the store stayed busy for `retry_seconds`.
        """
        connection = self._connect()
        try:
            yield connection
        finally:
            connection.close()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if not self.has_store():
            raise FileNotFoundError(f"no store in workspace {self.home}")
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.02
        while True:
            try:
                connection = duckdb.connect(str(self.store_path), read_only=True)
                connection.execute("SET TimeZone = 'UTC'")
                return connection
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                if not _is_busy(error):
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        "the workspace store is busy with a long run; try again in a moment"
                    ) from None
            time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, 0.5)


def _is_busy(error: Exception) -> bool:
    text = str(error).lower()
    return any(word in text for word in _BUSY_WORDS)


__all__ = ["StoreBusyError", "WorkspaceReader"]
