"""The run monitor: how a deployed flow is doing, step by step and contact by contact.

Everything shown comes from one short read-only look at the store (`read_snapshot`), so the
page never holds the store while a run writes, and a busy store becomes a friendly notice,
never a lock error. The live part (KPIs, canvas with per-step counts, charts, errors) sits in
a fragment that re-runs on a timer while the toggle is on, which defaults to on when a tick
finished recently. Who-is-where is a search below it and re-reads only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from mawb import analytics
from mawb.engine.store import StoreBusyError
from mawb.ui.builder_state import with_layout
from mawb.ui.flow_graph import flow_to_graph
from mawb.ui.reader import WorkspaceReader
from mawb.versions import VersionStore

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    import pandas as pd

    from mawb.model import Flow

REFRESH_SECONDS = 5
CANVAS_HEIGHT = 380
COUNT_COLUMNS = ("entered", "waiting", "completed", "failed", "converted")
NOTHING_DEPLOYED = (
    "No flow is deployed in this workspace yet. Pick a template on the **Templates** page, "
    "save it in the **Builder**, or simulate one on **Experiments** and save its params as a "
    "version; `mawb demo` fills a workspace with demo data and run history."
)
NO_STORE = ("This workspace has no store yet: import contacts on the **Data** page, or run "
            "the flow (`mawb run`) to see counts here.")
BUSY = "The workspace store is busy with a long run; the numbers will show in a moment."


@dataclass
class Snapshot:
    """Everything the live part of the monitor draws, read in one short connection."""

    kpis: dict[str, float]
    funnel: pd.DataFrame
    status: dict[str, Any]
    activity: pd.DataFrame
    errors: pd.DataFrame
    error_summary: pd.DataFrame

    def node_counts(self) -> dict[str, dict[str, int]]:
        """Per node id, the counts the canvas draws as badges."""
        return {row["node_id"]: {column: int(row[column]) for column in COUNT_COLUMNS}
                for row in self.funnel.to_dict("records")}


def read_snapshot(reader: WorkspaceReader, flow: Flow) -> Snapshot:
    """Read the monitor's numbers for `flow` (raises StoreBusyError / FileNotFoundError)."""
    with reader.read() as connection:
        return Snapshot(
            kpis=analytics.kpis(connection, flow.id),
            funnel=analytics.funnel(connection, flow),
            status=analytics.run_status(connection, flow.id),
            activity=analytics.daily_activity(connection, flow.id),
            errors=analytics.errors(connection, flow.id),
            error_summary=analytics.error_summary(connection, flow.id),
        )


def find_contact(reader: WorkspaceReader, flow_id: str, text: str) -> pd.DataFrame:
    with reader.read() as connection:
        return analytics.find_contacts(connection, flow_id, text)


def contact_journey(reader: WorkspaceReader, flow: Flow, contact_id: str
                    ) -> dict[str, pd.DataFrame]:
    """Enrollments, path (in flow order within a tick), messages and waiting tokens."""
    with reader.read() as connection:
        journey = analytics.where_is(connection, flow.id, contact_id)
    journey["path"] = ordered_path(journey["path"], flow)
    return journey


def ordered_path(path: pd.DataFrame, flow: Flow) -> pd.DataFrame:
    """The path by time, then by the flow's step order (a tick moves a contact through several
    steps at one timestamp), entering a step before leaving it."""
    from mawb.graph import topological_order

    rank = {node_id: index for index, node_id in enumerate(topological_order(flow))}
    events = {"entered": 0, "waiting": 1, "completed": 3}
    keys = path.assign(_step=path["node_id"].map(rank).fillna(len(rank)),
                       _event=path["event"].map(events).fillna(2))
    ordered = keys.sort_values(["ts", "_step", "_event"], kind="stable")
    return ordered.drop(columns=["_step", "_event"]).reset_index(drop=True)


def monitor_order(deployed: list[str], ran: Iterable[str]) -> list[str]:
    """Deployed flows, the most recently run first (the page opens on it), then the rest."""
    ran = list(ran)
    return [*(i for i in ran if i in deployed), *(i for i in deployed if i not in ran)]


