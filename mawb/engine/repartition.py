"""`mawb repartition N`: move every contact, and all state about it, to a new partition count.

A contact's partition is a hash of its id modulo the count, so changing the count moves most
contacts. Every table with a `contact_id` column (contacts, events, enrollments, tokens,
outbox, messages, node_log, manual_requests, crm_records, and whatever later schema steps
add) is routed row by row; rows without a contact (address-only suppressions, say) go to
every new partition. Store-wide tables (flows, runs, run_params, spool bookkeeping...) are
the union of the old partitions' rows in every new one. Ids that are only unique within one
store are renumbered: enrollment and token ids globally (references follow), event `seq` per
new store in time order, with each event trigger's watermark moved so that exactly the events
it had seen count as seen; where that cannot be exact the command refuses and says why.

The new stores are built beside the old ones while the old ones are held open for writing
(nobody else can change them meanwhile), every table's row count is checked, and only then
are the old files moved to `backup/repartition-<time>/` and the new ones put in place, and the
manifest updated last. Run it with nothing else using the workspace.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from mawb.engine import manifest
from mawb.engine.layout import partition_numbers, store_paths
from mawb.engine.store import STORE_SCHEMA_VERSION, connect, migrate
from mawb.engine.workspace import Workspace

if TYPE_CHECKING:
    from pathlib import Path

STAGING = ".repartition"
# Ids unique only within one store, renumbered across the new stores: table -> id column.
GLOBAL_IDS = {"enrollments": "enrollment_id", "tokens": "token_id"}
# Store-wide tables whose rows are one per key (not per partition): the union keeps one.
SHARED_KEYS = {"runs": "flow_id, version, tick_time, stage"}


class RepartitionError(ValueError):
    """The workspace cannot be repartitioned as it is (the message says what to do)."""


@dataclass
class RepartitionReport:
    before: int
    after: int
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (before, after)
    backup: Path | None = None


def repartition(home: Path, count: int) -> RepartitionReport:
    """Move the workspace at `home` to `count` partitions (see the module docstring)."""
    if count < 1:
        raise RepartitionError(f"partitions must be at least 1, got {count}")
    workspace = Workspace(home)
    before = workspace.partitions
    if count == before:
        raise RepartitionError(f"workspace {home} already has {count} partition"
                               f"{'s' * (count != 1)}; nothing to do")
    for partition in range(before):  # every old store on the current schema first
        with workspace.connection(partition):
            pass
    staging = home / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    new_paths = store_paths(staging, count)
    for path in new_paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _closing(connect(path)) as connection:
            migrate(connection)
    report = RepartitionReport(before, count)
    coordinator = duckdb.connect()
    try:
        old = [f"o{p}" for p in range(before)]
        new = [f"n{q}" for q in range(count)]
        for alias, path in [*zip(old, store_paths(home, before), strict=True),
                            *zip(new, new_paths, strict=True)]:
            coordinator.execute(f"ATTACH ? AS {alias}", [str(path)])  # held: no other writer
        _copy(coordinator, old, new, count, report)
    finally:
        coordinator.close()
    report.backup = _swap(home, before, count, staging)
    manifest.update(home, partitions=count, schema_version=STORE_SCHEMA_VERSION)
    return report


class _closing:
    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        return self.connection

    def __exit__(self, *exc: object) -> None:
        self.connection.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _columns(connection: duckdb.DuckDBPyConnection, alias: str, table: str) -> dict[str, str]:
    return dict(connection.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? "
        "AND schema_name = 'main' AND table_name = ? ORDER BY column_index", [alias, table]
    ).fetchall())


def _tables(connection: duckdb.DuckDBPyConnection, alias: str) -> list[str]:
    return [row[0] for row in connection.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' "
        "ORDER BY table_name", [alias]).fetchall()]


def _union(old: list[str], table: str) -> str:
    """Every old partition's rows of `table`, with the partition number as `_p`."""
    return " UNION ALL BY NAME ".join(
        f"SELECT {index} AS _p, * FROM {alias}.main.{_q(table)}"
        for index, alias in enumerate(old))


def _count(connection: duckdb.DuckDBPyConnection, aliases: list[str], table: str) -> int:
    total = 0
    for alias in aliases:
        row = connection.execute(f"SELECT count(*) FROM {alias}.main.{_q(table)}").fetchone()
        total += int(row[0]) if row else 0
    return total


