"""Read-only access to a workspace for dashboards: short connections, bounded retry.

DuckDB lets one process write a store file, and while it writes no other process can even
open the file read-only (in the same process, a read-only open fails while a writing
connection is open). The engine holds its connection only for a tick, so a dashboard that
waits a moment always gets in. This module is that wait: every read opens a fresh read-only
connection, retries with jittered backoff for a bounded time, and turns a store that stays
busy into `StoreBusyError` with a message fit for a user. It never creates or migrates
anything, unlike `Workspace(home)`, which opens the store for writing. Saved flow versions
are plain files: read them with `mawb.versions.VersionStore`.

A partitioned workspace (the Airflow/Kubernetes layout, `partitions/<p>.duckdb`, count from
`workspace.json`) is read as one store: every partition file is attached read-only to an
in-memory connection whose `main` tables are views over the union of the partitions, so the
dashboard queries run unchanged and count every contact once. A store on an older schema is
refused ("run `mawb migrate`"): a reader never writes, and never runs on a schema it was not
written for.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mawb.engine import manifest
from mawb.engine.layout import default_home
from mawb.engine.outbox import ALL_ROWS, ALL_ROWS_QUERY, DONE_TABLE
from mawb.engine.store import STORE_SCHEMA_VERSION, StoreBusyError, StoreSchemaError

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
    def partitions(self) -> int:
        """The workspace's partition count (manifest, else what its files show)."""
        return manifest.resolve(self.home, None)

    @property
    def store_path(self) -> Path:
        """The single store of an unpartitioned workspace."""
        return self.home / "store.duckdb"

    def store_paths(self) -> list[Path]:
        count = self.partitions
        if count == 1:
            return [self.store_path]
        return [self.home / "partitions" / f"{p}.duckdb" for p in range(count)]

    def has_store(self) -> bool:
        return any(path.is_file() for path in self.store_paths())

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
        paths = [path for path in self.store_paths() if path.is_file()]
        if not paths:
            raise FileNotFoundError(f"no store in workspace {self.home}")
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.02
        while True:
            try:
                return _open(paths, len(self.store_paths()) > 1)
            except (duckdb.IOException, duckdb.ConnectionException) as error:
                if not _is_busy(error):
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusyError(
                        "the workspace store is busy with a long run; try again in a moment"
                    ) from None
            time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, 0.5)


def _open(paths: list[Path], partitioned: bool) -> duckdb.DuckDBPyConnection:
    """One store read-only, or every partition attached read-only behind union views."""
    if not partitioned:
        connection = duckdb.connect(str(paths[0]), read_only=True)
        connection.execute("SET TimeZone = 'UTC'")
        try:
            _check_schema(connection, "main", paths[0])
        except BaseException:
            connection.close()
            raise
        return connection
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        tables: dict[str, list[str]] = {}
        for index, path in enumerate(paths):
            alias = f"p{index}"
            connection.execute(f"ATTACH ? AS {alias} (READ_ONLY)", [str(path)])
            _check_schema(connection, alias, path)
            for (table,) in connection.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ? "
                "AND schema_name = 'main' ORDER BY table_name", [alias]
            ).fetchall():
                tables.setdefault(table, []).append(alias)
        for table, aliases in tables.items():
            connection.execute(f"CREATE TEMP VIEW {_identifier(table)} AS "
                               f"{_union(connection, table, aliases)}")
        if DONE_TABLE in tables:  # every outbox row, open or finished, over the unions above
            connection.execute(f"CREATE TEMP VIEW {ALL_ROWS} AS {ALL_ROWS_QUERY}")
    except BaseException:
        connection.close()
        raise
    return connection


def _union(connection: duckdb.DuckDBPyConnection, table: str, aliases: list[str]) -> str:
    """Rows about contacts: every partition's (each contact lives in one). Store-wide rows
    (flows, lifecycle, runs...): the distinct ones, with `rowid` kept as a column, since
    queries over them break ties by it."""
    name = _identifier(table)
    about_contacts = connection.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
        "AND table_name = ? AND column_name = 'contact_id'", [aliases[0], table]).fetchone()
    if about_contacts and about_contacts[0]:
        return " UNION ALL BY NAME ".join(f"SELECT * FROM {a}.main.{name}" for a in aliases)
    return " UNION BY NAME ".join(f"SELECT *, rowid AS rowid FROM {a}.main.{name}"
                                  for a in aliases)


def _check_schema(connection: duckdb.DuckDBPyConnection, database: str, path: Path) -> None:
    found = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "AND table_name = 'meta'", [_database_name(connection, database)]
    ).fetchone()
    version = 0
    if found and found[0]:
        row = connection.execute(
            f"SELECT value FROM {_identifier(_database_name(connection, database))}.main.meta "
            "WHERE key = 'schema_version'"
        ).fetchone()
        version = int(row[0]) if row else 0
    if version != STORE_SCHEMA_VERSION:
        raise StoreSchemaError(
            f"store {path} has schema version {version}, this mawb reads "
            f"{STORE_SCHEMA_VERSION}; run `mawb migrate` (it takes the store briefly)"
            if version < STORE_SCHEMA_VERSION else
            f"store {path} has schema version {version}, newer than this mawb's "
            f"{STORE_SCHEMA_VERSION}; upgrade mawb")


def _database_name(connection: duckdb.DuckDBPyConnection, alias: str) -> str:
    if alias != "main":
        return alias
    row = connection.execute("SELECT current_database()").fetchone()
    return str(row[0]) if row else alias


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _is_busy(error: Exception) -> bool:
    text = str(error).lower()
    return any(word in text for word in _BUSY_WORDS)


__all__ = ["StoreBusyError", "StoreSchemaError", "WorkspaceReader"]
