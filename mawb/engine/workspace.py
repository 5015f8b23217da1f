"""A workspace: the store files, saved flow versions and ingest spool of one mawb installation.

This is the engine's public face. `tick` advances a flow by one tick on every partition:
`ingest` (spool + event effects) -> every node in topological order -> `dispatch` (goal,
outbox, completions). `step` runs one of those stages for one partition at an explicit tick
time — the Airflow tasks do exactly that — and running every stage in order gives exactly what
`tick` gives. Each stage is one transaction that also records itself in `runs`, and a stage
already recorded for that flow version and tick time is skipped: a crash anywhere loses
nothing, and running the interrupted tick again repeats nothing. `session` keeps connections
open across many ticks for a process that owns the workspace (simulations, benchmarks).

Layout (default `./.mawb`, or `MAWB_HOME`): `store.duckdb` (one partition) or
`partitions/<p>.duckdb`, `flows/<flow id>/v<version>.json` (immutable versions), `spool/`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd
from pydantic import ValidationError

from mawb import graph, nodes
from mawb.engine import enroll, lifecycle, manifest, outbox, spool
from mawb.engine.cohort import Cohort, apply, ended_paths, literal, prepare, quote
from mawb.engine.plan import TickPlan
from mawb.engine.steps import EVERY_TICK, STEPS, StepError
from mawb.engine.store import (
    STORE_SCHEMA_VERSION,
    connect,
    connect_memory,
    contact_columns,
    migrate,
    schema_version,
    transaction,
    utc_naive,
)
from mawb.expr import ConditionError, to_sql
from mawb.model import Flow, load
from mawb.nodes.base import Category
from mawb.query import QueryError
from mawb.validate import SLUG, FlowInvalidError, validate_flow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

CONSENT_COLUMNS = {"email": "email_consent", "sms": "sms_consent", "push": "push_consent"}


@dataclasses.dataclass(frozen=True)
class ContactImport:
    """What an import of contacts did: contacts read, and per channel whose consent column the
    input lacked, how many imported contacts have no consent for it (nothing is sent there)."""

    count: int
    without_consent: dict[str, int]


@dataclasses.dataclass(frozen=True)
class EventImport:
    """What an ingest did: events new to the store, and events already loaded before."""

    new: int
    already: int


INGEST = "_ingest"
DISPATCH = "_dispatch"
# Advances every other version of the flow that still holds contacts (see `Workspace.tick`).
DRAIN = "_drain"
# Every stage of one partition's tick in one call (`mawb step --node _tick`, the coarse task).
TICK = "_tick"

# How each event name changes engagement attributes when its time comes.
EVENT_EFFECTS = """
UPDATE contacts SET
    email_opens = coalesce(email_opens, 0) + x.opens,
    email_clicks = coalesce(email_clicks, 0) + x.clicks,
    last_open_at = greatest(last_open_at, x.last_open),
    last_click_at = greatest(last_click_at, x.last_click),
    converted = coalesce(converted, false) OR x.conversions > 0,
    converted_at = coalesce(converted_at, x.first_conversion),
    unsubscribed = coalesce(unsubscribed, false) OR x.unsubscribes > 0
FROM (
    SELECT contact_id,
           count(*) FILTER (name = 'email_open') AS opens,
           count(*) FILTER (name = 'email_click') AS clicks,
           max(ts) FILTER (name = 'email_open') AS last_open,
           max(ts) FILTER (name = 'email_click') AS last_click,
           count(*) FILTER (name IN ('purchase', 'conversion')) AS conversions,
           min(ts) FILTER (name IN ('purchase', 'conversion')) AS first_conversion,
           count(*) FILTER (name IN ('unsubscribe', 'complaint')) AS unsubscribes
    FROM events WHERE applied_at IS NULL AND ts <= ? GROUP BY contact_id) x
