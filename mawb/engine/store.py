"""The DuckDB store: one file per contact partition holding all state of a workspace.

Tables: contacts (typed columns inferred from the imported data, plus an `attributes` JSON
column for the rest), events, flows (immutable saved versions), enrollments, tokens (where each
contact is in a flow and when it wakes), outbox, messages, node_log (every transition),
trigger_state, manual_requests, crm_records and runs. The schema carries a version in `meta` and
is migrated forward by `SCHEMA_STEPS`.

DuckDB allows one writing process per file, so writers hold a connection only for a tick or a
step, and readers open short read-only connections with bounded retry: a busy store is
waited for, never reported to a user as a lock error.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

import duckdb

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

log = logging.getLogger(__name__)
T = TypeVar("T")

STORE_SCHEMA_VERSION = 9
# A lock wait longer than this is logged as a warning (see `retry_open`).
SLOW_WAIT_SECONDS = 1.0
CHECKPOINT_THRESHOLD = "1GB"
MEMORY_CHECKPOINT_THRESHOLD = "1TB"  # a throw-away in-memory store never checkpoints
# DuckDB's own default is 80% of RAM per open database, for every process that opens one. A
# store takes a deliberate share instead (`MAWB_MEMORY_LIMIT`, e.g. "4GB", overrides it) and
# spills what does not fit to a temp folder next to the store, never into the working folder.
MEMORY_SHARE = 0.4

# Engine-maintained engagement attributes every contact has (the response model and event
# effects update them; conditions such as `email_opens > 0` may read them).
ENGAGEMENT_COLUMNS: dict[str, str] = {
    "email_opens": "INTEGER DEFAULT 0",
    "email_clicks": "INTEGER DEFAULT 0",
    "last_open_at": "TIMESTAMP",
    "last_click_at": "TIMESTAMP",
    "converted": "BOOLEAN DEFAULT false",
    "converted_at": "TIMESTAMP",
    "unsubscribed": "BOOLEAN DEFAULT false",
    "do_not_contact": "BOOLEAN DEFAULT false",
    "attributes": "JSON",
}

_V1 = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS contacts (contact_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT, event_id VARCHAR, contact_id VARCHAR, name VARCHAR, ts TIMESTAMP,
    properties JSON, source VARCHAR, applied_at TIMESTAMP);
CREATE SEQUENCE IF NOT EXISTS event_seq;
CREATE TABLE IF NOT EXISTS flows (
    flow_id VARCHAR, version INTEGER, document JSON, saved_at TIMESTAMP, message VARCHAR);
CREATE TABLE IF NOT EXISTS enrollments (
    enrollment_id BIGINT, contact_id VARCHAR, flow_id VARCHAR, version INTEGER,
    trigger_node VARCHAR, status VARCHAR, entered_at TIMESTAMP, exited_at TIMESTAMP,
    exit_reason VARCHAR, entry_number INTEGER);
CREATE SEQUENCE IF NOT EXISTS enrollment_seq;
CREATE TABLE IF NOT EXISTS tokens (
    token_id BIGINT, enrollment_id BIGINT, contact_id VARCHAR, flow_id VARCHAR,
    version INTEGER, node_id VARCHAR, via VARCHAR, arrived_at TIMESTAMP, wake_at TIMESTAMP,
    deadline TIMESTAMP, iteration INTEGER, state VARCHAR);
CREATE SEQUENCE IF NOT EXISTS token_seq;
CREATE TABLE IF NOT EXISTS outbox (
    idempotency_key VARCHAR, flow_id VARCHAR, version INTEGER, contact_id VARCHAR,
    node_id VARCHAR, iteration INTEGER, channel VARCHAR, recipient VARCHAR, subject VARCHAR,
    body VARCHAR, payload JSON, status VARCHAR, attempts INTEGER, error VARCHAR,
    provider_ref VARCHAR, created_at TIMESTAMP, not_before TIMESTAMP, sent_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS messages (
    idempotency_key VARCHAR, flow_id VARCHAR, contact_id VARCHAR, node_id VARCHAR,
    channel VARCHAR, recipient VARCHAR, subject VARCHAR, body VARCHAR, sent_at TIMESTAMP,
    provider VARCHAR);
CREATE TABLE IF NOT EXISTS node_log (
    ts TIMESTAMP, flow_id VARCHAR, version INTEGER, enrollment_id BIGINT, contact_id VARCHAR,
    node_id VARCHAR, event VARCHAR, branch VARCHAR, reason VARCHAR);
CREATE TABLE IF NOT EXISTS trigger_state (
    flow_id VARCHAR, node_id VARCHAR, last_fired_at TIMESTAMP, last_event_seq BIGINT);
CREATE TABLE IF NOT EXISTS manual_requests (
    flow_id VARCHAR, node_id VARCHAR, contact_id VARCHAR, requested_at TIMESTAMP,
    consumed BOOLEAN DEFAULT false);
CREATE TABLE IF NOT EXISTS crm_records (
    record_key VARCHAR, contact_id VARCHAR, object VARCHAR, fields JSON, created_at TIMESTAMP,
    updated_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS runs (
    flow_id VARCHAR, tick_time TIMESTAMP, stage VARCHAR, started_at TIMESTAMP,
    finished_at TIMESTAMP, status VARCHAR);
CREATE TABLE IF NOT EXISTS applied (what VARCHAR, last_seq BIGINT);
"""

