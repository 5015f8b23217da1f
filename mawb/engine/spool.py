"""The reading half of the intake spool: accepted records into the store, exactly once.

The service writes each accepted batch as `spool/<name>.jsonl` (durably, before its 202;
`mawb.service.spool`). `load` takes the files in name order (arrival order) and, for each
partition, inserts a batch of files' rows and records their names in `spool_files` in ONE
transaction; a file is deleted only after every partition recorded it. A name already recorded
in a partition is never loaded into it again: a loader killed between the commit and the delete
(or between two partitions' commits) is finished by the next one, which loads what is missing
and deletes the file.

Records (one JSON object a line, `kind` first):
- `event`: event_id, contact_id, name, ts (ISO 8601), properties, source (`api`, `link`,
  `webhook:<flow>:<node>`, `provider:<name>`). Events are deduplicated by event_id in their
  contact's partition (a client's retry names the same contact; a repeat counts as
  `duplicate`); an event for a contact the store does not hold is kept — it may
  arrive before the contact — and counted as `unknown_contact`.
- `contact`: `{"contact": {...}}`, validated like `mawb import-contacts` and upserted through
  the same path: a record updates only the attributes it names (consent it does not mention
  stays as it was); successive records for one contact merge, later values winning.
- `command`: a write the one writer applies for another process (docs/architecture.md,
  "The service loop and lifecycle"): `lifecycle` (flow_id, state, note), `deploy` (flow: a
  flow document), `enroll` (flow_id, node_id, contact_ids), `import` (what: contacts|events,
  rows, source), `move` (flow_id, from_version, to_version, mapping: contacts in flight onto
  another version, `mawb move-contacts`). Each is recorded in `service_commands` with its outcome.

A file that is not a spool file at all (unparsable JSON) is moved to `spool/rejected/` with a
`.error` note naming the line, so one bad file never blocks the rest; a malformed record inside
a good file is counted as `rejected` with its reason logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from mawb.engine import lifecycle
from mawb.engine.store import (
    StoreBusyError,
    connect,
    contact_column_names,
    now_utc,
    transaction,
)
from mawb.flowplan import plan
from mawb.nodes.base import TriggerKind

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import duckdb

    from mawb.engine.workspace import Workspace

SPOOL_DIR = "spool"
REJECTED_DIR = "rejected"
SUFFIX = ".jsonl"
BATCH_RECORDS = 50_000
BATCH_FILES = 500
COMMANDS = ("lifecycle", "deploy", "enroll", "import", "move")

log = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What one `load` did; the per-file figures are also in each store's `spool_files`."""

    files: int = 0
    events: int = 0
    contacts: int = 0
    commands: int = 0
    duplicates: int = 0
    unknown_contacts: int = 0
    rejected: int = 0
    finished: int = 0  # files recorded by an earlier (killed) load, only deleted now
    quarantined: list[str] = field(default_factory=list)
    failed_commands: list[str] = field(default_factory=list)
    event_names: set[str] = field(default_factory=set)
    wake_flows: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.files or self.finished or self.quarantined)


@dataclass
class _File:
    name: str
    path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    commands: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    outcomes: dict[int, tuple[str, str]] = field(default_factory=dict)  # line -> status, detail
    deploys: dict[int, Any] = field(default_factory=dict)  # line -> deployed Flow

    @property
    def records(self) -> int:
        return len(self.events) + len(self.contacts) + len(self.commands) + len(self.rejected)


def spool_dir(home: Path) -> Path:
    return home / SPOOL_DIR


def pending(home: Path) -> list[Path]:
    """Spool files waiting to be loaded, oldest first (names sort by arrival)."""
    try:
        with os.scandir(spool_dir(home)) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(SUFFIX) and e.is_file())
    except FileNotFoundError:
        return []
    return [spool_dir(home) / name for name in names]