WHERE contacts.contact_id = x.contact_id
"""


def default_home() -> Path:
    return Path(os.environ.get("MAWB_HOME", ".mawb"))


class Workspace:
    """State of one mawb installation; cheap to create, opens connections per operation."""

    def __init__(self, home: str | Path | None = None, partitions: int | None = None) -> None:
        """Open (creating if need be) the workspace at `home`.

        The partition count is the manifest's (`workspace.json`, written when the workspace is
        created, with `partitions` or 1); a different explicit `partitions` raises
        ManifestError rather than splitting contacts across two layouts."""
        self.home = Path(home) if home is not None else default_home()
        self.home.mkdir(parents=True, exist_ok=True)
        self.manifest = manifest.ensure(self.home, partitions)
        self.partitions = self.manifest.partitions
        self._held: dict[int, duckdb.DuckDBPyConnection] = {}
        self._in_memory = False  # see `in_memory`: the held connection is the whole store
        # Stores are migrated on first use, one partition at a time: an Airflow task that steps
        # partition 0 must never wait for the writer of partition 1.
        self._migrated: set[int] = set()
        # See `steady`: per-run answers only other writers could change, read once.
        self._steady: dict[tuple[Any, ...], Any] | None = None

    # -- files -------------------------------------------------------------------------------
    def store_path(self, partition: int = 0) -> Path:
        if self.partitions == 1:
            return self.home / "store.duckdb"
        folder = self.home / "partitions"
        folder.mkdir(exist_ok=True)
        return folder / f"{partition}.duckdb"

    def connection(self, partition: int = 0, read_only: bool = False) -> _Connection:
        """A short-lived connection, or the one a `session` holds for this partition."""
        if self._in_memory and partition not in self._held:
            raise RuntimeError(f"the in-memory store of {self.home} is closed")
        path = self.store_path(partition)
        if partition not in self._migrated:
            self._migrate(partition, read_only)
        return _Connection(path, read_only, self._held.get(partition))

    def _migrate(self, partition: int, read_only: bool) -> None:
        """Bring one store to the current schema before its first use, and only then mark it.

        A read-only caller looks first; an old (or missing) store is migrated through a brief
        writable connection, so a reader never runs new code on an old schema."""
        path = self.store_path(partition)
        held = self._held.get(partition)
        if read_only and held is None and path.exists():
            with _Connection(path, True) as connection:
                current = schema_version(connection) == STORE_SCHEMA_VERSION
            if current:
                self._migrated.add(partition)
                return
        with _Connection(path, False, held) as connection:
            migrate(connection)
        self._migrated.add(partition)

    @classmethod
    def in_memory(cls, home: str | Path,
                  connection: duckdb.DuckDBPyConnection | None = None) -> Workspace:
        """A one-partition workspace whose store lives in memory until `close()`.

        For simulations: no file is opened per tick, nothing is left behind. `home` still
        holds the saved flow versions (and DuckDB's spill folder); the caller removes it.
        `connection` is an in-memory store prepared elsewhere (e.g. a copy of a population)."""
        workspace = cls(home)
        workspace._held[0] = connection or connect_memory(workspace.home / ".tmp")
        workspace._in_memory = True
        return workspace

    def close(self) -> None:
        """Close the connections an `in_memory` workspace holds (its store is gone after)."""
        held, self._held = self._held, {}
        for connection in held.values():
            connection.close()

    @contextlib.contextmanager
    def session(self) -> Iterator[Workspace]:
        """Hold one writable connection per partition until the block ends.

        Opening and closing a DuckDB file costs tens of milliseconds, more than a small tick;
        a process that owns the workspace for a while (a simulation, a benchmark, a test)
        keeps it open instead. Every stage is still its own transaction, so crash safety is
        unchanged; other processes wait (with bounded retry) until the session ends.
        """
        if self._held:
            yield self
            return
        try:
            for partition in range(self.partitions):
                self._held[partition] = connect(self.store_path(partition))
                if partition not in self._migrated:
                    migrate(self._held[partition])
                    self._migrated.add(partition)
            yield self
        finally:
            held, self._held = self._held, {}
            for connection in held.values():
                connection.close()

    @contextlib.contextmanager
    def steady(self) -> Iterator[Workspace]:
        """Within the block only this process's ticks change the store (a simulation on its own
        store), so what only other writers change is read once instead of every tick: a flow's
        lifecycle (pause, stop), the params recorded for it, and that no other version holds
        contacts (nobody new enters another version, so an empty answer stays empty)."""
        self._steady = {}
        try:
            yield self
        finally:
            self._steady = None

    def _once(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        """`compute()`, or within `steady` its first answer for `key`."""
        if self._steady is None:
            return compute()
        if key not in self._steady:
            self._steady[key] = compute()
        return self._steady[key]

    def flow_path(self, flow_id: str, version: int) -> Path:
        if not SLUG.match(flow_id):  # ids are slugs everywhere: no path outside flows/
            raise ValueError(f"flow id {flow_id!r} must be a lower-case slug")
        return self.home / "flows" / flow_id / f"v{version}.json"

    # -- data --------------------------------------------------------------------------------
    def import_contacts(self, source: Any, consent: Iterable[str] = ()) -> int:
        """Validate then load contacts (upsert by contact_id), all or nothing; see
        `load_contacts`. Returns the number of contacts in the input."""
        return self.load_contacts(source, consent).count

    def load_contacts(self, source: Any, consent: Iterable[str] = (),
                      types: dict[str, str] | None = None) -> ContactImport:
        """Validate then upsert contacts by contact_id in every partition, all or nothing.

        Existing contacts get only the columns the input has (a list without `unsubscribed`
        never re-subscribes anyone). `consent` (e.g. ``["email"]``) records that the list was
        collected with consent for those channels: their `<channel>_consent` becomes true;
        `types` declares the kinds of the input's own columns (`mawb.intake.read_contacts`)."""
        from mawb.intake import read_contacts

        frame = read_contacts(source, types)
        given = list(frame.attrs.get("given") or frame.columns)
        for channel in consent:
            column = CONSENT_COLUMNS.get(channel)
            if column is None:
                raise ValueError(f"--consent {channel}: use {', '.join(CONSENT_COLUMNS)}")
            frame[column] = True
            given.append(column)
        self._write_all(frame, lambda connection, part: upsert_contacts(connection, part, given))
        missing = {channel: column for channel, column in CONSENT_COLUMNS.items()
                   if column not in given
                   and (channel == "email" or (channel == "sms" and "phone" in given))}
        return ContactImport(len(frame), self._without_consent(frame, missing))

    def import_events(self, source: Any, source_name: str = "import") -> int:
        """Validate then append events; returns how many were new (see `load_events`)."""
        return self.load_events(source, source_name).new

    def load_events(self, source: Any, source_name: str = "import") -> EventImport:
        """Validate then append events in every partition, all or nothing. Events whose
        event_id is already loaded are skipped and counted, so a re-ingest says so."""
        from mawb.intake import read_events

        frame = read_events(source)
        frame = frame.assign(ts=pd.to_datetime(frame["ts"], utc=True).dt.tz_localize(None))
        new = [0]

        def insert(connection: duckdb.DuckDBPyConnection, part: pd.DataFrame) -> None:
            connection.register("incoming", part)
            row = connection.execute(
                "SELECT count(*) FROM incoming WHERE event_id NOT IN (SELECT event_id FROM events)"
            ).fetchone()
            new[0] += int(row[0]) if row else 0
            connection.execute(
                "INSERT INTO events SELECT nextval('event_seq'), event_id, contact_id, name, "
                "ts, properties, ?, NULL FROM incoming "
                "WHERE event_id NOT IN (SELECT event_id FROM events)",
                [source_name],
            )
            connection.unregister("incoming")

        self._write_all(frame, insert)
        return EventImport(new[0], len(frame) - new[0])

    def _write_all(self, frame: pd.DataFrame,
                   write: Callable[[duckdb.DuckDBPyConnection, pd.DataFrame], None]) -> None:
        """Write every partition's share in its own open transaction, then commit them all.

        DuckDB has no transaction across files, so nothing commits until every partition's
        writes succeeded: a bad value anywhere rolls back everything. Only a crash between the
        commits themselves (milliseconds) can leave some partitions written; an import is an
        idempotent upsert (contacts by id, events by event_id), so running it again completes
        it."""
        with contextlib.ExitStack() as stack:
            opened = []
            try:
                for partition, part in self._split(frame):
                    connection = stack.enter_context(self.connection(partition))
                    connection.execute("BEGIN")
                    opened.append(connection)
                    write(connection, part)
            except BaseException as error:
                for connection in opened:
                    connection.execute("ROLLBACK")
                if isinstance(error, duckdb.DataError | duckdb.ConversionException):
                    raise _storage_problem(error) from None
                raise
            for connection in opened:
                connection.execute("COMMIT")

    def _without_consent(self, frame: pd.DataFrame, missing: dict[str, str]) -> dict[str, int]:
        """Per channel whose consent column the input lacked: imported contacts without it."""
        found: dict[str, int] = {}
        for channel, column in missing.items():
            total = 0
            for partition, part in self._split(frame):
                with self.connection(partition, read_only=True) as connection:
                    row = connection.execute(
                        f"SELECT count(*) FROM contacts WHERE contact_id IN (SELECT unnest(?)) "
                        f"AND NOT coalesce({quote(column)}, false)",
                        [part["contact_id"].tolist()]).fetchone()
                    total += int(row[0]) if row else 0
            if total:
                found[channel] = total
        return found

    def _split(self, frame: pd.DataFrame) -> list[tuple[int, pd.DataFrame]]:
        if self.partitions == 1:
            return [(0, frame)]
        keys = frame["contact_id"].astype(str)
        buckets = pd.util.hash_pandas_object(keys, index=False).to_numpy() % self.partitions
        return [(p, frame[buckets == p]) for p in range(self.partitions)]

    def partition_of(self, contact_id: str) -> int:
        if self.partitions == 1:
            return 0
        value = pd.util.hash_pandas_object(pd.Series([contact_id]), index=False).iloc[0]
        return int(value % self.partitions)

    @staticmethod
    def _add_columns(connection: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
        existing = {r[0] for r in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'contacts'"
        ).fetchall()}
        # Describe the whole frame: DuckDB infers object columns from their values, so an
        # empty head would type them "NULL". An all-null column becomes VARCHAR (a flow that
        # writes numbers into it retypes it at deploy, see _ensure_written_columns).
        connection.register("shape", frame)
        types = dict(connection.execute("SELECT column_name, column_type FROM "
                                        "(DESCRIBE SELECT * FROM shape)").fetchall())
        connection.unregister("shape")
        for column in frame.columns:
            if column not in existing:
                dtype = "VARCHAR" if types[column] == '"NULL"' else types[column]
                connection.execute(f"ALTER TABLE contacts ADD COLUMN {quote(column)} {dtype}")

    # -- flows -------------------------------------------------------------------------------
    def deploy(self, flow: Flow, partitions: Iterable[int] | None = None) -> Flow:
        """Save an immutable flow version (refusing invalid flows) and prepare its columns.

        `partitions` limits the column preparation to those stores (a partition's step
        prepares its own); by default every partition is prepared."""
        report = validate_flow(flow)
        if not report.valid:
            raise FlowInvalidError(flow.id, report)
        path = self.flow_path(flow.id, flow.version)
        document = flow.model_copy(update={"ui": flow.ui.model_copy(update={"positions": {}})})
        if path.exists():
            saved = load(path)
            if saved.model_dump(exclude={"ui"}) != document.model_dump(exclude={"ui"}):
                raise ValueError(
                    f"flow {flow.id} version {flow.version} already exists with different "
                    "content; saved versions are immutable, bump the version"
                )
        else:
            flow.save(path)
        for partition in range(self.partitions) if partitions is None else partitions:
            with self.connection(partition) as connection:
                _ensure_written_columns(connection, flow)
        return flow

    def versions(self, flow_id: str) -> list[int]:
        if not SLUG.match(flow_id):
            return []
        folder = self.home / "flows" / flow_id
        return sorted(int(p.stem[1:]) for p in folder.glob("v*.json")) if folder.is_dir() else []

    def load_flow(self, flow_id: str, version: int | None = None) -> Flow:
        version = version or max(self.versions(flow_id), default=0)
        path = self.flow_path(flow_id, version)
        if not path.exists():
            raise KeyError(f"flow {flow_id!r} version {version} is not deployed")
        return load(path)

    # -- running -------------------------------------------------------------------------------
    def stages(self, flow: Flow) -> list[str]:
        """A tick's stages in order; running them one by one (`step`) is exactly `tick`."""
        return [INGEST, *graph.topological_order(flow), DISPATCH, DRAIN]

    def tick(self, flow: Flow, now: datetime, params: dict[str, Any] | None = None,
             load_spool: bool = True) -> None:
        """Advance `flow` by one tick on every partition, then every other live version.

        `params` override `flow`'s own params and apply to that version only; they are
        recorded in `run_params`. Contacts on other versions of the flow (entered before a
        newer version was published, or still held by a removed node) move on in the DRAIN
        stage, with the params their version last ran with, and no new contact enters them.
        """
        now = utc_naive(now)
        if load_spool:
            self.load_spool()
        for partition in range(self.partitions):
            self._tick_partition(flow, now, partition, params)

    def _tick_partition(self, flow: Flow, now: datetime, partition: int,
                        params: dict[str, Any] | None) -> None:
        with self.connection(partition) as connection:
            self._once(("params", partition, flow.id, flow.version, as_json(params)),
                       lambda: record_params(connection, flow, now, params))
            held = self._once(("held", partition, flow.id),
                              lambda: lifecycle.held(connection, flow.id))
            # Within `steady`, a previous tick that ran to its end leaves nothing to complete.
            settled = ("settled", partition, flow.id, flow.version)
            plan = TickPlan(connection, flow, now,  # stages with nothing due are skipped
                            settled=bool(self._steady and self._steady.pop(settled, False)))
            for stage in self.stages(flow) if not held else [INGEST]:
                if not plan.skip(stage):
                    self._run(connection, flow, stage, now, params)
                    plan.ran(stage)
            if self._steady is not None:
                self._steady[settled] = True

    def step(self, flow: Flow, stage: str, now: datetime, partition: int = 0,
             params: dict[str, Any] | None = None) -> None:
        """Run one stage (INGEST, a node id, DISPATCH or DRAIN) for one partition, or TICK:
        every stage of the partition's tick in this one call (the coarse Airflow task).

        INGEST first loads the partition's share of the spool; a paused or stopped flow
        runs nothing else (its contacts stay where they are)."""
        if stage in (INGEST, TICK):
            self.load_spool([partition])
        if stage == TICK:
            self._tick_partition(flow, utc_naive(now), partition, params)
            return
        with self.connection(partition) as connection:
            if stage != INGEST and lifecycle.held(connection, flow.id):
                return
            record_params(connection, flow, utc_naive(now), params)
            # Skip what `tick`'s plan would skip (an idle trigger or ingest), so both runners
            # leave the same bookkeeping; DISPATCH always runs (the plan would only skip it if
            # no node moved, which one stage alone cannot know).
            if stage != DISPATCH and TickPlan(connection, flow, utc_naive(now)).skip(stage):
                return
            self._run(connection, flow, stage, utc_naive(now), params)

    def load_spool(self, partitions: Iterable[int] | None = None) -> spool.LoadReport:
        """Load accepted intake (spool files) into the stores, exactly once (engine.spool)."""
        return spool.load(self, partitions)

    def _run(self, connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str,
             now: datetime, params: dict[str, Any] | None) -> None:
        if stage != DRAIN:
            run_stage(connection, flow, stage, now, params)
            return
        for older in self._older_versions(connection, flow):
            own = recorded_params(connection, older, now)
            record_params(connection, older, now, own)
            for older_stage in drain_stages(older):
                run_stage(connection, older, older_stage, now, own)

    def _older_versions(self, connection: duckdb.DuckDBPyConnection, flow: Flow) -> list[Flow]:
        key = ("no older versions", id(connection), flow.id, flow.version)
        if self._steady is not None and key in self._steady:
            return []
        rows = connection.execute(
            "SELECT DISTINCT version FROM tokens WHERE flow_id = ? AND version <> ? UNION "
            "SELECT DISTINCT version FROM outbox WHERE flow_id = ? AND version <> ? "
            "AND status = 'pending' ORDER BY 1",  # deferred rows of a drained version
            [flow.id, flow.version, flow.id, flow.version],
        ).fetchall()
        if not rows and self._steady is not None:
            self._steady[key] = True
        return [self.load_flow(flow.id, row[0]) for row in rows]

    def request_enrollment(self, flow: Flow, node_id: str, contact_ids: list[str],
                           now: datetime) -> None:
        """Queue contacts for a manual trigger; they enter at the next tick."""
        for partition in range(self.partitions):
            mine = [c for c in contact_ids if self.partition_of(c) == partition]
            if not mine:
                continue
            with self.connection(partition) as connection:
                connection.executemany(
                    "INSERT INTO manual_requests VALUES (?, ?, ?, ?, false)",
                    [(flow.id, node_id, c, utc_naive(now)) for c in mine],
                )

    def next_due(self, flow: Flow, now: datetime, include_events: bool = True) -> datetime | None:
        """The earliest time after `now` at which a tick would change anything.

        `include_events=False` ignores future-dated events (the simulator's own behaviour
        events, which it picks up at its regular steps instead of jumping to each one)."""
        now = utc_naive(now)
        candidates: list[datetime] = []
        for partition in range(self.partitions):
            with self.connection(partition) as connection:
                row = connection.execute(
                    """
                    SELECT least(
                        (SELECT min(wake_at) FROM tokens WHERE flow_id = $1 AND wake_at > $2),
                        (SELECT min(not_before) FROM outbox WHERE flow_id = $1
                           AND status = 'pending' AND not_before > $2),
                        (SELECT min(ts) FROM events WHERE ts > $2 AND $3)),
                        -- each trigger's state, in this statement rather than one per trigger
                        (SELECT coalesce(list({'node': node_id, 'fired': last_fired_at,
                                               'seq': last_event_seq}), [])
                         FROM trigger_state WHERE flow_id = $1)
                    """,
                    [flow.id, now, include_events],
                ).fetchone()
                assert row is not None
                if row[0] is not None:
                    candidates.append(row[0])
                states = {state["node"]: (state["fired"], state["seq"]) for state in row[1]}
                for node in flow.nodes:
                    node_type = nodes.get(node.type)
                    if node_type.category is Category.TRIGGER:
                        due = enroll.next_trigger_time(connection, flow, node,
                                                       node_type.parse(node.params), now,
                                                       states.get(node.id, (None, None)))
                        if due is not None:
                            candidates.append(due)
        return min(candidates) if candidates else None