# v2: runs record the flow version, so a stage already done for (flow, version, tick time)
# is recognised and skipped when an interrupted tick or an Airflow task is run again.
_V2 = "ALTER TABLE runs ADD COLUMN IF NOT EXISTS version INTEGER;"

# v3: delivery. Outbox rows name their `connection` (NULL = sandbox) and `audience` (contact or
# internal); the dispatcher claims rows (`claim_id`, `lease_until`); `reason` is the code of a
# suppressed/skipped/deferred/dead row; `unrendered` marks rows the SQL renderer left to
# python-liquid; `response` keeps an API call's mapped answer. `suppressions` blocks addresses or
# contacts per channel; `http_cache` serves api rows whose same request was answered recently.
_V3 = """
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS connection VARCHAR;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS audience VARCHAR DEFAULT 'contact';
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS html VARCHAR;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS headers JSON;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS reason VARCHAR;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claim_id VARCHAR;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS lease_until TIMESTAMP;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS unrendered BOOLEAN DEFAULT false;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS response JSON;
CREATE TABLE IF NOT EXISTS suppressions (
    address VARCHAR, contact_id VARCHAR, channel VARCHAR, reason VARCHAR, source VARCHAR,
    "at" TIMESTAMP);
CREATE TABLE IF NOT EXISTS http_cache (
    request_key VARCHAR, node_id VARCHAR, response JSON, fetched_at TIMESTAMP);
"""
# v4: the live service. `spool_files` names every spool file loaded into this partition, in
# the transaction that inserted its rows (never loaded twice); `flow_lifecycle` records each
# draft/live/paused/stopped change (latest row wins); `service_commands` every command applied.
_V4 = """
CREATE TABLE IF NOT EXISTS spool_files (
    file_name VARCHAR PRIMARY KEY, loaded_at TIMESTAMP, records INTEGER, "partition" INTEGER,
    events INTEGER, contacts INTEGER, commands INTEGER, duplicates INTEGER,
    unknown_contacts INTEGER, rejected INTEGER);
CREATE TABLE IF NOT EXISTS flow_lifecycle (
    flow_id VARCHAR, state VARCHAR, version INTEGER, changed_at TIMESTAMP, changed_by VARCHAR,
    note VARCHAR);
CREATE TABLE IF NOT EXISTS service_commands (
    file_name VARCHAR, line INTEGER, command VARCHAR, flow_id VARCHAR, status VARCHAR,
    detail VARCHAR, requested_by VARCHAR, applied_at TIMESTAMP);
"""
# v5: flat cost over history. No schema change was needed for runs, events, enrollments and
# triggers: DuckDB prunes `NOT EXISTS` anti-joins and `seq >` / `ts =` filters by the probe
# keys and row-group statistics, and measured 6x cheaper than an ART-indexed INSERT .. ON
# CONFLICT at 100k new rows against 12M (index builds cost ~40 s per 12M keys, and memory).
# Finished outbox rows (sent, suppressed, skipped, dead) move to `outbox_done` in the
# transaction that finished them, so every rule and the dispatcher scan only open rows;
# `outbox_all` is every row (the monitor, analytics, status). A later step that adds an outbox
# column adds it to `outbox_done` too (the view unions by name).
_V5 = """
CREATE TABLE IF NOT EXISTS outbox_done AS SELECT * FROM outbox LIMIT 0;
INSERT INTO outbox_done BY NAME SELECT * FROM outbox
    WHERE status IN ('sent', 'suppressed', 'skipped', 'dead');
DELETE FROM outbox WHERE status IN ('sent', 'suppressed', 'skipped', 'dead');
CREATE OR REPLACE VIEW outbox_all AS
    SELECT * FROM outbox UNION ALL BY NAME SELECT * FROM outbox_done;
"""
# v6: hardening (bad-input bookkeeping).
_V6 = "ALTER TABLE runs ADD COLUMN IF NOT EXISTS error VARCHAR;"