def load(workspace: Workspace, partitions: Iterable[int] | None = None) -> LoadReport:
    """Load every pending spool file into `partitions` (default all), exactly once.

    With a subset (an Airflow task steps one partition), a file is deleted only once every
    partition recorded it; the last partition to load it deletes it."""
    report = LoadReport()
    files = pending(workspace.home)
    if not files:
        return report
    parts = list(range(workspace.partitions) if partitions is None else partitions)
    for batch in _batches(files):
        parsed = [f for f in (_parse(path, report) for path in batch) if f is not None]
        if parsed:
            _load_guarded(workspace, parsed, parts, report)
    return report


def _load_guarded(workspace: Workspace, files: list[_File], parts: list[int],
                  report: LoadReport) -> None:
    """Load a batch; if the store refuses it (a value its column cannot hold, say), load its
    files one by one and set aside the one that fails, with the error, so the spool moves on.
    A busy store is not the file's fault: that propagates and the batch is retried later."""
    try:
        _load_batch(workspace, files, parts, report)
        return
    except StoreBusyError:
        raise
    except Exception as error:
        if len(files) == 1:
            _quarantine(files[0].path, f"the store refused it: {error}", report)
            return
    for file in files:
        _load_guarded(workspace, [file], parts, report)


def _batches(files: list[Path]) -> Iterable[list[Path]]:
    batch: list[Path] = []
    size = 0
    for path in files:
        try:
            size += max(1, path.stat().st_size // 100)  # ~100 bytes a record
        except FileNotFoundError:
            continue  # another loader finished it meanwhile
        batch.append(path)
        if len(batch) >= BATCH_FILES or size >= BATCH_RECORDS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _parse(path: Path, report: LoadReport) -> _File | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as error:
        _quarantine(path, f"not UTF-8 text: {error}", report)
        return None
    parsed = _File(path.name, path)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            _quarantine(path, f"line {number}: not JSON ({error.msg})", report)
            return None
        problem = _sort(parsed, number, record)
        if problem:
            parsed.rejected.append(f"line {number}: {problem}")
    for problem in parsed.rejected[:5]:
        log.warning("spool %s: rejected %s", path.name, problem)
    return parsed


def _sort(parsed: _File, number: int, record: Any) -> str | None:
    """File one record under its kind; returns why it is malformed, or None."""
    if not isinstance(record, dict):
        return "a record must be a JSON object"
    kind = record.get("kind")
    if kind == "event":
        problem = _event_problem(record)
        if problem is None:
            parsed.events.append({**record, "_line": number})
        return problem
    if kind == "contact":
        if not isinstance(record.get("contact"), dict):
            return "contact record without a `contact` object"
        parsed.contacts.append(record["contact"])
        return None
    if kind == "command":
        if record.get("command") not in COMMANDS:
            return f"unknown command {record.get('command')!r} (known: {', '.join(COMMANDS)})"
        parsed.commands.append((number, record))
        return None
    return f"unknown kind {kind!r} (known: event, contact, command)"


def _event_problem(record: dict[str, Any]) -> str | None:
    for name in ("contact_id", "name", "ts"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            return f"event without {name}"
    try:
        datetime.fromisoformat(record["ts"])
    except ValueError:
        return f"event ts {record['ts'][:40]!r} is not an ISO 8601 time"
    if record.get("properties") is not None and not isinstance(record["properties"], dict):
        return "event properties must be an object"
    return None


def _quarantine(path: Path, reason: str, report: LoadReport) -> None:
    folder = path.parent / REJECTED_DIR
    folder.mkdir(exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, folder / path.name)
        (folder / f"{path.name}.error").write_text(reason + "\n", encoding="utf-8")
    log.error("spool %s moved to %s/: %s", path.name, REJECTED_DIR, reason)
    report.quarantined.append(f"{path.name}: {reason}")


# -- loading ---------------------------------------------------------------------------------
def _load_batch(workspace: Workspace, files: list[_File], parts: list[int],
                report: LoadReport) -> None:
    _expand_imports(files)
    _check_contacts(files)
    report.wake_flows |= _prepare_deploys(workspace, files, parts)
    names = [f.name for f in files]
    counted: set[str] = set()
    for partition in parts:
        with workspace.connection(partition) as connection:
            done = _recorded(connection, names)
            todo = [f for f in files if f.name not in done]
            if todo:
                _load_partition(workspace, connection, partition, todo, report)
        _count_once([f for f in todo if f.name not in counted], report)
        counted |= {f.name for f in todo}
    report.finished += len(set(names) - counted)
    _finish(workspace, files, parts)


def _check_contacts(files: list[_File]) -> None:
    """Contacts that fail `mawb import-contacts`' validation are rejected (with the reason),
    file by file, before any transaction: one bad record never blocks the spool."""
    from mawb.intake import IntakeError, read_contacts

    with_contacts = [f for f in files if f.contacts]
    if not with_contacts:
        return
    try:
        read_contacts(pd.DataFrame(_merged(c for f in with_contacts for c in f.contacts)))
        return
    except IntakeError:
        pass  # find the files (and rows) at fault
    for file in with_contacts:
        try:
            read_contacts(pd.DataFrame(_merged(file.contacts)))
        except IntakeError as error:
            first = error.problems[0]
            file.rejected += [f"contact {c.get('contact_id')!r} not loaded: its batch has "
                              f"{len(error.problems)} problem(s), first {first}"
                              for c in file.contacts]
            log.warning("spool %s: %d contacts not loaded (all or nothing, like an import): "
                        "%s", file.name, len(file.contacts), first)
            file.contacts = []


def _merged(contacts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per contact: successive updates merged, later values winning (a group
    commit puts many requests, maybe for one contact, into one file)."""
    merged: dict[str, dict[str, Any]] = {}
    for contact in contacts:
        key = str(contact.get("contact_id"))
        merged[key] = {**merged.get(key, {}), **contact}
    return list(merged.values())


def _recorded(connection: duckdb.DuckDBPyConnection, names: list[str]) -> set[str]:
    rows = connection.execute(
        "SELECT file_name FROM spool_files WHERE file_name IN (SELECT unnest(?::VARCHAR[]))",
        [names],
    ).fetchall()
    return {row[0] for row in rows}


def _load_partition(workspace: Workspace, connection: duckdb.DuckDBPyConnection,
                    partition: int, files: list[_File], report: LoadReport) -> None:
    """One transaction: the partition's share of every file, and every file's name."""
    mine = _mine(workspace, partition)
    with transaction(connection):
        contacts = _upsert(connection, files, mine)
        events = _insert_events(connection, files, mine)
        commands = _apply_commands(workspace, connection, partition, files)
        moment = now_utc()
        for file in files:
            got = events.get(file.name, (0, 0, 0))
            connection.execute(
                "INSERT INTO spool_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [file.name, moment, file.records, partition, got[0], contacts.get(file.name, 0),
                 commands.get(file.name, 0), got[1], got[2], len(file.rejected)])
    for file in files:
        got = events.get(file.name, (0, 0, 0))
        report.events += got[0]
        report.duplicates += got[1]
        report.unknown_contacts += got[2]
        report.contacts += contacts.get(file.name, 0)


def _count_once(files: list[_File], report: LoadReport) -> None:
    """Figures of a whole file (counted on the first partition that loads it)."""
    for file in files:
        report.files += 1
        report.rejected += len(file.rejected)
        report.commands += len(file.commands)
        report.event_names |= {e["name"] for e in file.events}
        for event in file.events:
            source = str(event.get("source") or "")
            if source.startswith("webhook:"):
                report.wake_flows.add(source.split(":")[1])
        for line, record in file.commands:
            status, detail = file.outcomes.get(line, ("done", ""))
            if status != "done":
                report.failed_commands.append(f"{file.name} line {line}: {detail}")
            if record["command"] in ("enroll", "lifecycle", "move") and status == "done":
                report.wake_flows.add(str(record.get("flow_id")))


def _mine(workspace: Workspace, partition: int) -> Any:
    if workspace.partitions == 1:
        return lambda contact_id: True
    return lambda contact_id: workspace.partition_of(str(contact_id)) == partition


def _upsert(connection: duckdb.DuckDBPyConnection, files: list[_File],
            mine: Any) -> dict[str, int]:
    """Contacts of every file through `import_contacts`' path, in arrival order.

    A record updates only the attributes it names (as an import does), so successive records
    for one contact merge, later values winning; contacts naming the same attributes are
    written together."""
    from mawb.engine.workspace import upsert_contacts
    from mawb.intake import IntakeError, read_contacts

    counts: dict[str, int] = {}
    for file in files:
        for contact in file.contacts:
            if mine(contact.get("contact_id")):
                counts[file.name] = counts.get(file.name, 0) + 1
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for contact in _merged(c for f in files for c in f.contacts if mine(c.get("contact_id"))):
        groups.setdefault(tuple(sorted(contact)), []).append(contact)
    for group in groups.values():
        try:
            frame = read_contacts(pd.DataFrame(group))
        except IntakeError as error:  # checked per file already; a merge can still clash
            raise ValueError(f"spool contacts in {', '.join(sorted(counts))}: {error}") from None
        upsert_contacts(connection, frame)
    return counts


def _insert_events(connection: duckdb.DuckDBPyConnection, files: list[_File],
                   mine: Any) -> dict[str, tuple[int, int, int]]:
    """Insert new events; per file (inserted, duplicates, for unknown contacts)."""
    rows = [(file.name, n, e) for file in files for n, e in enumerate(file.events)
            if mine(e["contact_id"])]
    if not rows:
        return {}
    frame = pd.DataFrame({
        "file_name": [r[0] for r in rows],
        "ord": range(len(rows)),
        "event_id": [str(r[2].get("event_id") or f"{r[0]}:{r[2]['_line']}") for r in rows],
        "contact_id": [str(r[2]["contact_id"]) for r in rows],
        "name": [str(r[2]["name"]) for r in rows],
        "ts": pd.to_datetime([r[2]["ts"] for r in rows], utc=True,
                             format="ISO8601").tz_localize(None),
        "properties": [json.dumps(r[2].get("properties") or {}) for r in rows],
        "source": [str(r[2].get("source") or "api") for r in rows],
    })
    connection.register("spool_events", frame)
    connection.execute(
        """
        CREATE OR REPLACE TEMP TABLE spool_fresh AS
        SELECT * FROM spool_events
        WHERE event_id NOT IN (SELECT event_id FROM events WHERE event_id IS NOT NULL)
        QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY ord) = 1
        """
    )
    connection.unregister("spool_events")
    connection.execute(
        "INSERT INTO events SELECT nextval('event_seq'), event_id, contact_id, name, ts, "
        "properties::JSON, source, NULL FROM spool_fresh ORDER BY ord"
    )
    stats = dict.fromkeys(frame["file_name"].unique(), (0, 0, 0))
    totals = frame.groupby("file_name").size().to_dict()
    for name, inserted, unknown in connection.execute(
        "SELECT file_name, count(*), count(*) FILTER (contact_id NOT IN "
        "(SELECT contact_id FROM contacts)) FROM spool_fresh GROUP BY 1"
    ).fetchall():
        stats[name] = (int(inserted), 0, int(unknown))
    for name, (inserted, _, unknown) in stats.items():
        stats[name] = (inserted, int(totals.get(name, 0)) - inserted, unknown)
    connection.execute("DROP TABLE spool_fresh")
    return stats


# -- commands --------------------------------------------------------------------------------
def _expand_imports(files: list[_File]) -> None:
    """An `import` command's rows join the file's contact or event records."""
    for file in files:
        for line, record in file.commands:
            if record["command"] != "import" or line in file.outcomes:
                continue
            rows = record.get("rows")
            what = record.get("what")
            if what not in ("contacts", "events") or not isinstance(rows, list):
                file.outcomes[line] = ("failed", "import needs what (contacts|events) and rows")
                continue
            if what == "contacts":
                file.contacts.extend(r for r in rows if isinstance(r, dict))
            else:
                source = str(record.get("source") or "import")
                for number, row in enumerate(rows, 1):
                    event = {"source": source, **(row if isinstance(row, dict) else {}),
                             "_line": f"{line}.{number}"}
                    if isinstance(event.get("properties"), str):  # an events file's JSON text
                        with contextlib.suppress(json.JSONDecodeError):
                            event["properties"] = json.loads(event["properties"])
                    problem = _event_problem(event)
                    if problem is None:
                        file.events.append(event)
                    else:
                        file.rejected.append(f"line {line} row {number}: {problem}")
            file.outcomes[line] = ("done", f"{len(rows)} {what}")


def _prepare_deploys(workspace: Workspace, files: list[_File], parts: list[int]) -> set[str]:
    """Deploy commands save their version before any transaction (saving is idempotent)."""
    from mawb.model import FlowFileError, from_document
    from mawb.validate import FlowInvalidError, validate_flow

    deployed: set[str] = set()
    for file in files:
        for line, record in file.commands:
            if record["command"] != "deploy":
                continue
            document = record.get("flow")
            if not isinstance(document, dict):
                file.outcomes[line] = ("failed", "deploy needs a flow document (an object)")
                continue
            try:
                flow = from_document(document, f"{file.name} line {line}")
                with workspace.connection(parts[0]) as connection:
                    report = validate_flow(flow, columns=contact_column_names(connection))
                if not report.valid:
                    raise FlowInvalidError(flow.id, report)
                workspace.deploy(flow, partitions=parts)
            except (FlowFileError, FlowInvalidError, ValueError, TypeError) as error:
                detail = str(error)
                if isinstance(error, FlowInvalidError):
                    detail = "; ".join(str(d) for d in error.report.errors)
                file.outcomes[line] = ("failed", f"deploy refused: {detail}")
                continue
            file.deploys[line] = flow
            file.outcomes[line] = ("done", f"deployed {flow.id} v{flow.version}")
            deployed.add(flow.id)
    return deployed


def _apply_commands(workspace: Workspace, connection: duckdb.DuckDBPyConnection,
                    partition: int, files: list[_File]) -> dict[str, int]:
    """The partition's share of each command, in order, each recorded with its outcome.

    Deploys and imports were done before the transaction (their outcome is known); lifecycle
    changes and enrollments are applied here, on every partition, in the same transaction that
    records the file, so each partition applies its share exactly once."""
    counts: dict[str, int] = {}
    for file in files:
        for line, record in file.commands:
            outcome = file.outcomes.get(line)
            if record["command"] in ("lifecycle", "enroll", "move"):
                outcome = _apply(workspace, connection, partition, record)
                file.outcomes.setdefault(line, outcome)
            outcome = outcome or ("done", "")
            connection.execute(
                "INSERT INTO service_commands VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [file.name, line, record["command"], _flow_of(record), outcome[0], outcome[1],
                 str(record.get("by") or "service"), now_utc()])
            counts[file.name] = counts.get(file.name, 0) + 1
    return counts


def _flow_of(record: dict[str, Any]) -> str | None:
    if record["command"] == "deploy" and isinstance(record.get("flow"), dict):
        return str(record["flow"].get("id"))
    flow_id = record.get("flow_id")
    return str(flow_id) if flow_id is not None else None


def _apply(workspace: Workspace, connection: duckdb.DuckDBPyConnection, partition: int,
           record: dict[str, Any]) -> tuple[str, str]:
    try:
        if record["command"] == "lifecycle":
            return _lifecycle(workspace, connection, record)
        if record["command"] == "move":
            return _move(workspace, connection, record)
        return _enroll(workspace, connection, partition, record)
    except (lifecycle.LifecycleError, KeyError, ValueError, TypeError) as error:
        return "failed", str(error.args[0] if error.args else error)


def _lifecycle(workspace: Workspace, connection: duckdb.DuckDBPyConnection,
               record: dict[str, Any]) -> tuple[str, str]:
    flow_id = str(record.get("flow_id"))
    versions = workspace.versions(flow_id)
    if not versions:
        return "failed", f"flow {flow_id!r} is not deployed"
    try:
        state = lifecycle.State(str(record.get("state")))
    except ValueError:
        return "failed", (f"state {record.get('state')!r}: expected one of "
                          f"{', '.join(s.value for s in lifecycle.State)}")
    by = str(record.get("by") or "service")
    lifecycle.record(connection, flow_id, state, max(versions), by, record.get("note"))
    return "done", f"{flow_id} is {state.value}"


def _move(workspace: Workspace, connection: duckdb.DuckDBPyConnection,
          record: dict[str, Any]) -> tuple[str, str]:
    """This partition's share of moving one version's contacts in flight onto another."""
    from mawb.engine.moves import move_partition, plan_move

    flow_id = str(record.get("flow_id"))
    source, target = int(record["from_version"]), int(record["to_version"])
    plan = plan_move(workspace.load_flow(flow_id, source), workspace.load_flow(flow_id, target),
                     record.get("mapping") or {})
    moved, stayed = move_partition(connection, plan, now_utc())
    left = ", ".join(f"{count} at {node}" for node, count in stayed.items() if count)
    return "done", (f"{flow_id}: v{source} -> v{target}: {moved} enrollments moved"
                    + (f"; stayed on v{source}: {left}" if left else ""))


def _enroll(workspace: Workspace, connection: duckdb.DuckDBPyConnection, partition: int,
            record: dict[str, Any]) -> tuple[str, str]:
    flow = workspace.load_flow(str(record.get("flow_id")))
    node_id = str(record.get("node_id"))
    manual = plan(flow).triggers_of(TriggerKind.MANUAL)
    if node_id not in manual:
        return "failed", (f"node {node_id!r} is not a manual_trigger of {flow.id} "
                          f"(manual triggers: {', '.join(manual) or 'none'})")
    ids = [str(c) for c in record.get("contact_ids") or []]
    mine = _mine(workspace, partition)
    ids = [c for c in ids if mine(c)]
    moment = now_utc()
    if ids:
        connection.executemany("INSERT INTO manual_requests VALUES (?, ?, ?, ?, false)",
                               [(flow.id, node_id, c, moment) for c in ids])
    return "done", f"queued {len(ids)} contacts at {flow.id}.{node_id}"


# -- finishing -------------------------------------------------------------------------------
def _finish(workspace: Workspace, files: list[_File], parts: list[int]) -> None:
    """Delete the files every partition has recorded (the others wait for their loader)."""
    others = [p for p in range(workspace.partitions) if p not in parts]
    names = [f.name for f in files]
    everywhere = set(names)
    for partition in others:
        everywhere &= _recorded_elsewhere(workspace, partition, names)
    for file in files:
        if file.name in everywhere:
            with contextlib.suppress(FileNotFoundError):
                file.path.unlink()


def _recorded_elsewhere(workspace: Workspace, partition: int, names: list[str]) -> set[str]:
    """Names another partition has recorded; nothing if its store is busy or not migrated
    yet (its own loader then deletes the files)."""
    import duckdb

    if partition in workspace._held:  # this process holds it (a session): ask that connection
        return _recorded(workspace._held[partition], names)
    path = workspace.store_path(partition)
    if not path.exists():
        return set()
    try:
        connection = connect(path, read_only=True, retry_seconds=0.5)
    except (StoreBusyError, duckdb.Error):
        return set()
    try:
        return _recorded(connection, names)
    except duckdb.CatalogException:
        return set()
    finally:
        connection.close()


def totals(workspace: Workspace) -> dict[str, Any]:
    """What the loader has done so far, summed over partitions (for status and metrics)."""
    result = {"files": 0, "events": 0, "contacts": 0, "duplicates": 0, "unknown_contacts": 0,
              "rejected": 0, "pending": len(pending(workspace.home)),
              "quarantined": _quarantined(workspace.home)}
    for partition in range(workspace.partitions):
        with workspace.connection(partition, read_only=True) as connection:
            row = connection.execute(
                "SELECT count(*), sum(events), sum(contacts), sum(duplicates), "
                "sum(unknown_contacts), sum(rejected) FROM spool_files").fetchone()
        if row:
            for key, value in zip(("files", "events", "contacts", "duplicates",
                                   "unknown_contacts", "rejected"), row, strict=True):
                result[key] += int(value or 0)
    return result


def _quarantined(home: Path) -> int:
    folder = spool_dir(home) / REJECTED_DIR
    return sum(1 for p in folder.glob(f"*{SUFFIX}")) if folder.is_dir() else 0