def upsert_contacts(connection: duckdb.DuckDBPyConnection, frame: pd.DataFrame,
                    given: list[str] | None = None) -> None:
    """Insert new contacts and update existing ones (`read_contacts` output) in the caller's
    transaction: the one path of `import_contacts` and the spool loader.

    Existing contacts get only the `given` columns (default: those the input had), so an
    import never resets what it does not mention: consent, unsubscribes, engagement, scores."""
    Workspace._add_columns(connection, frame)
    given = list(given or frame.attrs.get("given") or frame.columns)
    connection.register("incoming", frame)
    updated = [c for c in dict.fromkeys(given) if c in frame.columns and c != "contact_id"]
    if updated:
        assignments = ", ".join(f"{quote(c)} = i.{quote(c)}" for c in updated)
        connection.execute(f"UPDATE contacts SET {assignments} FROM incoming i "
                           "WHERE contacts.contact_id = i.contact_id")
    columns = ", ".join(quote(c) for c in frame.columns)
    connection.execute(f"INSERT INTO contacts ({columns}) SELECT {columns} FROM incoming "
                       "WHERE contact_id NOT IN (SELECT contact_id FROM contacts)")
    connection.unregister("incoming")


def _storage_problem(error: Exception) -> Exception:
    """A value the store's column cannot hold (e.g. text into a column earlier imports made
    numeric), as an intake problem: nothing was written."""
    from mawb.intake import IntakeError, Problem

    detail = str(error).strip().splitlines()[0]
    return IntakeError([Problem(None, None, f"a value does not fit the store's column type "
                                            f"({detail}); declare the column's type or fix "
                                            "the value")])


