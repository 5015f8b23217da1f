"""The Builder's "Contacts in flight": after a publish, move older versions' contacts on.

Contacts stay on the version they entered with (its nodes, its params) and the engine drains
older versions to the end; moving them onto the newest version is an explicit choice, as in
`mawb move-contacts`. This panel shows, per older version still holding active enrollments,
where they wait, the default mapping (same id = same node), a counterpart of the same type to
pick for every node the newest version lacks (or "finish on vM"), and one button. The rules
live in `mawb.versions` (`plan_move`, `move_in_flight`); while the service runs, the move is a
`move` command its loop applies, so the page never writes a store another process owns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from mawb.ui import builder_reads as reads
from mawb.ui import golive
from mawb.ui.golive import Outcome
from mawb.versions import in_flight, move_in_flight, plan_move

if TYPE_CHECKING:
    from pathlib import Path

    from mawb.model import Flow
    from mawb.versions import InFlight, VersionStore


def render_in_flight(flow_id: str, store: VersionStore) -> None:
    """Draw the panel for `flow_id` in the workspace of `store` (nothing when nobody waits on
    an older version)."""
    waiting = _waiting(store.home, flow_id)
    newest = store.latest(flow_id)
    if newest is None:
        return
    older = {version: found for version, found in waiting.items() if version < newest}
    if not older:
        return
    st.markdown(f"**Contacts in flight** · they stay on their version until moved onto "
                f"v{newest}")
    for version, found in sorted(older.items()):
        _version_move(store, flow_id, version, newest, found)


def _version_move(store: VersionStore, flow_id: str, version: int, newest: int,
                  found: InFlight) -> None:
    old, new = store.load(flow_id, version), store.load(flow_id, newest)
    default = plan_move(old, new)
    nodes, enrollments = found.at, found.enrollments
    with st.expander(f"v{version}: {enrollments} enrollment{'s' * (enrollments != 1)} waiting",
                     expanded=True):
        mapping = _mapping_inputs(old, new, default.unmapped, nodes, key=f"{flow_id}_{version}")
        plan = plan_move(old, new, mapping)
        rows = [{"waiting at": node, "contacts": count,
                 f"in v{newest}": plan.mapping.get(node, f"— finishes on v{version}")}
                for node, count in sorted(nodes.items())]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     key=f"in_flight_{flow_id}_{version}")
        if any(node not in plan.mapping for node in nodes):
            st.caption(f"Enrollments waiting at a node v{newest} lacks stay and finish on "
                       f"v{version} (pick a counterpart above to move them too).")
        if st.button(f"Move onto v{newest}", key=f"move_{flow_id}_{version}",
                     icon=":material/move_down:"):
            outcome = move_contacts(store.home, flow_id, version, newest, mapping)
            _waiting_at.clear()  # the page changed the store itself
            (st.toast if outcome.ok else st.error)(outcome.message)
            if outcome.ok:
                st.rerun()


def _mapping_inputs(old: Flow, new: Flow, unmapped: tuple[str, ...], nodes: dict[str, int],
                    key: str) -> dict[str, str]:
    """A select per node the new version lacks that contacts wait at: a same-type node of
    the new version, or finishing on the old one."""
    finish = f"finish on v{old.version}"
    types = {node.id: node.type for node in old.nodes}
    mapping: dict[str, str] = {}
    for node_id in unmapped:
        if node_id not in nodes:
            continue
        options = [finish, *(n.id for n in new.nodes if n.type == types[node_id])]
        choice = st.selectbox(f"`{node_id}` ({types[node_id]}, {nodes[node_id]} waiting) "
                              f"is not in v{new.version}: move its contacts to", options,
                              key=f"map_{key}_{node_id}")
        if choice != finish:
            mapping[node_id] = choice
    return mapping


def _waiting(home: Path, flow_id: str) -> dict[int, InFlight]:
    """Read once per store change: the versions tab reruns with every canvas action."""
    stamp = reads.store_stamp(home)
    return {} if stamp is None else _waiting_at(str(home), flow_id, stamp)


@st.cache_data(max_entries=16, show_spinner=False)
def _waiting_at(home: str, flow_id: str, stamp: reads.Stamp) -> dict[int, InFlight]:
    from pathlib import Path

    from mawb.engine.store import StoreBusyError, StoreSchemaError
    from mawb.ui.reader import WorkspaceReader

    try:
        with WorkspaceReader(Path(home)).read() as connection:
            return in_flight(connection, flow_id)
    except (StoreBusyError, StoreSchemaError, FileNotFoundError):
        return {}


def move_contacts(home: Path, flow_id: str, from_version: int, to_version: int,
                  mapping: dict[str, str]) -> Outcome:
    """Move through the service when it runs (its loop is the one writer), else directly."""
    if golive.service_running(home):
        from mawb.service.client import ask, command

        return Outcome(*ask(home, [command("move", flow_id=flow_id, from_version=from_version,
                                           to_version=to_version, mapping=mapping)],
                            "Asked the service to move the contacts; it applies requests "
                            "within about a second."))
    from mawb.engine import Workspace

    try:
        result = move_in_flight(Workspace(home), flow_id, from_version, to_version, mapping)
    except (KeyError, ValueError) as error:
        return Outcome(False, str(error.args[0] if error.args else error))
    left = sum(result.stayed.values())
    return Outcome(True, f"{result.moved} enrollments moved onto v{to_version}"
                   + (f"; {left} stay on v{from_version}" if left else "") + ".")
