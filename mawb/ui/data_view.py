"""The data page: upload contacts and events, see every problem, never half-import.

Uploads go through `Workspace.import_contacts` / `import_events`, which validate the whole
file with `mawb.intake` first and load it in one transaction, so a file either lands
completely or not at all. The page turns an `IntakeError` into a table of problems with the
row and column each concerns, and shows what the store holds now.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb
import pandas as pd

from mawb import analytics
from mawb.engine import Workspace
from mawb.engine.store import StoreBusyError
from mawb.intake import (
    CONTACT_COLUMNS,
    REQUIRED_CONTACT_COLUMNS,
    REQUIRED_EVENT_COLUMNS,
    IntakeError,
)
from mawb.ui.reader import WorkspaceReader

if TYPE_CHECKING:
    from mawb.intake import Problem

Kind = Literal["contacts", "events"]
FILE_TYPES = ["csv", "jsonl", "ndjson", "json", "parquet"]
MAX_SHOWN_PROBLEMS = 500
IN_PROCESS_RETRY_SECONDS = 10.0


@dataclass
class ImportOutcome:
    """What happened to one uploaded file."""

    kind: Kind
    name: str
    imported: int = 0
    problems: list[Problem] = field(default_factory=list)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and self.failure is None

    def problem_table(self) -> pd.DataFrame:
        """Row and column of each problem (row numbers count data rows, header excluded)."""
        return pd.DataFrame(
            [{"row": p.row, "column": p.column or "", "problem": p.message}
             for p in self.problems[:MAX_SHOWN_PROBLEMS]],
            columns=["row", "column", "problem"],
        ).astype({"row": "Int64"})


def import_file(home: str | Path | None, kind: Kind, name: str, content: bytes) -> ImportOutcome:
    """Validate and import one uploaded file into the workspace at `home`, all or nothing."""
    outcome = ImportOutcome(kind, name)
    suffix = Path(name).suffix.lower() or ".csv"
    with tempfile.TemporaryDirectory(prefix="mawb-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(content)
        try:
            outcome.imported = _import_with_retry(home, kind, path, name)
        except IntakeError as error:
            outcome.problems = list(error.problems)
        except StoreBusyError:
            outcome.failure = ("The workspace store is busy with a long run; nothing was "
                               "imported. Try again in a moment.")
        except (duckdb.Error, ValueError, OSError) as error:
            outcome.failure = f"Nothing was imported: {error}"
    return outcome


def _import_with_retry(home: str | Path | None, kind: Kind, path: Path, name: str) -> int:
    """Import, waiting (bounded) while a dashboard of this same process reads the store.

    DuckDB refuses a writing connection while a read-only one is open in the same process
    ("different configuration"); readers hold theirs for milliseconds. Nothing is written
    before the connection opens, so trying again is safe.
    """
    deadline = time.monotonic() + IN_PROCESS_RETRY_SECONDS
    while True:
        try:
            workspace = Workspace(home)
            if kind == "contacts":
                return workspace.import_contacts(path)
            return workspace.import_events(path, source_name=f"upload:{name}")
        except duckdb.ConnectionException as error:
            if "different configuration" not in str(error):
                raise
            if time.monotonic() > deadline:
                raise StoreBusyError("the store stayed busy") from None
            time.sleep(0.1)


def import_demo(home: str | Path | None) -> tuple[int, int]:
    """Load the demo contacts and events (a way out of an empty workspace)."""
    from mawb.data import demo_contacts, demo_events

    workspace = Workspace(home)
    return (workspace.import_contacts(demo_contacts()),
            workspace.import_events(demo_events(), source_name="demo"))


def store_overview(reader: WorkspaceReader) -> tuple[dict[str, int], pd.DataFrame] | None:
    """Counts and events per name, or None when the workspace has no store yet."""
    if not reader.has_store():
        return None
    with reader.read() as connection:
        return analytics.store_counts(connection), analytics.events_by_name(connection)


# -- Streamlit -----------------------------------------------------------------------------
def render_data(home: str | Path | None = None) -> None:
    """Draw the data page for the workspace at `home` (default MAWB_HOME or .mawb)."""
    import streamlit as st

    st.title("Data")
    st.caption("Contacts and events the flows run on. Every file is checked completely before "
               "anything is imported: a file with problems changes nothing.")
    reader = WorkspaceReader(home)
    _render_counts(reader, home)
    contacts, events = st.columns(2, gap="large")
    with contacts:
        _render_upload("contacts", home, required=REQUIRED_CONTACT_COLUMNS,
                       hint="Known columns: " + ", ".join(CONTACT_COLUMNS) + ". Others are "
                       "kept as extra attributes. Re-importing a contact_id replaces it.")
    with events:
        _render_upload("events", home, required=REQUIRED_EVENT_COLUMNS,
                       hint="Optional: event_id (generated when absent; duplicates are "
                       "ignored), properties (a JSON object).")


def _render_counts(reader: WorkspaceReader, home: str | Path | None) -> None:
    import streamlit as st

    try:
        overview = store_overview(reader)
    except StoreBusyError:
        st.warning("The workspace store is busy with a long run; counts will show in a moment.")
        return
    if overview is None or overview[0]["contacts"] == 0:
        st.info("This workspace has no contacts yet. Upload a contacts file below, or load the "
                "demo set (3,000 contacts and their last three weeks of events).",
                icon=":material/info:")
        if st.button("Load demo data", icon=":material/download:", key="data_load_demo"):
            with st.spinner("Importing the demo set..."):
                contacts, events = import_demo(home)
            st.toast(f"Imported {contacts:,} contacts and {events:,} events.")
            st.rerun()
        if overview is None:
            return
    counts, by_name = overview
    columns = st.columns(4)
    for column, (label, key) in zip(columns, (("Contacts", "contacts"), ("Events", "events"),
                                              ("Enrollments", "enrollments"),
                                              ("Messages", "messages")), strict=True):
        column.metric(label, f"{counts[key]:,}")
    if not by_name.empty:
        with st.expander(f"Events by name ({len(by_name)})"):
            st.dataframe(by_name, hide_index=True, width="stretch")


def _render_upload(kind: Kind, home: str | Path | None, *, required: tuple[str, ...],
                   hint: str) -> None:
    import streamlit as st

    st.subheader(f"Upload {kind}", anchor=False)
    st.caption(f"CSV, JSON lines or Parquet. Required: {', '.join(required)}. {hint}")
    upload = st.file_uploader(f"{kind.capitalize()} file", type=FILE_TYPES,
                              key=f"data_upload_{kind}")
    if upload is None:
        return
    if st.button(f"Validate and import {upload.name}", key=f"data_import_{kind}",
                 type="primary"):
        with st.spinner(f"Checking {upload.name}..."):
            st.session_state[f"data_outcome_{kind}"] = import_file(home, kind, upload.name,
                                                                   upload.getvalue())
        st.rerun()  # so the counts above include what was just imported
    outcome = st.session_state.get(f"data_outcome_{kind}")
    if isinstance(outcome, ImportOutcome) and outcome.name == upload.name:
        _render_outcome(outcome)


def _render_outcome(outcome: ImportOutcome) -> None:
    import streamlit as st

    if outcome.ok:
        st.success(f"Imported {outcome.imported:,} {outcome.kind} from {outcome.name}.",
                   icon=":material/check_circle:")
    elif outcome.failure:
        st.error(outcome.failure, icon=":material/error:")
    else:
        shown = min(len(outcome.problems), MAX_SHOWN_PROBLEMS)
        st.error(f"{len(outcome.problems):,} problem(s) in {outcome.name}; nothing was "
                 f"imported. Fix them and upload the file again"
                 + (f" (first {shown} shown)." if shown < len(outcome.problems) else "."),
                 icon=":material/error:")
        st.dataframe(outcome.problem_table(), hide_index=True, width="stretch")