def drain_stages(flow: Flow) -> list[str]:
    """The stages of a version that only finishes its contacts: its nodes in order, except
    its triggers (nobody new enters an older version; a token never rests at a trigger),
    then DISPATCH."""
    return [node_id for node_id in graph.topological_order(flow)
            if nodes.get(flow.node(node_id).type).category is not Category.TRIGGER] + [DISPATCH]


def record_params(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
                  params: dict[str, Any] | None) -> None:
    """Record the params `flow` runs with from this tick on (its defaults plus the
    overrides), when they differ from the ones last recorded: the params of any tick are the
    latest row at or before it, and an unchanged run writes nothing."""
    effective = {**flow.params, **(params or {})}
    last = connection.execute(
        "SELECT params FROM run_params WHERE flow_id = ? AND version = ? AND tick_time <= ? "
        "ORDER BY tick_time DESC LIMIT 1", [flow.id, flow.version, now],
    ).fetchone()
    if last is not None and json.loads(last[0]) == json.loads(json.dumps(effective, default=str)):
        return
    connection.execute("INSERT OR REPLACE INTO run_params VALUES (?, ?, ?, ?)",
                       [flow.id, flow.version, now,
                        json.dumps(effective, sort_keys=True, default=str)])


def tick_counts(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
                stages: Iterable[str] | None = None) -> dict[str, dict[str, int]]:
    """What a tick did, per node (every version of the flow): node_log rows written at `now`
    by event (entered, completed, waiting, failed, converted, moved), and messages sent.

    What `mawb step` logs and a compiled DAG's task returns as its XCom, so the Airflow UI
    shows per-stage row counts without opening the store."""
    wanted = None if stages is None else list(stages)
    counts: dict[str, dict[str, int]] = {}
    for node_id, event, count in connection.execute(
        "SELECT node_id, event, count(*) FROM node_log WHERE flow_id = ? AND ts = ? "
        "GROUP BY ALL ORDER BY ALL", [flow.id, now],
    ).fetchall():
        if wanted is None or node_id in wanted:
            counts.setdefault(node_id, {})[event] = int(count)
    for node_id, count in connection.execute(
        "SELECT node_id, count(*) FROM messages WHERE flow_id = ? AND sent_at = ? "
        "GROUP BY ALL ORDER BY ALL", [flow.id, now],
    ).fetchall():
        if wanted is None or node_id in wanted or DISPATCH in wanted:
            counts.setdefault(node_id, {})["sent"] = int(count)
    return counts


