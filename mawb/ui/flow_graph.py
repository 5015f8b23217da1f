"""Translation between a `Flow` and the canvas graph (the JSON the React Flow component speaks).

Every page draws flows through the same component: the builder edits them, the gallery shows
read-only previews, the monitor adds per-node counts. They all build the canvas graph here, so a
node looks the same everywhere (category colour, icon, label, one-line summary, one labelled
handle per branch) and edits come back to a `Flow` in one place. The graph shape is described in
``frontend/canvas/src/types.ts``; an edge's ``sourceHandle`` is the flow edge's ``branch``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from mawb import nodes
from mawb.model import Edge, Flow, Layout, Node
from mawb.nodes.base import CATEGORY_COLORS, Category, NodeType
from mawb.validate import Diagnostic, Severity

UNKNOWN_COLOR = "#64748b"
"""Colour of nodes whose type is not registered (shown, flagged by validation)."""

Counts = Mapping[str, Mapping[str, int | None]]
UNREACHABLE = "unreachable"
"""The one error the canvas can work out alone (no trigger leads to the node): it redraws it
the moment an edit changes the edges, before Python's validation comes back."""


def palette_items() -> list[dict[str, Any]]:
    """Every registered node type as a palette entry, in palette order (built once: the
    registry does not change while the app runs)."""
    return list(_palette())


@functools.cache
def _palette() -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "type": node_type.type,
            "category": node_type.category.value,
            "label": node_type.label,
            "icon": node_type.icon,
            "color": CATEGORY_COLORS[node_type.category],
            "help": node_type.help,
            "branches": list(node_type.fixed_branches),
            "outputs": node_type.outputs.value,
            "is_trigger": node_type.category is Category.TRIGGER,
            "params": {},
        }
        for node_type in nodes.all_types()
    )


def edge_id(edge: Edge, taken: set[str]) -> str:
    """A readable, unique canvas id for a flow edge: ``check__true__welcome`` (same scheme as the
    canvas uses for edges the user draws)."""
    base = f"{edge.source}__{edge.branch or 'out'}__{edge.target}"
    candidate, index = base, 2
    while candidate in taken:
        candidate, index = f"{base}_{index}", index + 1
    taken.add(candidate)
    return candidate


def flow_to_graph(
    flow: Flow,
    *,
    diagnostics: Iterable[Diagnostic] = (),
    counts: Counts | None = None,
    selected: str | None = None,
    positions: Mapping[str, tuple[float, float]] | None = None,
    edge_labels: Mapping[tuple[str, str | None, str], str] | None = None,
) -> dict[str, Any]:
    """The canvas graph of ``flow``: errors from ``diagnostics`` drawn on their nodes (warnings
    are left to the diagnostics table), ``counts`` per node id as badges (monitor), node
    positions from ``positions``, else the flow's layout, else a simple left-to-right grid;
    ``edge_labels`` by (source, branch, target) drawn on the edges (the monitor's contacts).
    """
    errors = _errors_by_node(diagnostics)
    where = dict(positions) if positions is not None else dict(flow.ui.positions)
    graph_nodes = []
    for index, node in enumerate(flow.nodes):
        x, y = where.get(node.id, (index * 260.0, 0.0))
        data = node_data(node)
        found = errors.get(node.id, [])
        data["error"] = "; ".join(message for _, message in found) or None
        # What the canvas needs to redraw reachability itself until Python answers an edit.
        data["other_errors"] = [message for code, message in found if code != UNREACHABLE]
        data["counts"] = dict(counts[node.id]) if counts and node.id in counts else None
        graph_nodes.append(
            {"id": node.id, "type": node.type, "position": {"x": round(x), "y": round(y)},
             "data": data}
        )
    taken: set[str] = set()
    graph_edges = []
    for edge in flow.edges:
        shown: dict[str, Any] = {"id": edge_id(edge, taken), "source": edge.source,
                                 "target": edge.target, "sourceHandle": edge.branch}
        label = (edge_labels or {}).get((edge.source, edge.branch, edge.target))
        if label:
            shown["label"] = label
        graph_edges.append(shown)
    known = {node.id for node in flow.nodes}
    return {
        "nodes": graph_nodes,
        "edges": graph_edges,
        "selected": selected if selected in known else None,
    }


