"""The home page: what mawb is, what this workspace holds, and where to go next.

`workspace_overview` gathers the numbers (saved flows from the version files, contacts, events
and recent runs from a short read-only look at the store) and never fails the page: a missing
or busy store simply shows as such. `render_home` draws them; ``app.py`` only calls it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mawb.engine.layout import default_home
from mawb.model import FlowFileError
from mawb.nodes.base import Category
from mawb.versions import VersionStore

PAGES = (
    ("pages/1_Builder.py", "Builder", ":material/account_tree:",
     "Drag steps onto the canvas, branch, validate live, save versions, compile to Airflow."),
    ("pages/2_Templates.py", "Templates", ":material/dashboard:",
     "Start from a ready-made sequence: welcome, lead scoring, onboarding, launch drips."),
    ("pages/3_Monitor.py", "Monitor", ":material/monitoring:",
     "Per-step counts on the canvas, who is where, messages and engagement over time."),
    ("pages/4_Experiments.py", "Experiments", ":material/science:",
     "Simulate a flow on a population, sweep thresholds, compare variants."),
    ("pages/5_Data.py", "Data", ":material/database:",
     "Upload contacts and events with a validation report."),
)
RECENT_RUNS = 8
_CATEGORY_TITLES = {Category.TRIGGER: "triggers", Category.ACTION: "actions",
                    Category.LOGIC: "logic", Category.INTEGRATION: "integrations"}
_CATEGORY_MARKS = {Category.TRIGGER: "green", Category.ACTION: "blue", Category.LOGIC: "orange",
                   Category.INTEGRATION: "violet"}


@dataclass
class Overview:
    """What the workspace holds; `store_note` explains missing store numbers."""

    home: Path
    flows: list[dict[str, Any]] = field(default_factory=list)
    contacts: int | None = None
    events: int | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    store_note: str | None = None


def workspace_overview(home: str | Path | None = None) -> Overview:
    """Saved flows, contact/event counts and recent runs of the workspace at ``home``."""
    home = Path(home) if home is not None else default_home()
    overview = Overview(home=home)
    store = VersionStore(home)
    for flow_id in store.flow_ids():
        listed = store.history(flow_id)
        newest = listed[0]
        try:
            name = store.load(flow_id).name
        except FlowFileError:
            name = "(unreadable)"
        overview.flows.append({"flow": flow_id, "name": name, "versions": len(listed),
                               "latest": f"v{newest.version}", "steps": newest.nodes,
                               "last message": newest.message})
    _read_store(home / "store.duckdb", overview)
    return overview


def _read_store(path: Path, overview: Overview) -> None:
    if not path.exists():
        overview.store_note = "No store yet: import contacts on the Data page (or run `mawb demo`)."
        return
    import duckdb

    from mawb.engine.store import StoreBusyError, connect

    try:
        connection = connect(path, read_only=True, retry_seconds=2.0)
    except (StoreBusyError, duckdb.Error):
        overview.store_note = "The store is busy with a run; numbers will show on the next visit."
        return
    try:
        overview.contacts = _count(connection, "SELECT count(*) FROM contacts")
        overview.events = _count(connection, "SELECT count(*) FROM events")
        frame = connection.execute(
            'SELECT flow_id AS flow, count(DISTINCT tick_time) AS ticks, '
            '  max(tick_time) AS "last tick (flow clock)", max(finished_at) AS "ran at" '
            'FROM runs GROUP BY flow_id ORDER BY "ran at" DESC LIMIT ?',
            [RECENT_RUNS],
        ).fetchdf()
        overview.runs = frame.to_dict("records")
    except duckdb.Error:
        overview.store_note = "The store could not be read; see the Monitor page for details."
    finally:
        connection.close()


def _count(connection: Any, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    return int(row[0]) if row else 0


def render_home(repo_root: Path, home: str | Path | None = None) -> None:
    """Draw the home page; ``repo_root`` is where ``pages/`` lives (links to missing pages are
    left out rather than breaking the page)."""
    import pandas as pd
    import streamlit as st

    st.title("mawb · Marketing Automation Workbench")
    legend = " ".join(f":{_CATEGORY_MARKS[category]}[■ {title}]"
                      for category, title in _CATEGORY_TITLES.items())
    st.markdown(
        "Design marketing automation flows on a canvas, simulate them on your contacts, tune "
        "their thresholds, then run them here or compile them to Apache Airflow.  \n"
        f"Step colours: {legend}"
    )
    overview = workspace_overview(home)
    flows, contacts, events, runs = st.columns(4)
    flows.metric("Saved flows", len(overview.flows))
    contacts.metric("Contacts", _number(overview.contacts))
    events.metric("Events", _number(overview.events))
    runs.metric("Flows with runs", len(overview.runs))
    st.caption(f"Workspace folder `{overview.home.name or overview.home}` "
               "(set `MAWB_HOME` to use another)")
    if overview.store_note:
        st.info(overview.store_note, icon=":material/info:")
    _links(repo_root)
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Flows")
        if overview.flows:
            st.dataframe(pd.DataFrame(overview.flows), hide_index=True, width="stretch")
        else:
            st.caption("No saved flows yet: open the Builder or pick a template to start.")
    with right:
        st.subheader("Recent runs")
        if overview.runs:
            st.dataframe(pd.DataFrame(overview.runs), hide_index=True, width="stretch")
        else:
            st.caption("No runs yet: simulate a flow on the Experiments page or `mawb run`.")


def _links(repo_root: Path) -> None:
    import streamlit as st

    available = [page for page in PAGES if (repo_root / page[0]).exists()]
    columns = st.columns(max(len(available), 1))
    for column, (path, label, icon, blurb) in zip(columns, available, strict=False):
        with column.container(border=True):
            st.page_link(path, label=label, icon=icon)
            st.caption(blurb)


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
