"""A flow's plan: what a flow means, worked out once and shared by everyone who runs or draws it.

The engine, the reference interpreter, the Airflow compiler, the simulator and the display all
need the same facts about a flow: each node's registered type and parsed params, which edges
close a loop, the order nodes run in, where each branch leads. Deriving them in every caller
(and every tick) parsed params and walked the graph over and over, and let callers disagree.
`plan(flow)` derives them once per flow content, from the parse validation already did
(`mawb.validate.analyse`), and returns a frozen `FlowPlan`; equal flows (the same file loaded
twice, a copy with other param values) share one plan.

`plan` never refuses a flow, so the canvas can draw an invalid one (a node of an unknown type
or with bad params simply has no parsed params; a flow with an illegal cycle has no `order`).
Layers that run flows call `checked_plan`, which raises `FlowInvalidError` with the report.

Not the same thing as `mawb.engine.plan.TickPlan`, which is about one tick: which stages of
it can have work.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mawb import graph, nodes
from mawb.nodes.base import Outputs
from mawb.validate import ByContent, FlowInvalidError, analyse, validate_flow

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from mawb.model import Edge, Flow
    from mawb.nodes.base import NodeType, Params, TriggerKind

SINGLE = "out"  # the branch name of single-output and fan-out nodes' routes

EdgeKey = tuple[str, str, str | None]


@dataclass(frozen=True, eq=False)
class FlowPlan:
    """The facts about one flow content that running or drawing it needs (read-only)."""

    ids: tuple[str, ...]  # node ids in file order
    types: Mapping[str, type[NodeType]]  # node id -> registered type (known types only)
    params: Mapping[str, Params]  # node id -> parsed params (nodes whose params parse)
    back_edges: frozenset[EdgeKey]  # (source, target, branch) of loop back-edges
    forward_edges: tuple[Edge, ...]  # every other edge, in file order
    outgoing: Mapping[str, tuple[Edge, ...]]  # node id -> its edges, in file order
    incoming: Mapping[str, tuple[Edge, ...]]
    routes: Mapping[str, tuple[tuple[str, str], ...]]  # node id -> (branch, target) pairs
    returning: Mapping[str, frozenset[str]]  # loop id -> sources of back-edges into it
    back_targets: Mapping[str, frozenset[str]]  # node id -> targets of its back-edges
    triggers: tuple[str, ...]  # trigger node ids, in file order
    every_tick: tuple[str, ...]  # nodes whose step looks at every waiting token
    fans_out: bool  # some node sends each contact down several paths
    written: frozenset[str]  # attribute names the flow's nodes write
    cycle_free: bool  # no illegal cycle, so `order` exists
    _order: tuple[str, ...]

    @property
    def order(self) -> tuple[str, ...]:
        """Node ids so that every forward edge points later; ties keep file order."""
        if not self.cycle_free:
            raise ValueError("flow has a cycle that does not go through a loop body")
        return self._order

    def type_of(self, node_id: str) -> type[NodeType]:
        """The registered type of a node (KeyError for an unknown node or type)."""
        return self.types[node_id]

    def params_of(self, node_id: str) -> Params:
        """The parsed params of a node (KeyError when they did not parse)."""
        return self.params[node_id]

    def triggers_of(self, kind: TriggerKind) -> tuple[str, ...]:
        """The ids of the flow's triggers of one kind (e.g. the manual lists), in file order."""
        return tuple(n for n in self.triggers if self.types[n].trigger_kind is kind)

    def branches(self, node_id: str) -> tuple[str, ...]:
        """The output branches of a node (empty when its type or params are unknown)."""
        node_type, params = self.types.get(node_id), self.params.get(node_id)
        if node_type is None or params is None:
            return ()
        return node_type.branches(params)


def plan(flow: Flow) -> FlowPlan:
    """The plan of `flow`, built on the first call for its content and shared after that."""
    held = _HELD.get()
    if held is None:
        return _plans(flow)
    found = held.get(id(flow))
    if found is None or found[0] is not flow:
        found = held[id(flow)] = (flow, _plans(flow))
    return found[1]