def node_data(node: Node) -> dict[str, Any]:
    """What the canvas shows for one node: looks from its type, summary and branches from its
    params (switch cases become handles), falling back gracefully while params are invalid."""
    if not nodes.has(node.type):
        return {
            "label": node.label or node.type, "category": "unknown", "color": UNKNOWN_COLOR,
            "icon": None, "summary": "unknown node type", "branches": [], "outputs": "single",
            "is_trigger": False, "params": dict(node.params),
        }
    node_type = nodes.get(node.type)
    summary, branches = _summary_and_branches(node_type, node.params)
    return {
        "label": node.label or node_type.label,
        "category": node_type.category.value,
        "color": CATEGORY_COLORS[node_type.category],
        "icon": node_type.icon,
        "summary": summary,
        "branches": branches,
        "outputs": node_type.outputs.value,
        "is_trigger": node_type.category is Category.TRIGGER,
        "params": dict(node.params),
    }


def graph_to_flow(graph: Mapping[str, Any], base: Flow) -> Flow:
    """The flow after a canvas edit: ``base`` with the graph's nodes, edges and positions.

    Labels of nodes that already existed are kept from ``base`` (the canvas shows the type's label
    for unlabelled nodes and must not turn it into an explicit one); params come from the node's
    data, so edits made in Python and sent to the canvas survive the round trip.
    """
    labels = {node.id: node.label for node in base.nodes}
    flow_nodes: list[Node] = []
    positions: dict[str, tuple[float, float]] = {}
    for raw in graph.get("nodes", []):
        data = raw.get("data") or {}
        params = data.get("params")
        flow_nodes.append(
            Node(id=str(raw["id"]), type=str(raw["type"]), label=labels.get(str(raw["id"])),
                 params=dict(params) if isinstance(params, Mapping) else {})
        )
        position = raw.get("position") or {}
        positions[str(raw["id"])] = (float(position.get("x", 0)), float(position.get("y", 0)))
    flow_edges = [
        Edge(source=str(raw["source"]), target=str(raw["target"]),
             branch=raw.get("sourceHandle") or None)
        for raw in graph.get("edges", [])
    ]
    return base.model_copy(
        update={"nodes": flow_nodes, "edges": flow_edges, "ui": Layout(positions=positions)},
        deep=True,
    )


def _summary_and_branches(
    node_type: type[NodeType], params: Mapping[str, Any]
) -> tuple[str, list[str]]:
    try:
        parsed = node_type.parse(params)
    except ValidationError:
        return "check the settings", _fallback_branches(node_type, params)
    return node_type.summary(parsed), list(node_type.branches(parsed))


def _fallback_branches(node_type: type[NodeType], params: Mapping[str, Any]) -> list[str]:
    """Branches while params are invalid: for a switch keep the case names that are readable,
    so existing edges keep their handles while the user fixes a case."""
    names: list[str] = []
    cases = params.get("cases")
    if isinstance(cases, list):
        names = [case["name"] for case in cases
                 if isinstance(case, Mapping) and isinstance(case.get("name"), str)]
    if not names:
        return list(node_type.fixed_branches)
    return [*dict.fromkeys(names), *(b for b in node_type.fixed_branches if b not in names)]


def _errors_by_node(diagnostics: Iterable[Diagnostic]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for diagnostic in diagnostics:
        if diagnostic.node_id and diagnostic.severity is Severity.ERROR:
            found.setdefault(diagnostic.node_id, []).append((diagnostic.code,
                                                             diagnostic.message))
    return found
