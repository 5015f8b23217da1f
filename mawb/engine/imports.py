"""Contact and event imports: validated, split by partition, written all or nothing.

`Workspace.load_contacts` / `load_events` and the spool loader end here. Every partition's share
is written in its own open transaction and all commit together (see `write_all`); contacts are
upserted by contact_id, events appended once per event_id.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from mawb.engine.cohort import quote
from mawb.engine.layout import split
from mawb.engine.store import utc_naive

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from mawb.engine.workspace import Workspace
    from mawb.model import Flow

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


def load_contacts(workspace: Workspace, source: Any, consent: Iterable[str] = (),
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
    write_all(workspace, frame, lambda connection, part: upsert_contacts(connection, part, given))
    missing = {channel: column for channel, column in CONSENT_COLUMNS.items()
               if column not in given
               and (channel == "email" or (channel == "sms" and "phone" in given))}
    return ContactImport(len(frame), without_consent(workspace, frame, missing))


def load_events(workspace: Workspace, source: Any, source_name: str = "import") -> EventImport:
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

    write_all(workspace, frame, insert)
    return EventImport(new[0], len(frame) - new[0])


def write_all(workspace: Workspace, frame: pd.DataFrame,
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
            for partition, part in split(frame, workspace.partitions):
                connection = stack.enter_context(workspace.connection(partition))
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


def without_consent(workspace: Workspace, frame: pd.DataFrame,
                    missing: dict[str, str]) -> dict[str, int]:
    """Per channel whose consent column the input lacked: imported contacts without it."""
    found: dict[str, int] = {}
    for channel, column in missing.items():
        total = 0
        for partition, part in split(frame, workspace.partitions):
            with workspace.connection(partition, read_only=True) as connection:
                row = connection.execute(
                    f"SELECT count(*) FROM contacts WHERE contact_id IN (SELECT unnest(?)) "
                    f"AND NOT coalesce({quote(column)}, false)",
                    [part["contact_id"].tolist()]).fetchone()
                total += int(row[0]) if row else 0
        if total:
            found[channel] = total
    return found


def add_columns(connection: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    existing = {r[0] for r in connection.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'contacts'"
    ).fetchall()}
    # Describe the whole frame: DuckDB infers object columns from their values, so an
    # empty head would type them "NULL". An all-null column becomes VARCHAR (a flow that
    # writes numbers into it retypes it at deploy, see deploy.ensure_written_columns).
    connection.register("shape", frame)
    types = dict(connection.execute("SELECT column_name, column_type FROM "
                                    "(DESCRIBE SELECT * FROM shape)").fetchall())
    connection.unregister("shape")
    for column in frame.columns:
        if column not in existing:
            dtype = "VARCHAR" if types[column] == '"NULL"' else types[column]
            connection.execute(f"ALTER TABLE contacts ADD COLUMN {quote(column)} {dtype}")


def upsert_contacts(connection: duckdb.DuckDBPyConnection, frame: pd.DataFrame,
                    given: list[str] | None = None) -> None:
    """Insert new contacts and update existing ones (`read_contacts` output) in the caller's
    transaction: the one path of `import_contacts` and the spool loader.

    Existing contacts get only the `given` columns (default: those the input had), so an
    import never resets what it does not mention: consent, unsubscribes, engagement, scores."""
    add_columns(connection, frame)
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


def request_enrollment(workspace: Workspace, flow: Flow, node_id: str, contact_ids: list[str],
                       now: datetime) -> None:
    """Queue contacts for a manual trigger; they enter at the next tick."""
    for partition in range(workspace.partitions):
        mine = [c for c in contact_ids if workspace.partition_of(c) == partition]
        if not mine:
            continue
        with workspace.connection(partition) as connection:
            connection.executemany(
                "INSERT INTO manual_requests VALUES (?, ?, ?, ?, false)",
                [(flow.id, node_id, c, utc_naive(now)) for c in mine],
            )


__all__ = ["CONSENT_COLUMNS", "ContactImport", "EventImport", "load_contacts", "load_events",
           "request_enrollment", "upsert_contacts", "write_all"]