def recorded_params(connection: duckdb.DuckDBPyConnection, flow: Flow,
                    now: datetime) -> dict[str, Any]:
    """The params `flow` (a version) last ran with up to `now`; its defaults if never run.

    Only names the version declares are kept: a param a newer version added or renamed
    never leaks into an older one."""
    row = connection.execute(
        "SELECT params FROM run_params WHERE flow_id = ? AND version = ? AND tick_time <= ? "
        "ORDER BY tick_time DESC LIMIT 1", [flow.id, flow.version, now],
    ).fetchone()
    recorded = json.loads(row[0]) if row else {}
    return {name: recorded.get(name, value) for name, value in flow.params.items()}


class _Connection:
    """Context manager over a short-lived store connection (or a session's, left open)."""

    def __init__(self, path: Path, read_only: bool,
                 held: duckdb.DuckDBPyConnection | None = None) -> None:
        self.path = path
        self.read_only = read_only
        self.held = held

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        if self.held is not None:
            return self.held
        self._connection = connect(self.path, read_only=self.read_only)
        return self._connection

    def __exit__(self, *exc: object) -> None:
        if self.held is None:
            self._connection.close()


def _ensure_written_columns(connection: duckdb.DuckDBPyConnection, flow: Flow) -> None:
    """Every attribute a flow writes exists as a column before the flow runs."""
    wanted: dict[str, str] = {}
    for node in flow.nodes:
        params = nodes.get(node.type).parse(node.params)
        for name, value in (getattr(params, "set", None) or {}).items():
            wanted[name] = _sql_type(value)
        for name in getattr(params, "increment", None) or {}:
            wanted[name] = "DOUBLE"
        if getattr(params, "mirror_attributes", False):
            for name, value in params.fields.items():  # type: ignore[attr-defined]
                wanted[name] = _sql_type(value)
        for name in getattr(params, "store", None) or {}:
            wanted[name] = "VARCHAR"
    existing = contact_columns(connection)
    for name, dtype in wanted.items():
        if name not in existing:
            connection.execute(f"ALTER TABLE contacts ADD COLUMN {quote(name)} {dtype}")
        elif existing[name] != dtype and _all_null(connection, name):
            # Imported without a single value, so its type was a guess: take the flow's.
            connection.execute(
                f"ALTER TABLE contacts ALTER COLUMN {quote(name)} SET DATA TYPE {dtype} "
                f"USING CAST(NULL AS {dtype})"
            )


