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

from mawb import analytics, nodes
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
    """Everything the live part of the monitor draws, read in one short connection, in the
    counts vocabulary of `mawb.analytics` (so tiles, badges, edge labels and tables agree)."""

    kpis: dict[str, Any]
    funnel: pd.DataFrame
    status: dict[str, Any]
    activity: pd.DataFrame
    errors: pd.DataFrame
    error_summary: pd.DataFrame
    messages: pd.DataFrame
    reasons: pd.DataFrame
    edges: pd.DataFrame
    engagement: pd.DataFrame
    service: dict[str, Any]

    def node_counts(self) -> dict[str, dict[str, int]]:
        """Per node id, the counts the canvas draws as badges; a merge shows the contacts it
        let through next to the tokens that arrived (one per incoming branch)."""
        counts = {}
        for row in self.funnel.to_dict("records"):
            badge = {column: int(row[column]) for column in COUNT_COLUMNS}
            if nodes.has(row["type"]) and nodes.get(row["type"]).is_merge:
                badge["contacts"] = int(row["contacts"])
            counts[row["node_id"]] = badge
        return counts

    def edge_labels(self) -> dict[tuple[str, str | None, str], str]:
        """(source, branch, target) -> the label drawn on that edge."""
        return {(row["source"], row["branch"] if isinstance(row["branch"], str) else None,
                 row["target"]): f"{int(row['tokens']):,}"
                for row in self.edges.to_dict("records")}


