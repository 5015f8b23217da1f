"""A workspace: the store files, saved flow versions and ingest spool of one mawb installation.

This is the engine's public face; it holds the workspace's connections and delegates the
work: `engine.layout` (where files live, which partition holds a contact), `engine.imports`
(contacts and events), `engine.deploy` (saving versions), `engine.tick` (which stages a tick
runs, on which partitions and versions) and `engine.stage` (each stage one transaction,
recorded in `runs`, so a crash loses nothing and a re-run repeats nothing). `session` keeps
connections open across many ticks for a process that owns the workspace (simulations,
benchmarks).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mawb.engine import deploy as deploying
from mawb.engine import imports, layout, manifest, spool
from mawb.engine import tick as ticking
from mawb.engine.cohort import literal
from mawb.engine.imports import CONSENT_COLUMNS, ContactImport, EventImport, upsert_contacts
from mawb.engine.layout import default_home
from mawb.engine.stage import DISPATCH, INGEST, RUNTIME_FAILURES, StageFailed, run_stage
from mawb.engine.store import STORE_SCHEMA_VERSION, connect, connect_memory, migrate, schema_version
from mawb.engine.tick import DRAIN, TICK, drain_stages, record_params, recorded_params, tick_counts
from mawb.model import load

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from datetime import datetime

    import duckdb

    from mawb.model import Flow


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
        return layout.store_path(self.home, self.partitions, partition)

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
        return layout.flow_path(self.home, flow_id, version)

    # -- data --------------------------------------------------------------------------------
    def import_contacts(self, source: Any, consent: Iterable[str] = ()) -> int:
        """Validate then load contacts (upsert by contact_id), all or nothing; see
        `load_contacts`. Returns the number of contacts in the input."""
        return self.load_contacts(source, consent).count

    def load_contacts(self, source: Any, consent: Iterable[str] = (),
                      types: dict[str, str] | None = None) -> ContactImport:
        """See `engine.imports.load_contacts`."""
        return imports.load_contacts(self, source, consent, types)

    def import_events(self, source: Any, source_name: str = "import") -> int:
        """Validate then append events; returns how many were new (see `load_events`)."""
        return self.load_events(source, source_name).new

    def load_events(self, source: Any, source_name: str = "import") -> EventImport:
        """See `engine.imports.load_events`."""
        return imports.load_events(self, source, source_name)

    def partition_of(self, contact_id: str) -> int:
        return layout.partition_of(contact_id, self.partitions)

    def request_enrollment(self, flow: Flow, node_id: str, contact_ids: list[str],
                           now: datetime) -> None:
        """Queue contacts for a manual trigger; they enter at the next tick."""
        imports.request_enrollment(self, flow, node_id, contact_ids, now)

    # -- flows -------------------------------------------------------------------------------
    def deploy(self, flow: Flow, partitions: Iterable[int] | None = None) -> Flow:
        """See `engine.deploy.deploy`."""
        return deploying.deploy(self, flow, partitions)

    def versions(self, flow_id: str) -> list[int]:
        return layout.versions(self.home, flow_id)

    def load_flow(self, flow_id: str, version: int | None = None) -> Flow:
        version = version or max(self.versions(flow_id), default=0)
        path = self.flow_path(flow_id, version)
        if not path.exists():
            raise KeyError(f"flow {flow_id!r} version {version} is not deployed")
        return load(path)

    # -- running -------------------------------------------------------------------------------
    def stages(self, flow: Flow) -> list[str]:
        """A tick's stages in order; running them one by one (`step`) is exactly `tick`."""
        return ticking.stages(flow)

    def tick(self, flow: Flow, now: datetime, params: dict[str, Any] | None = None,
             load_spool: bool = True) -> set[str]:
        """See `engine.tick.tick`."""
        return ticking.tick(self, flow, now, params, load_spool)

    def step(self, flow: Flow, stage: str, now: datetime, partition: int = 0,
             params: dict[str, Any] | None = None) -> None:
        """See `engine.tick.step`."""
        ticking.step(self, flow, stage, now, partition, params)

    def load_spool(self, partitions: Iterable[int] | None = None) -> spool.LoadReport:
        """Load accepted intake (spool files) into the stores, exactly once (engine.spool)."""
        return spool.load(self, partitions)

    def next_due(self, flow: Flow, now: datetime, include_events: bool = True) -> datetime | None:
        """See `engine.tick.next_due`."""
        return ticking.next_due(self, flow, now, include_events)


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


# The names callers imported from this module before the split, still importable from here.
__all__ = ["CONSENT_COLUMNS", "DISPATCH", "DRAIN", "INGEST", "RUNTIME_FAILURES", "TICK",
           "ContactImport", "EventImport", "StageFailed", "Workspace", "default_home",
           "drain_stages", "literal", "record_params", "recorded_params", "run_stage",
           "tick_counts", "upsert_contacts"]