def _all_null(connection: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = connection.execute(
        f"SELECT count({quote(name)}) FROM contacts"
    ).fetchone()
    return row is None or row[0] == 0


def _sql_type(value: object) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int | float):
        return "DOUBLE"
    return "VARCHAR"


class StageFailed(UserWarning):
    """A stage whose flow logic failed at run time (a condition on bad data, a query).

    Its transaction was rolled back and only its own cohort was marked failed: the enrollments
    at the node end as `failed` (exit_reason names node and error), node_log records why, and
    `runs` holds the stage as `failed` with the error. The rest of the tick goes on; callers
    that print (the CLI) turn these warnings into one `warning:` line each."""


# Failures of the flow's own logic on this data; engine errors (I/O, conflicts) still raise.
RUNTIME_FAILURES: tuple[type[BaseException], ...] = (
    duckdb.DataError, duckdb.ProgrammingError, duckdb.NotSupportedError, StepError,
    ConditionError, QueryError, RecursionError, ValidationError,
)
MAX_ERROR_LENGTH = 500


def run_stage(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str, now: datetime,
              params: dict[str, Any] | None = None) -> None:
    """One transaction: ingest, one node's cohort step, or dispatch — at most once per tick.

    The `runs` row is written in the stage's own transaction, so a stage that already
    committed for this flow version and tick time is skipped: re-running a tick that was
    killed half-way (or retrying an Airflow task) does only the stages that did not finish,
    and ends exactly where an uninterrupted tick would. A node whose logic fails on this
    data fails only its own cohort (`StageFailed`); a failing goal is skipped for the tick.
    """
    flow_params = {**flow.params, **(params or {})}
    if _idle(connection, flow, stage, now):
        return  # nothing waits at the node: no transaction, and a re-run is a no-op too
    try:
        _run_once(connection, flow, stage, now, flow_params, goal=True)
    except RUNTIME_FAILURES as error:
        message = _error_text(error)
        if stage == INGEST:
            raise
        if stage == DISPATCH:
            # DuckDB has no savepoints: the failed transaction is gone, so dispatch runs again
            # without the goal, and the goal's failure is recorded in the same transaction.
            _run_once(connection, flow, stage, now, flow_params, goal=False, goal_error=message)
            warnings.warn(StageFailed(f"{flow.id} v{flow.version}: goal failed, skipped this "
                                      f"tick: {message}"), stacklevel=2)
            return
        failed = _fail_cohort(connection, flow, stage, now, message)
        warnings.warn(StageFailed(f"{flow.id} v{flow.version}: node {stage} failed for "
                                  f"{failed} contact(s): {message}"), stacklevel=2)