def read_snapshot(reader: WorkspaceReader, flow: Flow) -> Snapshot:
    """Read the monitor's numbers for `flow` (raises StoreBusyError / FileNotFoundError)."""
    with reader.read() as connection:
        return Snapshot(
            kpis=analytics.kpis(connection, flow.id),
            funnel=analytics.step_counts(connection, flow),
            status=analytics.run_status(connection, flow.id),
            activity=analytics.daily_activity(connection, flow.id),
            errors=analytics.errors(connection, flow.id),
            error_summary=analytics.error_summary(connection, flow.id),
            messages=analytics.message_counts(connection, flow),
            reasons=analytics.suppression_reasons(connection, flow.id),
            edges=analytics.edge_counts(connection, flow),
            engagement=analytics.engagement_counts(connection, flow.id),
            service=analytics.service_health(connection, flow.id),
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
    from mawb.flowplan import plan

    rank = {node_id: index for index, node_id in enumerate(plan(flow).order)}
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
    _render_service(snapshot.service, reader, flow)
    if snapshot.kpis["enrolled"] == 0 and snapshot.status["ticks"] == 0:
        st.info("This flow has not run yet. Set it live above (the service ticks it), or "
                "simulate it on the **Experiments** page to see what it would do.",
                icon=":material/info:")
    _render_kpis(snapshot.kpis)
    from mawb.ui.canvas import flow_canvas

    st.subheader("Contacts per step", anchor=False)
    st.caption("Badges: tokens in, waiting, done, failed, converted at each step (a merge also "
               "shows the contacts it let through); edges: the tokens that took them.")
    graph = flow_to_graph(with_layout(flow), counts=snapshot.node_counts(),
                          edge_labels=snapshot.edge_labels())
    flow_canvas(graph, key=f"monitor_canvas_{flow.id}", read_only=True, height=CANVAS_HEIGHT)
    _render_messages(snapshot)
    with st.expander("Counts per step as a chart and table"):
        st.plotly_chart(analytics.funnel_figure(snapshot.funnel), width="stretch",
                        key=f"monitor_funnel_{flow.id}")
        st.dataframe(snapshot.funnel, hide_index=True, width="stretch",
                     key=f"monitor_steps_{flow.id}")
    _render_activity(snapshot, flow.id)
    _render_errors(snapshot)


def service_line(service: dict[str, Any], sandbox: bool) -> str:
    """The Monitor's one line about the live side (plain words, dashes for no data)."""
    badge = {"live": ":green-badge[live]", "paused": ":orange-badge[paused]",
             "stopped": ":red-badge[stopped]"}.get(service["state"], ":gray-badge[draft]")
    last = service["last_tick"]
    intake = service["intake_per_minute"]
    ticking = (":green-badge[ticking]" if analytics.is_live(service["last_finished"])
               else ":gray-badge[idle]")
    parts = [f"{badge} {ticking}",
             f"last tick at flow time **{last:%Y-%m-%d %H:%M}**" if last else "no tick yet",
             "intake " + (analytics.DASH if intake is None else f"**{intake:,.1f}** events/min"),
             f"queue **{service['queue']:,}**", f"dead letters **{service['dead_letters']:,}**",
             ":blue-badge[sandbox] no delivery connection configured: messages are recorded, "
             "not sent" if sandbox else "delivery through the workspace's connections"]
    return " · ".join(parts)


def _render_service(service: dict[str, Any], reader: WorkspaceReader, flow: Flow) -> None:
    import streamlit as st

    from mawb.ui import golive

    line, buttons = st.columns([5, 2], vertical_alignment="center")
    line.markdown(service_line(service, not (reader.home / "connections.yaml").exists()))
    if not golive.lifecycle_available():
        return
    actions = golive.ACTIONS.get(service["state"], ())
    with buttons:
        for column, action in zip(st.columns(max(len(actions), 1)), actions, strict=False):
            if column.button(golive.LABELS[action], key=f"monitor_{action}_{flow.id}",
                             width="stretch"):
                outcome = golive.change_state(reader.home, flow, action)
                (st.toast if outcome.ok else st.error)(outcome.message)
                st.rerun()


def _render_kpis(kpis: dict[str, Any]) -> None:
    import streamlit as st

    number, percent = analytics.number, analytics.percent
    first = st.columns(5)
    first[0].metric("Enrolled", number(kpis["enrolled"]),
                    help=f"{number(kpis['enrolled_contacts'])} distinct contacts")
    first[1].metric("Active", number(kpis["active"]))
    first[2].metric("Completed", number(kpis["completed"]))
    first[3].metric("Converted", number(kpis["converted"]),
                    help="Contacts, each once: reached the goal or converted after entering. "
                    f"{number(kpis['conversion_events'])} conversion events.")
    first[4].metric("Conversion rate", percent(kpis["conversion_rate"]),
                    help="Converted contacts / enrolled contacts")
    second = st.columns(5)
    second[0].metric("Messages sent", number(kpis["messages"]))
    second[1].metric("Open rate", percent(kpis["open_rate"]),
                     help="Contacts who opened / contacts sent an email or push; a dash when "
                     "none was sent")
    second[2].metric("Click rate", percent(kpis["click_rate"]),
                     help="Contacts who clicked / contacts sent an email or push")
    second[3].metric("Unsubscribes", number(kpis["unsubscribes"]),
                     help=f"{number(kpis['real_unsubscribes'])} real, "
                     f"{number(kpis['simulated_unsubscribes'])} simulated")
    second[4].metric("Bounces", number(kpis["bounces"]))


def message_table(snapshot: Snapshot) -> pd.DataFrame:
    """Per message step: entered and every outcome (they add up to entered), with the
    reasons of suppressions and skips in words."""
    import pandas as pd

    if snapshot.messages.empty:
        return pd.DataFrame()
    reasons = snapshot.reasons.groupby("node_id").apply(
        lambda part: ", ".join(f"{r.reason.replace('_', ' ')} {int(r.count):,}"
                               for r in part.itertuples()), include_groups=False
    ) if not snapshot.reasons.empty else pd.Series(dtype=str)
    table = snapshot.messages[["label", "channel", "entered", *analytics.MESSAGE_OUTCOMES,
                               "node_id"]].copy()
    table["why not sent"] = table["node_id"].map(reasons).fillna("")
    return table.drop(columns=["node_id"]).rename(columns={"label": "step"})


def _render_messages(snapshot: Snapshot) -> None:
    import streamlit as st

    table = message_table(snapshot)
    if table.empty:
        return
    st.subheader("Message steps", anchor=False)
    st.caption("Every entry of a message step ends as one of: sent, suppressed (consent, "
               "unsubscribed, suppressed address), skipped (frequency cap), deferred (quiet "
               "hours, cap hold, retry), queued, failed or dead; the row adds up to entered.")
    st.dataframe(table, hide_index=True, width="stretch", key="monitor_message_steps")


def _render_activity(snapshot: Snapshot, flow_id: str) -> None:
    import streamlit as st

    activity = snapshot.activity
    st.subheader("Messages and engagement over time", anchor=False)
    if activity.empty:
        st.caption("No messages sent yet.")
        return
    first, last = activity["day"].min(), activity["day"].max()
    st.caption(f"{first:%Y-%m-%d} to {last:%Y-%m-%d} (both charts); days without activity "
               "show as 0. Real engagement (tracking links, the events API, provider "
               "webhooks, imports) is drawn solid, the simulation's dotted.")
    channels = sorted(set(activity["channel"]))
    choice = st.segmented_control("Channel", ["all", *channels], default="all",
                                  key=f"monitor_channel_{flow_id}")
    selected = None if choice in (None, "all") else choice
    shown = activity if selected is None else activity[activity["channel"] == selected]
    left, right = st.columns(2)
    left.plotly_chart(analytics.messages_figure(shown), width="stretch")
    right.plotly_chart(analytics.engagement_figure(activity, selected), width="stretch")
    engagement = snapshot.engagement.rename_axis("metric").reset_index()
    st.dataframe(engagement, hide_index=True, key=f"monitor_engagement_{flow_id}",
                 column_config={"metric": "engagement (events)"})


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
    _render_waiting(reader, flow)
    text = st.text_input("Find a contact", placeholder="contact id or part of an email",
                         key=f"monitor_search_{flow.id}")
    if not text.strip():
        st.caption("Search a contact to see its profile, its path through the flow and the "
                   "messages it got.")
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
    with reader.read() as connection:
        profile = analytics.contact_profile(connection, contact_id)
    _render_profile(profile)
    _render_journey(journey, flow)


def _render_waiting(reader: WorkspaceReader, flow: Flow) -> None:
    import streamlit as st

    labels = {node.id: analytics.step_label(node) for node in flow.nodes}
    step = st.selectbox("Contacts waiting at a step", list(labels), index=None,
                        format_func=lambda node_id: f"{labels[node_id]} ({node_id})",
                        key=f"monitor_waiting_{flow.id}", placeholder="Choose a step")
    if step is None:
        return
    with reader.read() as connection:
        waiting = analytics.waiting_at(connection, flow.id, step)
    if waiting.empty:
        st.caption(f"Nobody is waiting at {labels[step]}.")
        return
    st.dataframe(waiting, hide_index=True, width="stretch", key=f"monitor_waiting_list_{step}",
                 column_config={"wake_at": "wakes at", "arrived_at": "arrived at"})


def _render_profile(profile: dict[str, Any]) -> None:
    import streamlit as st

    attributes, consent = st.columns([3, 2])
    with attributes:
        st.caption("Attributes")
        rows = [{"attribute": k, "value": str(v)} for k, v in profile["attributes"].items()]
        st.dataframe(rows, hide_index=True, width="stretch", key="monitor_profile_attributes")
    with consent:
        st.caption("Consent")
        words = {True: "yes", False: "no"}
        st.dataframe([{"": k.replace("_", " "), "value": words[v]}
                      for k, v in profile["consent"].items()], hide_index=True,
                     width="stretch", key="monitor_profile_consent")
    if not profile["flows"].empty:
        st.caption("Flows")
        st.dataframe(profile["flows"], hide_index=True, width="stretch",
                     key="monitor_profile_flows")


def _contact_label(found: pd.DataFrame, contact_id: str) -> str:
    row = found[found["contact_id"] == contact_id].iloc[0]
    status = row["status"] if isinstance(row["status"], str) else "not enrolled"
    email = f" · {row['email']}" if isinstance(row["email"], str) else ""
    return f"{contact_id}{email} · {status}"


def _waiting_place(label: str, wake_at: Any) -> str:
    import pandas as pd

    return f"**{label}**" + ("" if pd.isna(wake_at) else f" (until {wake_at:%Y-%m-%d %H:%M})")


def journey_tables(journey: dict[str, pd.DataFrame], flow: Flow) -> dict[str, pd.DataFrame]:
    """The journey as shown: step labels instead of ids, empty cells instead of None."""
    labels = {node.id: analytics.step_label(node) for node in flow.nodes}
    path = journey["path"].copy()
    path.insert(1, "step", path["node_id"].map(labels).fillna(path["node_id"]))
    path = path.drop(columns=["node_id"])
    path = path.astype(object).where(path.notna(), "")
    messages = journey["messages"].copy()
    messages.insert(1, "step", messages["node_id"].map(labels).fillna(messages["node_id"]))
    return {"path": path, "messages": messages[["sent_at", "step", "channel", "subject"]]}


def _render_journey(journey: dict[str, pd.DataFrame], flow: Flow) -> None:
    import streamlit as st

    if journey["enrollments"].empty:
        st.info("This contact has not entered the flow.")
        return
    labels = {node.id: analytics.step_label(node) for node in flow.nodes}
    waiting = journey["waiting"]
    if not waiting.empty:
        places = ", ".join(_waiting_place(labels.get(row.node_id, row.node_id), row.wake_at)
                           for row in waiting.itertuples())
        st.markdown(f"Now waiting at {places}")
    tables = journey_tables(journey, flow)
    path, messages = st.columns([3, 2])
    with path:
        st.caption("Path through the flow")
        st.dataframe(tables["path"], hide_index=True, width="stretch")
    with messages:
        st.caption(f"Messages ({len(tables['messages'])})")
        st.dataframe(tables["messages"], hide_index=True, width="stretch")
    st.caption("Enrollments")
    st.dataframe(journey["enrollments"], hide_index=True, width="stretch")