# Within `held`: flow object id -> (that flow, its plan). Finding a plan by content costs a
# serialisation of the flow (tens of microseconds), and one tick asks a dozen times.
_HELD: ContextVar[dict[int, tuple[Flow, FlowPlan]] | None] = ContextVar("held_plans",
                                                                        default=None)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Within the block the flow objects in use do not change (one tick of the engine), so
    each one's plan is looked up by content once and then by identity."""
    if _HELD.get() is not None:
        yield
        return
    token = _HELD.set({})
    try:
        yield
    finally:
        _HELD.reset(token)


def node_params(flow: Flow, node_id: str) -> Params:
    """A node's parsed params from the plan; params that fail their model (a saved version
    edited by hand, run without deploy's check) raise the model's ValidationError here, so
    the engine fails that node's cohort with the field named, as it always did."""
    found = plan(flow).params.get(node_id)
    if found is not None:
        return found
    node = flow.node(node_id)
    return nodes.get(node.type).parse(node.params)


def checked_plan(flow: Flow) -> FlowPlan:
    """The plan of a valid flow; raises FlowInvalidError (with the report) otherwise."""
    report = validate_flow(flow)
    if not report.valid:
        raise FlowInvalidError(flow.id, report)
    return plan(flow)


def _build(flow: Flow) -> FlowPlan:
    analysis = analyse(flow)
    types: dict[str, type[NodeType]] = {}
    params: dict[str, Params] = {}
    for node in flow.nodes:
        if nodes.has(node.type) and node.id not in types:
            types[node.id] = nodes.get(node.type)
            parsed = analysis.parsed.get(node.id)
            if parsed is not None and type(parsed) is types[node.id].params_model:
                params[node.id] = parsed
    loops = frozenset(graph.back_edges(flow))
    outgoing: dict[str, list[Edge]] = defaultdict(list)
    incoming: dict[str, list[Edge]] = defaultdict(list)
    for edge in flow.edges:
        outgoing[edge.source].append(edge)
        incoming[edge.target].append(edge)
    returning: dict[str, set[str]] = defaultdict(set)
    back_targets: dict[str, set[str]] = defaultdict(set)
    for source, target, _ in loops:
        returning[target].add(source)
        back_targets[source].add(target)
    try:
        order, cycle_free = tuple(graph.topological_order(flow)), True
    except ValueError:
        order, cycle_free = (), False
    return FlowPlan(
        ids=tuple(node.id for node in flow.nodes),
        types=MappingProxyType(types),
        params=MappingProxyType(params),
        back_edges=loops,
        forward_edges=tuple(e for e in flow.edges if (e.source, e.target, e.branch) not in loops),
        outgoing=_frozen(outgoing),
        incoming=_frozen(incoming),
        routes=MappingProxyType({node_id: _routes(types.get(node_id), edges)
                                 for node_id, edges in outgoing.items()}),
        returning=MappingProxyType({k: frozenset(v) for k, v in returning.items()}),
        back_targets=MappingProxyType({k: frozenset(v) for k, v in back_targets.items()}),
        triggers=tuple(n for n in types if types[n].is_trigger()),
        every_tick=tuple(n for n in types if types[n].every_tick),
        fans_out=any(t.outputs is Outputs.FANOUT for t in types.values()),
        written=frozenset(_written(params.values())),
        cycle_free=cycle_free,
        _order=order,
    )


_plans: ByContent[FlowPlan] = ByContent(lambda flow: _build(flow))  # late-bound name


def _frozen(groups: dict[str, list[Edge]]) -> Mapping[str, tuple[Edge, ...]]:
    return MappingProxyType({key: tuple(edges) for key, edges in groups.items()})


def _routes(node_type: type[NodeType] | None, edges: list[Edge]) -> tuple[tuple[str, str], ...]:
    """(branch, target) pairs of a node; single-output and fan-out edges share SINGLE."""
    if node_type is not None and node_type.outputs is Outputs.BRANCHES:
        return tuple((edge.branch or "", edge.target) for edge in edges)
    return tuple((SINGLE, edge.target) for edge in edges)


def _written(all_params: Any) -> set[str]:
    """Attributes written by data updates, stored responses, CRM mirrors and queries."""
    found: set[str] = set()
    for params in all_params:
        for field in ("set", "increment", "store", "fields"):
            value = getattr(params, field, None)
            if isinstance(value, dict):
                found.update(value)
        found.update(getattr(params, "columns", None) or [])
    return found