# v7: versions in flight. The params each flow version ran with at each tick (defaults plus
# the overrides given for that version), so a version keeps its own params while its contacts
# drain after a newer one is published.
_V7 = """
CREATE TABLE IF NOT EXISTS run_params (
    flow_id VARCHAR, version INTEGER, tick_time TIMESTAMP, params JSON,
    PRIMARY KEY (flow_id, version, tick_time));
"""

# v8: merge state kept beside the tokens. A merge remembers which enrollments it has let
# through here instead of searching the whole node_log audit table at every tick (a tick's
# cost must not grow with history); rows of enrollments that finish are removed. Existing
# stores are filled from node_log for the enrollments still active.
_V8 = """
CREATE TABLE IF NOT EXISTS merge_passed (
    flow_id VARCHAR, enrollment_id BIGINT, contact_id VARCHAR, node_id VARCHAR);
INSERT INTO merge_passed
SELECT DISTINCT l.flow_id, l.enrollment_id, l.contact_id, l.node_id
FROM node_log l JOIN enrollments e ON e.enrollment_id = l.enrollment_id
 AND e.contact_id = l.contact_id
WHERE e.status = 'active' AND l.event = 'completed' AND l.branch = 'out'
  AND NOT EXISTS (SELECT 1 FROM merge_passed m WHERE m.enrollment_id = l.enrollment_id
                  AND m.node_id = l.node_id);
"""

# v9: how many times each contact has entered each flow, kept beside the enrollments. A
# trigger reads it for the contacts entering (reentry, `entry_number`) instead of counting
# their past enrollments, which a store that has run for a year holds by the tens of millions.
_V9 = """
CREATE TABLE IF NOT EXISTS flow_entries (flow_id VARCHAR, contact_id VARCHAR, entries INTEGER);
INSERT INTO flow_entries
SELECT e.flow_id, e.contact_id, count(*) FROM enrollments e
WHERE NOT EXISTS (SELECT 1 FROM flow_entries f WHERE f.flow_id = e.flow_id
                  AND f.contact_id = e.contact_id)
GROUP BY e.flow_id, e.contact_id;
"""

SCHEMA_STEPS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5, 6: _V6, 7: _V7,
                                8: _V8, 9: _V9}


class StoreBusyError(RuntimeError):
    """The store stayed locked by another writer for longer than the retry budget."""


class StoreSchemaError(ValueError):
    """The store's schema is not the one this mawb runs: older (and not migrated here, e.g.
    by a read-only dashboard: run `mawb migrate`) or newer (written by a later mawb)."""


def utc_naive(moment: datetime) -> datetime:
    """Store times as naive UTC (DuckDB TIMESTAMP); accept aware or naive-UTC input."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


# What DuckDB's errors say when another connection holds the file (another process's lock;
# `IN_PROCESS_WORDS`: this process has it open with other settings, e.g. a writer and a reader).
LOCK_WORDS = ("lock", "conflicting", "being used by another process")
IN_PROCESS_WORDS = ("different configuration", "another process")


def is_lock_error(error: Exception, words: tuple[str, ...] = LOCK_WORDS) -> bool:
    text = str(error).lower()
    return any(word in text for word in words)


def lock_holder(error: Exception) -> str:
    """Who holds the lock, as DuckDB's message names it ("PID 123"), else "another connection"."""
    found = re.search(r"\(PID (\d+)\)", str(error))
    return f"pid {found.group(1)}" if found else "another connection"


def retry_open(open_store: Callable[[], T], what: str, retry_seconds: float, busy_message: str,
               words: tuple[str, ...] = LOCK_WORDS) -> T:
    """`open_store()`, retried with jittered backoff while another connection holds the file.

    The one wait of every store open (engine writers, dashboard readers). A wait is logged:
    at INFO when it starts (who waits, who holds the lock, for how long at most) and when the
    lock came free after under a second, at WARNING when it took longer or ran out, then
    raising StoreBusyError(`busy_message`); a lock error is never retried silently."""
    started = time.monotonic()
    delay = 0.02
    holder = ""
    while True:
        try:
            opened_store = open_store()
        except (duckdb.IOException, duckdb.ConnectionException) as error:
            if not is_lock_error(error, words):
                raise
            waited = time.monotonic() - started
            if not holder:
                holder = lock_holder(error)
                log.info("%s: pid %d waits for the lock held by %s (up to %.0f s)",
                         what, os.getpid(), holder, retry_seconds)
            if waited > retry_seconds:
                log.warning("%s: pid %d gave up after waiting %.1f s for the lock held by %s",
                            what, os.getpid(), waited, holder)
                raise StoreBusyError(busy_message) from None
            time.sleep(delay * (1 + random.random()))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, 0.5)
            continue
        if holder:
            waited = time.monotonic() - started
            log.log(logging.WARNING if waited >= SLOW_WAIT_SECONDS else logging.INFO,
                    "%s: pid %d got the lock after waiting %.2f s (held by %s)",
                    what, os.getpid(), waited, holder)
        return opened_store