def _run_once(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str, now: datetime,
              flow_params: dict[str, Any], goal: bool, goal_error: str | None = None) -> None:
    connection.execute("BEGIN")
    try:
        started = datetime.now()
        if _already_done(connection, flow, stage, now):
            connection.execute("COMMIT")
            return
        if stage == INGEST:
            _ingest(connection, now)
        elif stage == DISPATCH:
            _dispatch(connection, flow, now, flow_params, goal=goal)
        else:
            _node_step(connection, flow, stage, now, flow_params)
        if goal_error is not None:
            _record_run(connection, flow, "_goal", now, started, "failed", goal_error)
        _record_run(connection, flow, stage, now, started, "done")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _record_run(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str, now: datetime,
                started: datetime, status: str, error: str | None = None) -> None:
    connection.execute(
        "INSERT INTO runs (flow_id, tick_time, stage, started_at, finished_at, status, "
        "version, error) VALUES (?, ?, ?, ?, now()::TIMESTAMP, ?, ?, ?)",
        [flow.id, now, stage, started, status, flow.version, error],
    )


def _error_text(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, ValidationError):  # a saved version edited by hand after deploy
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "params"
        text = f"params.{field}: {first['msg']}"
    if isinstance(error, RecursionError):
        text = "the expression is nested too deeply to evaluate"
    return text[:MAX_ERROR_LENGTH]


def _fail_cohort(connection: duckdb.DuckDBPyConnection, flow: Flow, node_id: str,
                 now: datetime, message: str) -> int:
    """In a new transaction: the node's due tokens leave as failed, with the reason logged.

    Every token of those enrollments is removed (an enrollment that failed on one path does not
    go on along another) and each gets a node_log row, so no contact vanishes without a reason.
    Returns the number of enrollments failed."""
    node = flow.node(node_id)
    every_token = node.type in EVERY_TICK
    reason = f"node {node_id} failed: {message}"
    with transaction(connection):
        started = datetime.now()
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE failing AS SELECT DISTINCT enrollment_id FROM tokens "
            "WHERE flow_id = ? AND version = ? AND node_id = ? AND (? OR wake_at <= ?)",
            [flow.id, flow.version, node_id, every_token, now],
        )
        connection.execute(
            "INSERT INTO node_log SELECT ?, flow_id, version, enrollment_id, contact_id, "
            "node_id, 'failed', NULL, ? FROM tokens "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM failing)",
            [now, reason],
        )
        connection.execute(
            "DELETE FROM tokens WHERE enrollment_id IN (SELECT enrollment_id FROM failing)")
        connection.execute(
            "UPDATE enrollments SET status = 'failed', exited_at = ?, exit_reason = ? "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM failing) AND status = 'active'",
            [now, reason[:MAX_ERROR_LENGTH]],
        )
        row = connection.execute("SELECT count(*) FROM failing").fetchone()
        _record_run(connection, flow, node_id, now, started, "failed", message)
    return int(row[0]) if row else 0