def _copy(connection: duckdb.DuckDBPyConnection, old: list[str], new: list[str], count: int,
          report: RepartitionReport) -> None:
    # Autocommit: DuckDB writes one attached database per transaction, and a failure leaves
    # only the staging folder behind (built again from scratch next time).
    _route(connection, old, count)
    _id_maps(connection, old)
    tables = {table for alias in old for table in _tables(connection, alias)}
    for table in sorted(tables - {"meta"}):
        _widen(connection, old, new, table)
        columns = _columns(connection, old[0], table) or _columns(connection, "n0", table)
        if table == "trigger_state":
            continue  # after events: watermarks follow the renumbered events
        if "contact_id" in columns:
            _copy_routed(connection, old, new, table)
            expected = _count(connection, old, table) + _unrouted(connection, old, table) * (
                len(new) - 1)
        else:
            _copy_shared(connection, old, new, table)
            row = connection.execute(
                f"SELECT count(*) FROM ({_shared_rows(old, table)})").fetchone()
            expected = (int(row[0]) if row else 0) * len(new)
        after = _count(connection, new, table)
        if after != expected:
            raise RepartitionError(f"table {table}: {after} rows after, {expected} expected; "
                                   "nothing was changed")
        report.rows[table] = (_count(connection, old, table), after)
    if "trigger_state" in tables:
        _copy_trigger_state(connection, old, new)
        report.rows["trigger_state"] = (_count(connection, old, "trigger_state"),
                                        _count(connection, new, "trigger_state"))
    _restart_sequences(connection, new)


def _route(connection: duckdb.DuckDBPyConnection, old: list[str], count: int) -> None:
    ids: set[str] = set()
    for alias in old:
        for table in _tables(connection, alias):
            if "contact_id" in _columns(connection, alias, table):
                ids |= {row[0] for row in connection.execute(
                    f"SELECT DISTINCT contact_id FROM {alias}.main.{_q(table)} "
                    "WHERE contact_id IS NOT NULL").fetchall()}
    frame = pd.DataFrame({"contact_id": sorted(ids)}, dtype=object)
    frame["new_p"] = partition_numbers(frame["contact_id"], count).astype("int64")
    connection.register("route_frame", frame)
    connection.execute("CREATE TEMP TABLE route AS SELECT * FROM route_frame")
    connection.unregister("route_frame")


def _id_maps(connection: duckdb.DuckDBPyConnection, old: list[str]) -> None:
    """(old partition, old id) -> new id, unique across every new store."""
    for table, column in GLOBAL_IDS.items():
        connection.execute(
            f"CREATE TEMP TABLE map_{column} AS SELECT _p, {column} AS old_id, "
            f"row_number() OVER (ORDER BY _p, {column}) AS new_id "
            f"FROM ({_union(old, table)}) WHERE {column} IS NOT NULL")
    # events: seq again per new store, in time order, so triggers see them as before
    connection.execute(
        f"CREATE TEMP TABLE map_seq AS SELECT e._p, e.seq AS old_id, r.new_p, "
        f"row_number() OVER (PARTITION BY r.new_p ORDER BY e.ts, e._p, e.seq) AS new_id "
        f"FROM ({_union(old, 'events')}) e JOIN route r USING (contact_id)")


def _widen(connection: duckdb.DuckDBPyConnection, old: list[str], new: list[str],
           table: str) -> None:
    """Columns some old store has (added attributes, say) exist in every new store."""
    wanted: dict[str, str] = {}
    for alias in old:
        for name, dtype in _columns(connection, alias, table).items():
            wanted.setdefault(name, dtype)
    for alias in new:
        existing = _columns(connection, alias, table)
        if not existing:
            columns = ", ".join(f"{_q(n)} {t}" for n, t in wanted.items())
            connection.execute(f"CREATE TABLE {alias}.main.{_q(table)} ({columns})")
            continue
        for name, dtype in wanted.items():
            if name not in existing:
                connection.execute(
                    f"ALTER TABLE {alias}.main.{_q(table)} ADD COLUMN {_q(name)} {dtype}")


def _renumbered(columns: dict[str, str], table: str) -> tuple[str, str]:
    """The select list and joins that swap store-local ids for the new ones."""
    swapped, joins = [], []
    for column in GLOBAL_IDS.values():
        if column in columns:
            swapped.append(column)
            joins.append(f"LEFT JOIN map_{column} m_{column} ON m_{column}._p = s._p "
                         f"AND m_{column}.old_id = s.{column}")
    if table == "events":
        swapped.append("seq")
        joins.append("LEFT JOIN map_seq m_seq ON m_seq._p = s._p AND m_seq.old_id = s.seq")
    select = "s.* EXCLUDE (" + ", ".join(["_p", *swapped]) + ")"
    select += "".join(f", m_{column}.new_id AS {column}" for column in swapped)
    return select, " ".join(joins)


def _copy_routed(connection: duckdb.DuckDBPyConnection, old: list[str], new: list[str],
                 table: str) -> None:
    select, joins = _renumbered(_columns(connection, old[0], table), table)
    for q, alias in enumerate(new):
        connection.execute(
            f"INSERT INTO {alias}.main.{_q(table)} BY NAME SELECT {select} "
            f"FROM ({_union(old, table)}) s {joins} "
            f"LEFT JOIN route r ON r.contact_id = s.contact_id "
            f"WHERE r.new_p = {q} OR s.contact_id IS NULL")