def memory_limit() -> str:
    """The DuckDB memory limit of one store connection (see MEMORY_SHARE)."""
    configured = os.environ.get("MAWB_MEMORY_LIMIT", "").strip()
    if configured:
        return configured
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GB"
    return f"{max(256, int(total * MEMORY_SHARE / 2**20))}MB"


def _configure(connection: duckdb.DuckDBPyConnection, temp_directory: Path) -> None:
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute(f"SET memory_limit = {literal_text(memory_limit())}")
    connection.execute(f"SET temp_directory = {literal_text(str(temp_directory))}")


def literal_text(value: str) -> str:
    """A SQL string literal (settings cannot be bound as parameters)."""
    return "'" + value.replace("'", "''") + "'"


def connect_memory(temp_directory: Path) -> duckdb.DuckDBPyConnection:
    """A store that lives in memory until its connection closes (simulations, benchmarks).

    `temp_directory` is where DuckDB may spill; the caller owns and removes it (DuckDB's own
    default for an in-memory database is `.tmp` in the working folder)."""
    connection = duckdb.connect(":memory:")
    _configure(connection, temp_directory)
    # An in-memory store checkpoints too (compressing its row groups) once a commit's changes
    # pass the threshold; for a store that is thrown away after the run that is pure cost
    # (measured: most of a 100k simulation's COMMIT time). What does not fit still spills.
    connection.execute(f"SET checkpoint_threshold = '{MEMORY_CHECKPOINT_THRESHOLD}'")
    return connection


def connect(path: Path, read_only: bool = False,
            retry_seconds: float = 30.0) -> duckdb.DuckDBPyConnection:
    """Open the store, waiting (`retry_open`) while another process holds it."""

    def open_store() -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(str(path), read_only=read_only)
        _configure(connection, path.with_name(path.name + ".tmp"))
        if not read_only:
            # Commits stay durable (the WAL is synced); only the rewrite of table data is
            # deferred to close instead of running inside the commits of a large tick.
            connection.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
        return connection

    return retry_open(open_store, f"store {path}", retry_seconds,
                      f"store {path} is busy; try again shortly")


@contextlib.contextmanager
def opened(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection, closed on exit (writers must not hold the file)."""
    connection = connect(path, read_only=read_only)
    try:
        yield connection
    finally:
        connection.close()


@contextlib.contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: committed when the block ends, rolled back (and re-raised) when the
    block or the commit raises, so a failed step never leaves half its writes."""
    connection.execute("BEGIN")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def schema_version(connection: duckdb.DuckDBPyConnection) -> int:
    """The store's schema version (0 for an empty file)."""
    found = connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' AND table_name = 'meta'"
    ).fetchone()
    if not (found and found[0]):
        return 0
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(connection: duckdb.DuckDBPyConnection, target: int = STORE_SCHEMA_VERSION) -> int:
    """Bring the store schema up to `target` (the latest by default), one committed step per
    version; returns the version found before. Tests build past versions with `target`."""
    connection.execute("CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR)")
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    found = int(row[0]) if row else 0
    if found > STORE_SCHEMA_VERSION:
        raise StoreSchemaError(f"store schema version {found} is newer than this mawb's "
                               f"{STORE_SCHEMA_VERSION}; upgrade mawb")
    for version in range(found + 1, target + 1):
        connection.execute("BEGIN")
        if SCHEMA_STEPS[version].strip():
            connection.execute(SCHEMA_STEPS[version])
        if version == 1:
            for column, ddl in ENGAGEMENT_COLUMNS.items():
                connection.execute(
                    f'ALTER TABLE contacts ADD COLUMN IF NOT EXISTS "{column}" {ddl}')
        connection.execute("DELETE FROM meta WHERE key = 'schema_version'")
        connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(version)])
        connection.execute("COMMIT")
    return found


def contact_columns(connection: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Column name -> DuckDB type of the contacts table."""
    rows = connection.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name = 'contacts' ORDER BY column_index"
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def contact_column_names(connection: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the contacts columns (steps ask every tick; information_schema is slow)."""
    description = connection.execute("SELECT * FROM main.contacts LIMIT 0").description
    return {column[0] for column in description or []}


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