def flow_label(flow: Flow) -> str:
    return f"{flow.name} ({flow.id})" if flow.name and flow.name != flow.id else flow.id


# -- Streamlit -----------------------------------------------------------------------------
def render_monitor(home: str | Path | None = None) -> None:
    """Draw the monitor page for the workspace at `home` (default MAWB_HOME or .mawb)."""
    import streamlit as st

    st.title("Monitor")
    versions = VersionStore(home)
    reader = WorkspaceReader(home)
    flow_ids = versions.flow_ids()
    if not flow_ids:
        st.info(NOTHING_DEPLOYED, icon=":material/info:")
        return
    flows = {flow_id: versions.load(flow_id) for flow_id in flow_ids}
    ran = _last_runs(reader)  # one short read for the whole page header
    chosen = st.selectbox("Flow", monitor_order(flow_ids, ran), key="monitor_flow",
                          format_func=lambda i: flow_label(flows[i])
                          + ("" if i in ran else " · no runs yet"))
    flow = flows[chosen]
    st.caption(f"Version {flow.version} of {len(versions.versions(flow.id))} · "
               f"{len(flow.nodes)} steps · workspace `{reader.home}`")
    if not reader.has_store():
        st.info(NO_STORE, icon=":material/info:")
        return
    live = analytics.is_live(ran.get(flow.id))
    auto = st.toggle("Auto-refresh", value=live, key=f"monitor_auto_{flow.id}",
                     help=f"Re-read the store every {REFRESH_SECONDS} s while a run is live.")
    run_every = REFRESH_SECONDS if auto else None

    @st.fragment(run_every=run_every)
    def live_panel() -> None:
        _render_live(reader, flow)

    live_panel()
    _render_who_is_where(reader, flow)


def _last_runs(reader: WorkspaceReader) -> dict[str, Any]:
    try:
        with reader.read() as connection:
            return analytics.last_runs(connection)
    except (StoreBusyError, FileNotFoundError, duckdb.Error):
        return {}


def _render_live(reader: WorkspaceReader, flow: Flow) -> None:
    import streamlit as st

    try:
        snapshot = read_snapshot(reader, flow)
    except StoreBusyError:
        st.warning(BUSY, icon=":material/hourglass_top:")
        return
    _render_status(snapshot.status)
    if snapshot.kpis["enrolled"] == 0 and snapshot.status["ticks"] == 0:
        st.info("This flow has not run yet. Run it (`mawb run`), or simulate it on the "
                "**Experiments** page to see what it would do.", icon=":material/info:")
    _render_kpis(snapshot.kpis)
    from mawb.ui.canvas import flow_canvas

    st.subheader("Contacts per step", anchor=False)
    graph = flow_to_graph(with_layout(flow), counts=snapshot.node_counts())
    flow_canvas(graph, key=f"monitor_canvas_{flow.id}", read_only=True, height=CANVAS_HEIGHT)
    with st.expander("Counts per step as a chart and table"):
        st.plotly_chart(analytics.funnel_figure(snapshot.funnel), width="stretch",
                        key=f"monitor_funnel_{flow.id}")
        st.dataframe(snapshot.funnel, hide_index=True, width="stretch")
    _render_activity(snapshot.activity, flow.id)
    _render_errors(snapshot)


def _render_status(status: dict[str, Any]) -> None:
    import streamlit as st

    if status["ticks"] == 0:
        return
    state = ":green-badge[live]" if status["live"] else ":gray-badge[idle]"
    st.markdown(f"{state} last tick at flow time **{status['last_tick']:%Y-%m-%d %H:%M}** · "
                f"{status['ticks']} ticks · {status['waiting']:,} contacts waiting in steps")


def _render_kpis(kpis: dict[str, float]) -> None:
    import streamlit as st

    first = st.columns(4)
    for column, (label, key) in zip(first, (("Enrolled", "enrolled"), ("Active", "active"),
                                            ("Completed", "completed"),
                                            ("Converted", "converted")), strict=True):
        column.metric(label, f"{int(kpis[key]):,}")
    second = st.columns(4)
    second[0].metric("Messages sent", f"{int(kpis['messages']):,}")
    second[1].metric("Open rate", f"{kpis['open_rate']:.1%}")
    second[2].metric("Click rate", f"{kpis['click_rate']:.1%}")
    second[3].metric("Unsubscribes", f"{int(kpis['unsubscribes']):,}")


