"""Layered (Sugiyama-style) left-to-right placement of a flow: the canvas's auto layout and the
notebook SVG pictures share it, so a flow looks the same everywhere.

Flows are mostly DAGs that read left to right from the triggers, with loop back-edges and,
while the user is still editing, perhaps illegal cycles or loose nodes. The layout must cope
with all of them, be deterministic (the same flow always gets the same picture, so a layout is
not mistaken for an edit) and keep branches in handle order (``true`` above ``false``).

Steps: ignore loop back-edges and break any other cycle, put each node in the layer of its
longest path from a source, order each layer by the barycentre of its predecessors (a few
sweeps), then place layers ``LAYER_GAP`` apart and rows ``ROW_GAP`` apart, centred vertically.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from mawb.flowplan import plan

if TYPE_CHECKING:
    from mawb.model import Edge, Flow

LAYER_GAP = 260.0
"""Horizontal distance between layers (a canvas node is 210 px wide, plus room for the edge)."""
ROW_GAP = 120.0
"""Vertical distance between nodes of the same layer."""
_SWEEPS = 4


def layered_positions(
    flow: Flow, layer_gap: float = LAYER_GAP, row_gap: float = ROW_GAP
) -> dict[str, tuple[float, float]]:
    """Top-left position of every node, keyed by node id (canvas spacing unless given).

    >>> from mawb.model import Flow
    >>> flow = Flow.new("f").add("a", "manual_trigger").add("b", "email_send").connect("a", "b")
    >>> layered_positions(flow)
    {'a': (0.0, 0.0), 'b': (260.0, 0.0)}
    """
    ids = list(dict.fromkeys(node.id for node in flow.nodes))
    edges = _acyclic_edges(flow, ids)
    layers = _layers(ids, edges)
    rows = _order_rows(flow, ids, edges, layers)
    return _place(rows, layer_gap, row_gap)


def _acyclic_edges(flow: Flow, ids: list[str]) -> list[Edge]:
    """Forward edges between known nodes with every remaining cycle broken (DFS back-edges)."""
    known = set(ids)
    loops = plan(flow).back_edges
    candidates = [
        edge for edge in flow.edges
        if edge.source in known and edge.target in known and edge.source != edge.target
        and (edge.source, edge.target, edge.branch) not in loops
    ]
    out: dict[str, list[Edge]] = defaultdict(list)
    for edge in candidates:
        out[edge.source].append(edge)
    kept: list[Edge] = []
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = finished
    for root in ids:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node_id, index = stack.pop()
            if index < len(out[node_id]):
                stack.append((node_id, index + 1))
                edge = out[node_id][index]
                if state.get(edge.target) == 1:
                    continue  # closes a cycle: drop it for layout purposes only
                kept.append(edge)
                if edge.target not in state:
                    state[edge.target] = 1
                    stack.append((edge.target, 0))
            else:
                state[node_id] = 2
    return kept


def _layers(ids: list[str], edges: list[Edge]) -> dict[str, int]:
    """Longest-path layering over an acyclic edge list (Kahn's order)."""
    incoming: dict[str, int] = dict.fromkeys(ids, 0)
    out: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        incoming[edge.target] += 1
        out[edge.source].append(edge.target)
    layer = dict.fromkeys(ids, 0)
    ready = [node_id for node_id in ids if incoming[node_id] == 0]
    while ready:
        current = ready.pop(0)
        for target in out[current]:
            layer[target] = max(layer[target], layer[current] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return layer


def _order_rows(
    flow: Flow, ids: list[str], edges: list[Edge], layer: dict[str, int]
) -> list[list[str]]:
    """Nodes per layer, ordered to reduce crossings and keep branch order."""
    count = max(layer.values(), default=-1) + 1
    rows: list[list[str]] = [[] for _ in range(count)]
    for node_id in ids:
        rows[layer[node_id]].append(node_id)
    parents: dict[str, list[tuple[str, float]]] = defaultdict(list)
    children: dict[str, list[tuple[str, float]]] = defaultdict(list)
    branch_rank = _branch_ranks(flow, edges)
    for edge in edges:
        rank = branch_rank[(edge.source, edge.branch)]
        parents[edge.target].append((edge.source, rank))
        children[edge.source].append((edge.target, rank))
    for sweep in range(_SWEEPS):
        downward = sweep % 2 == 0
        order = range(1, count) if downward else range(count - 2, -1, -1)
        for index in order:
            neighbour_row = rows[index - 1] if downward else rows[index + 1]
            position = {node_id: at for at, node_id in enumerate(neighbour_row)}
            links = parents if downward else children
            rows[index] = _sorted_by_barycentre(rows[index], links, position)
    return rows


def _branch_ranks(flow: Flow, edges: list[Edge]) -> dict[tuple[str, str | None], float]:
    """A small offset per branch of a source so its targets stack in handle order: the
    branches its type declares first (`true` above `false`), then any others in edge order."""
    seen: dict[str, list[str | None]] = {}
    for edge in edges:
        if edge.source not in seen:
            seen[edge.source] = list(_declared_branches(flow, edge.source))
        if edge.branch not in seen[edge.source]:
            seen[edge.source].append(edge.branch)
    ranks: dict[tuple[str, str | None], float] = {}
    for source, branches in seen.items():
        for index, branch in enumerate(branches):
            ranks[(source, branch)] = index / (len(branches) + 1)
    return ranks


def _declared_branches(flow: Flow, node_id: str) -> list[str]:
    # Unknown type or bad params while editing: none, and edge order will do.
    return list(plan(flow).branches(node_id))


def _sorted_by_barycentre(
    row: list[str], links: dict[str, list[tuple[str, float]]], position: dict[str, int]
) -> list[str]:
    def key(item: tuple[int, str]) -> tuple[float, int]:
        at, node_id = item
        linked = [position[other] + rank for other, rank in links[node_id] if other in position]
        return (sum(linked) / len(linked) if linked else float(at), at)

    return [node_id for _, node_id in sorted(enumerate(row), key=key)]


def _place(
    rows: list[list[str]], layer_gap: float, row_gap: float
) -> dict[str, tuple[float, float]]:
    tallest = max((len(row) for row in rows), default=0)
    positions: dict[str, tuple[float, float]] = {}
    for index, row in enumerate(rows):
        top = (tallest - len(row)) * row_gap / 2
        for at, node_id in enumerate(row):
            positions[node_id] = (index * layer_gap, top + at * row_gap)
    return positions
