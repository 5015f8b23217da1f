"""What the Builder reads from the workspace's store, read once per store change.

Every canvas action reruns the Builder, but the store changes only when the engine, the
service or an import writes it. So each read here is cached under the store's stamp (size and
modification time of its files, write-ahead log included): a rerun with an unchanged store
costs a few `stat` calls instead of opening DuckDB. A change the page makes itself (a
lifecycle button) also drops the cache explicitly (`forget`), so the next run never shows the
state from before the click, whatever the file system's timestamp resolution.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from mawb.ui.reader import WorkspaceReader

Stamp = tuple[tuple[str, int, int], ...]


def store_stamp(home: Path) -> Stamp | None:
    """(name, size, mtime) of every store file and its write-ahead log; None without a store."""
    reader = WorkspaceReader(home)
    found = []
    for path in reader.store_paths():
        for file in (path, path.with_name(path.name + ".wal")):
            try:
                info = file.stat()
            except FileNotFoundError:
                continue
            found.append((file.name, info.st_size, info.st_mtime_ns))
    return tuple(found) if any(not name.endswith(".wal") for name, _, _ in found) else None


def contact_columns(home: Path) -> frozenset[str] | None:
    """The workspace's contact attributes, for the checks that need them (unknown columns,
    unknown Liquid variables); None while the workspace has no contacts."""
    stamp = store_stamp(home)
    return None if stamp is None else _columns_at(str(home), stamp)


def flow_state(home: Path, flow_id: str) -> str:
    """The flow's lifecycle state in the store (`draft` while the workspace has no store)."""
    stamp = store_stamp(home)
    return "draft" if stamp is None else _state_at(str(home), flow_id, stamp)


def forget() -> None:
    """Drop every cached read (after the page changed the store itself)."""
    _columns_at.clear()
    _state_at.clear()


@st.cache_data(max_entries=8, show_spinner=False)
def _columns_at(home: str, stamp: Stamp) -> frozenset[str] | None:
    from mawb.engine.store import StoreBusyError, contact_column_names

    try:
        with WorkspaceReader(Path(home)).read() as connection:
            row = connection.execute("SELECT count(*) FROM contacts").fetchone()
            columns = contact_column_names(connection)
    except (StoreBusyError, FileNotFoundError):
        return None
    return frozenset(columns) if row and row[0] else None


@st.cache_data(max_entries=32, show_spinner=False)
def _state_at(home: str, flow_id: str, stamp: Stamp) -> str:
    from mawb import analytics

    with WorkspaceReader(Path(home)).read() as connection:
        return str(analytics.service_health(connection, flow_id)["state"])
