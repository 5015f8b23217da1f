"""Graph algorithms over a flow: loop back-edges, cycles, reachability, topological order.

The validator, the engine and the Airflow compiler must agree on which edges close a
loop, so the rule lives here once: an edge is a *loop back-edge* when it enters a
loop node (a type with `is_loop`) from a node reachable from that loop's `body` branch
(without passing through the loop again). Every other cycle is illegal. The engine processes
nodes in `topological_order` (back-edges removed) and takes back-edges in the next tick.
Callers that run a flow read these from its plan (`mawb.flowplan`), computed once.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from typing import TYPE_CHECKING

from mawb import nodes

if TYPE_CHECKING:
    from mawb.model import Edge, Flow, Node


def is_loop(node: Node) -> bool:
    """Whether `node` is of a registered loop type (unknown types are not loops)."""
    return nodes.has(node.type) and nodes.get(node.type).is_loop


def successors(flow: Flow) -> dict[str, list[Edge]]:
    """Outgoing edges per node id (edges to unknown nodes included)."""
    out: dict[str, list[Edge]] = defaultdict(list)
    for edge in flow.edges:
        out[edge.source].append(edge)
    return out


def back_edges(flow: Flow) -> set[tuple[str, str, str | None]]:
    """(source, target, branch) of every loop back-edge."""
    out = successors(flow)
    found: set[tuple[str, str, str | None]] = set()
    for node in flow.nodes:
        if not is_loop(node):
            continue
        body_starts = [e.target for e in out.get(node.id, []) if e.branch == "body"]
        body = _reachable(out, body_starts, stop=node.id)
        for source in body:
            for edge in out.get(source, []):
                if edge.target == node.id:
                    found.add((edge.source, edge.target, edge.branch))
    return found


def forward_edges(flow: Flow) -> list[Edge]:
    """The flow's edges without loop back-edges (a DAG when the flow is valid)."""
    loops = back_edges(flow)
    return [e for e in flow.edges if (e.source, e.target, e.branch) not in loops]


def _reachable(out: dict[str, list[Edge]], starts: list[str], stop: str | None = None) -> set[str]:
    seen: set[str] = set()
    queue = deque(s for s in starts if s != stop)
    while queue:
        current = queue.popleft()
        if current in seen:
            continue
        seen.add(current)
        queue.extend(e.target for e in out.get(current, []) if e.target != stop)
    return seen


def reachable_from(flow: Flow, starts: list[str]) -> set[str]:
    """Every node reachable from `starts` (included) along any edge."""
    return _reachable(successors(flow), starts)


def cycles(flow: Flow) -> list[list[str]]:
    """Strongly connected groups left after removing loop back-edges (each is illegal)."""
    ids = [node.id for node in flow.nodes]
    known = set(ids)
    adjacency: dict[str, list[str]] = {node_id: [] for node_id in ids}
    for edge in forward_edges(flow):
        if edge.source in known and edge.target in known:
            adjacency[edge.source].append(edge.target)
    groups = [g for g in _strongly_connected(adjacency) if len(g) > 1]
    groups += [[n] for n in ids if n in adjacency[n]]  # self loops
    return [sorted(set(group)) for group in groups]


def _strongly_connected(adjacency: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative so large flows cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in adjacency:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_index = work.pop()
            if child_index == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = adjacency[node]
            if child_index < len(children):
                work.append((node, child_index + 1))
                child = children[child_index]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def topological_order(flow: Flow) -> list[str]:
    """Node ids so that every forward edge points later; ties keep file order (stable).

    Raises ValueError on an illegal cycle (validate the flow first).
    """
    position = {node.id: i for i, node in enumerate(flow.nodes)}
    indegree = dict.fromkeys(position, 0)
    out: dict[str, list[str]] = defaultdict(list)
    for edge in forward_edges(flow):
        if edge.source in position and edge.target in position:
            out[edge.source].append(edge.target)
            indegree[edge.target] += 1

    ready = [(position[n], n) for n, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for target in out[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, (position[target], target))
    if len(order) != len(position):
        raise ValueError("flow has a cycle that does not go through a loop body")
    return order