def _unrouted(connection: duckdb.DuckDBPyConnection, old: list[str], table: str) -> int:
    row = connection.execute(
        f"SELECT count(*) FROM ({_union(old, table)}) WHERE contact_id IS NULL").fetchone()
    return int(row[0]) if row else 0


def _copy_shared(connection: duckdb.DuckDBPyConnection, old: list[str], new: list[str],
                 table: str) -> None:
    keyed = connection.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE database_name = ? AND table_name = ? "
        "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')", [new[0], table]).fetchone()
    verb = "INSERT OR IGNORE" if keyed and keyed[0] else "INSERT"
    for alias in new:
        connection.execute(
            f"{verb} INTO {alias}.main.{_q(table)} BY NAME {_shared_rows(old, table)}")


def _shared_rows(old: list[str], table: str) -> str:
    if table in SHARED_KEYS:
        return (f"SELECT DISTINCT ON ({SHARED_KEYS[table]}) * EXCLUDE (_p) "
                f"FROM ({_union(old, table)}) ORDER BY {SHARED_KEYS[table]}, _p")
    return f"SELECT DISTINCT * EXCLUDE (_p) FROM ({_union(old, table)})"


def _copy_trigger_state(connection: duckdb.DuckDBPyConnection, old: list[str],
                        new: list[str]) -> None:
    """One row per trigger and new store: the latest firing, and the watermark under which
    lie exactly the (renumbered) events the trigger had seen in their old store."""
    connection.execute(
        f"""
        CREATE TEMP TABLE seen AS
        SELECT k.flow_id, k.node_id, m.new_p, m.new_id,
               coalesce(e.seq <= coalesce(t.last_event_seq, 0)
                        AND e.ts <= coalesce(t.last_fired_at, TIMESTAMP '1970-01-01'),
                        false) AS was_seen
        FROM (SELECT DISTINCT flow_id, node_id FROM ({_union(old, 'trigger_state')})) k
        CROSS JOIN ({_union(old, 'events')}) e
        JOIN map_seq m ON m._p = e._p AND m.old_id = e.seq
        LEFT JOIN ({_union(old, 'trigger_state')}) t
          ON t._p = e._p AND t.flow_id = k.flow_id AND t.node_id = k.node_id
        """)
    connection.execute(
        f"""
        CREATE TEMP TABLE watermark AS
        SELECT flow_id, node_id, max(last_fired_at) AS last_fired_at,
               min(last_fired_at) AS first_fired_at
        FROM ({_union(old, 'trigger_state')}) GROUP BY 1, 2
        """)
    for q, alias in enumerate(new):
        connection.execute(
            f"""
            INSERT INTO {alias}.main.trigger_state
            SELECT w.flow_id, w.node_id, w.last_fired_at,
                   (SELECT coalesce(max(s.new_id), 0) FROM seen s WHERE s.flow_id = w.flow_id
                    AND s.node_id = w.node_id AND s.new_p = {q} AND s.was_seen)
            FROM watermark w
            """)
        wrong = connection.execute(
            f"""
            SELECT t.flow_id, t.node_id, count(*) FROM {alias}.main.trigger_state t
            JOIN seen s ON s.flow_id = t.flow_id AND s.node_id = t.node_id AND s.new_p = {q}
            JOIN map_seq m ON m.new_p = {q} AND m.new_id = s.new_id
            JOIN ({_union(old, 'events')}) e ON e._p = m._p AND e.seq = m.old_id
            WHERE (s.new_id <= t.last_event_seq AND e.ts <= t.last_fired_at) <> s.was_seen
            GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 1
            """).fetchone()
        if wrong:
            raise RepartitionError(
                f"trigger {wrong[1]} of flow {wrong[0]}: its partitions have seen different "
                f"events ({wrong[2]} would count wrongly after the move); tick the flow once "
                "(`mawb run FLOW --once`) so every partition is caught up, then repartition; "
                "nothing was changed")


def _restart_sequences(connection: duckdb.DuckDBPyConnection, new: list[str]) -> None:
    for alias in new:
        row = connection.execute(
            f"SELECT coalesce(max(seq), 0) + 1 FROM {alias}.main.events").fetchone()
        start = int(row[0]) if row else 1
        connection.execute(f"DROP SEQUENCE IF EXISTS {alias}.main.event_seq")
        connection.execute(f"CREATE SEQUENCE {alias}.main.event_seq START WITH {start}")


def _swap(home: Path, before: int, count: int, staging: Path) -> Path:
    """Old stores to backup/, new ones in place (the manifest is updated after)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    backup = home / "backup" / f"repartition-{stamp}"
    backup.mkdir(parents=True)
    for path in store_paths(home, before):
        if path.exists():
            target = backup / path.relative_to(home)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                wal.rename(target.with_name(target.name + ".wal"))
    for source, target in zip(store_paths(staging, count), store_paths(home, count),
                              strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    folder = home / "partitions"
    if count == 1 and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    return backup


__all__ = ["RepartitionError", "RepartitionReport", "repartition"]