def _render_activity(activity: pd.DataFrame, flow_id: str) -> None:
    import streamlit as st

    st.subheader("Messages and engagement over time", anchor=False)
    if activity.empty:
        st.caption("No messages sent yet.")
        return
    channels = sorted(set(activity["channel"]))
    choice = st.segmented_control("Channel", ["all", *channels], default="all",
                                  key=f"monitor_channel_{flow_id}")
    selected = None if choice in (None, "all") else choice
    shown = activity if selected is None else activity[activity["channel"] == selected]
    left, right = st.columns(2)
    left.plotly_chart(analytics.messages_figure(shown), width="stretch")
    right.plotly_chart(analytics.engagement_figure(activity, selected), width="stretch")


def _render_errors(snapshot: Snapshot) -> None:
    import streamlit as st

    st.subheader("Errors and dead letters", anchor=False)
    if snapshot.errors.empty:
        st.caption("No failed or dead-lettered messages or calls.")
        return
    dead = int((snapshot.errors["status"] == "dead").sum())
    st.error(f"{len(snapshot.errors):,} failed side effects ({dead:,} dead-lettered after "
             "every retry). Fix the provider or the step, then re-run.",
             icon=":material/error:")
    st.dataframe(snapshot.error_summary, hide_index=True, width="stretch")
    with st.expander("Latest failures"):
        st.dataframe(snapshot.errors, hide_index=True, width="stretch")


def _render_who_is_where(reader: WorkspaceReader, flow: Flow) -> None:
    import streamlit as st

    st.subheader("Who is where", anchor=False)
    text = st.text_input("Find a contact", placeholder="contact id or part of an email",
                         key=f"monitor_search_{flow.id}")
    if not text.strip():
        st.caption("Search a contact to see its path through the flow and the messages it got.")
        return
    try:
        found = find_contact(reader, flow.id, text)
    except StoreBusyError:
        st.warning(BUSY, icon=":material/hourglass_top:")
        return
    if found.empty:
        st.info(f"No contact id or email contains {text.strip()!r}.")
        return
    contact_id = st.selectbox(
        "Contact", found["contact_id"].tolist(), key=f"monitor_contact_{flow.id}",
        format_func=lambda cid: _contact_label(found, cid),
    )
    journey = contact_journey(reader, flow, contact_id)
    _render_journey(journey)


def _contact_label(found: pd.DataFrame, contact_id: str) -> str:
    row = found[found["contact_id"] == contact_id].iloc[0]
    status = row["status"] if isinstance(row["status"], str) else "not enrolled"
    email = f" · {row['email']}" if isinstance(row["email"], str) else ""
    return f"{contact_id}{email} · {status}"


def _waiting_place(node_id: str, wake_at: Any) -> str:
    import pandas as pd

    return f"**{node_id}**" + ("" if pd.isna(wake_at) else f" (until {wake_at:%Y-%m-%d %H:%M})")


def _render_journey(journey: dict[str, pd.DataFrame]) -> None:
    import streamlit as st

    if journey["enrollments"].empty:
        st.info("This contact has not entered the flow.")
        return
    waiting = journey["waiting"]
    if not waiting.empty:
        places = ", ".join(_waiting_place(row.node_id, row.wake_at)
                           for row in waiting.itertuples())
        st.markdown(f"Now waiting at {places}")
    path, messages = st.columns([3, 2])
    with path:
        st.caption("Path through the flow")
        st.dataframe(journey["path"], hide_index=True, width="stretch")
    with messages:
        st.caption(f"Messages ({len(journey['messages'])})")
        st.dataframe(journey["messages"][["sent_at", "node_id", "channel", "subject"]],
                     hide_index=True, width="stretch")
    st.caption("Enrollments")
    st.dataframe(journey["enrollments"], hide_index=True, width="stretch")