def _already_done(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str,
                  now: datetime) -> bool:
    row = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM runs WHERE flow_id = ? AND version = ? AND tick_time = ? "
        "AND stage = ? AND status = 'done')",
        [flow.id, flow.version, now, stage],
    ).fetchone()
    return bool(row and row[0])


def _ingest(connection: duckdb.DuckDBPyConnection, now: datetime) -> None:
    due = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM events WHERE applied_at IS NULL AND ts <= ?)", [now]
    ).fetchone()
    if not (due and due[0]):
        return
    connection.execute(EVENT_EFFECTS, [now])
    outbox.record_event_suppressions(connection, now)  # bounces, complaints
    connection.execute("UPDATE events SET applied_at = ? WHERE applied_at IS NULL AND ts <= ?",
                       [now, now])


def _node_step(connection: duckdb.DuckDBPyConnection, flow: Flow, node_id: str, now: datetime,
               flow_params: dict[str, Any]) -> None:
    node = flow.node(node_id)
    node_type = nodes.get(node.type)
    params = node_type.parse(node.params)
    if node_type.category is Category.TRIGGER:
        enroll.candidates(connection, flow, node, params, now, flow_params)
        enroll.enroll(connection, flow, node, now)
    every_token = node.type in EVERY_TICK
    if not _anyone_due(connection, flow, node.id, now, every_token):
        return  # most nodes are idle at most ticks; skip their statements entirely
    prepare(connection, flow, node.id, node_type, now, every_token=every_token)
    cohort = Cohort(connection, flow, node, node_type, params, now, flow_params)
    if node_type.category is Category.TRIGGER:
        cohort.pass_all()
    else:
        STEPS[node.type](cohort)
    apply(cohort)
    if ended_paths(connection):
        _complete(connection, flow, now, "cohort")


def _idle(connection: duckdb.DuckDBPyConnection, flow: Flow, stage: str,
          now: datetime) -> bool:
    """A non-trigger node with no token to look at (most nodes at most ticks)."""
    if stage in (INGEST, DISPATCH):
        return False
    node = flow.node(stage)
    if nodes.get(node.type).category is Category.TRIGGER:
        return False
    return not _anyone_due(connection, flow, stage, now, node.type in EVERY_TICK)


def _anyone_due(connection: duckdb.DuckDBPyConnection, flow: Flow, node_id: str,
                now: datetime, every_token: bool) -> bool:
    """Whether any token waits at the node (and is due, unless the step sees every token)."""
    row = connection.execute(
        "SELECT EXISTS (SELECT 1 FROM tokens WHERE flow_id = ? AND version = ? AND node_id = ? "
        "AND (? OR wake_at <= ?))",
        [flow.id, flow.version, node_id, every_token, now],
    ).fetchone()
    return bool(row and row[0])


def _complete(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
              scope: str) -> None:
    """Enrollments with no token left have reached the end of every path."""
    within = ("AND enrollment_id IN (SELECT enrollment_id FROM cohort)" if scope == "cohort"
              else "")
    connection.execute(
        f"""
        UPDATE enrollments SET status = 'completed', exited_at = ?, exit_reason = 'end of path'
        WHERE flow_id = ? AND status = 'active' {within}
          AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.flow_id = ?
                          AND t.enrollment_id = enrollments.enrollment_id)
        """,
        [now, flow.id, flow.id],
    )


def _dispatch(connection: duckdb.DuckDBPyConnection, flow: Flow, now: datetime,
              flow_params: dict[str, Any], goal: bool = True) -> None:
    if flow.settings.goal and goal:
        column = lambda name: _contact_column(name)  # noqa: E731
        goal = to_sql(flow.settings.goal, flow_params, column=column, now=now)
        connection.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE reached AS
            SELECT e.enrollment_id FROM enrollments e JOIN contacts c USING (contact_id)
            WHERE e.flow_id = ? AND e.version = ? AND e.status = 'active'
              AND coalesce(({goal}), false)
            """,
            [flow.id, flow.version],
        )
        connection.execute(
            "INSERT INTO node_log SELECT ?, flow_id, version, enrollment_id, contact_id, node_id, "
            "'converted', NULL, 'goal' FROM tokens "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM reached)",
            [now],
        )
        connection.execute(
            "DELETE FROM tokens WHERE enrollment_id IN (SELECT enrollment_id FROM reached)"
        )
        connection.execute(
            "UPDATE enrollments SET status = 'converted', exited_at = ?, exit_reason = 'goal' "
            "WHERE enrollment_id IN (SELECT enrollment_id FROM reached)",
            [now],
        )
    outbox.dispatch(connection, flow, now, flow_params)
    _complete(connection, flow, now, "all")


def _contact_column(name: str) -> Any:
    from sqlglot import exp

    return exp.column(name, table="c", quoted=True)


def as_json(value: Any) -> str:
    return json.dumps(value, default=str)


__all__ = ["DISPATCH", "DRAIN", "INGEST", "TICK", "Workspace", "literal", "run_stage",
           "tick_counts"]
