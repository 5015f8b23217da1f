"""Validation: every problem of a flow as a sorted list of diagnostics, never the first error.

The canvas highlights all bad nodes at once, the CLI prints them and the engine refuses a
flow with any error. Each check is a small function yielding `Diagnostic`s; `validate_flow`
runs them all. Codes are stable (scripts match on them):

| code | meaning |
|---|---|
| schema | the document does not have the flow shape (field named) |
| bad_id | a flow or node id is not a slug |
| duplicate_id | two nodes share an id |
| unknown_type | a node type that is not registered |
| bad_params | a node's params fail its params model (field named) |
| missing_node | an edge names a node that does not exist |
| duplicate_edge | the same edge twice |
| no_trigger | nothing enrolls contacts |
| trigger_input | an edge leads into a trigger |
| unreachable | no trigger leads to the node |
| missing_branch | an edge from a branching node has no branch label |
| unknown_branch | an edge names a branch its source does not have |
| duplicate_branch | two edges leave the same branch |
| too_many_edges | a single-output node has more than one outgoing edge |
| illegal_cycle | a cycle that is not a loop's body |
| loop_not_closed | (warning) a loop whose body never returns to it |
| merge_inputs | a merge with fewer than two incoming edges |
| bad_condition | a condition that fails to parse or leaves the allow-list |
| unknown_param | a condition uses a :param the flow does not define |
| unknown_column | a condition reads an attribute the contact schema lacks |
| bad_template | a Liquid syntax error in a message field |
| bad_settings | invalid flow settings (timezone, goal, tick) |
| unconnected_branch | (warning) a branching step none of whose handles leads anywhere |
| unknown_variable | (warning) a Liquid variable that is no contact attribute or flow param |
| secret_literal | a credential-named flow param holding a value instead of a reference |
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict, defaultdict
from dataclasses import asdict, dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from mawb import graph, nodes
from mawb.expr import ConditionError, parse_condition
from mawb.model import Edge, Flow, FlowFileError, error_location, migrate
from mawb.nodes.actions import looks_secret
from mawb.nodes.base import SECRET_REF, Outputs
from mawb.nodes.plain_errors import plain_message
from mawb.personalize import check_template, compile_template, template_variables

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterator, Mapping

    from mawb.nodes.base import NodeType, Params

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# DuckDB refuses expressions nested past about 1000 levels; a 1+1+...+1 of 2,400 terms
# validates as text but fails every tick, so conditions are bounded well below that.
MAX_CONDITION_DEPTH = 200
TICK = re.compile(r"^\d+(m|h|d)$")


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


_RANK = {Severity.ERROR: 0, Severity.WARNING: 1}


@dataclass(frozen=True)
class Diagnostic:
    """One problem, placed on a node (or the flow when node_id is None) and a field."""

    severity: Severity
    code: str
    node_id: str | None
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def __str__(self) -> str:
        where = f"node {self.node_id}" if self.node_id else "flow"
        if self.field:
            where += f" · {self.field}"
        return f"{self.severity.value} [{self.code}] {where}: {self.message}"


@dataclass(frozen=True)
class Report:
    """The outcome of validation: valid when no diagnostic is an error."""

    diagnostics: tuple[Diagnostic, ...]

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    def by_node(self) -> dict[str, list[Diagnostic]]:
        grouped: dict[str, list[Diagnostic]] = {}
        for diagnostic in self.diagnostics:
            if diagnostic.node_id:
                grouped.setdefault(diagnostic.node_id, []).append(diagnostic)
        return grouped

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "diagnostics": [d.to_dict() for d in self.diagnostics]}

    def __bool__(self) -> bool:
        return self.valid

    def _repr_html_(self) -> str:
        from mawb.display import diagnostics_html  # notebooks only

        return diagnostics_html(self)


class FlowInvalidError(ValueError):
    """Raised by layers that refuse invalid flows (engine, compiler); carries the report."""

    def __init__(self, flow_id: str, report: Report) -> None:
        self.report = report
        lines = "\n".join(f"  {d}" for d in report.errors)
        super().__init__(f"flow {flow_id!r} is invalid:\n{lines}")


def _error(code: str, node_id: str | None, field: str | None, message: str) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, node_id, field, message)


def _warning(code: str, node_id: str | None, field: str | None, message: str) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, node_id, field, message)


def _sorted(found: list[Diagnostic], order: dict[str, int]) -> Report:
    def key(d: Diagnostic) -> tuple[int, int, str, str, str]:
        node_rank = -1 if d.node_id is None else order.get(d.node_id, len(order))
        return (_RANK[d.severity], node_rank, d.node_id or "", d.field or "", d.code)

    unique = list(dict.fromkeys(found))
    return Report(tuple(sorted(unique, key=key)))


def validate_document(document: Any, columns: Collection[str] | None = None) -> Report:
    """Validate a raw (already parsed) document: shape errors become `schema` diagnostics."""
    return check_document(document, columns)[1]


def check_document(document: Any, columns: Collection[str] | None = None
                   ) -> tuple[Flow | None, Report]:
    """The Flow of a raw document (None when it has not the flow shape) and its report, so
    a caller that goes on with the flow migrates and parses the document only here."""
    if not isinstance(document, dict):
        return None, Report((_error("schema", None, None, "a flow must be an object"),))
    try:
        flow = Flow.model_validate(migrate(document))
    except FlowFileError as error:
        return None, Report((_error("schema", None, "schema_version", error.detail),))
    except ValidationError as error:
        found = []
        for item in error.errors():
            node_id, field = error_location(document, tuple(item["loc"]))
            found.append(_error("schema", node_id, field, item["msg"]))
        return None, _sorted(found, {})
    return flow, validate_flow(flow, columns=columns)


def validate_flow(flow: Flow, columns: Collection[str] | None = None) -> Report:
    """Run every check over a Flow. `columns`: the contact schema, for unknown_column checks.

    The checks of the flow alone are run once per flow content (`analyse`); those of the
    params' values and of `columns` are cheap and run on each call."""
    analysis = analyse(flow)
    found = [*analysis.diagnostics, *_check_secret_params(flow)]
    if columns is not None:
        found += _check_columns(flow, analysis.parsed, columns)
    order = {node.id: i for i, node in enumerate(flow.nodes)}
    return _sorted(found, order)


@dataclass(frozen=True, eq=False)
class Analysis:
    """What validating a flow found, apart from its params' values and the contact columns:
    each node's parsed params (nodes whose params failed their model are absent) and the
    diagnostics. Shared by every caller of the same flow content: treat as read-only."""

    parsed: Mapping[str, Params]
    diagnostics: tuple[Diagnostic, ...]


T = TypeVar("T")


class ByContent(Generic[T]):
    """What is worked out from a flow, kept per flow content (`flow_key`) for the most
    recently used `kept` contents; flows without a key are worked out every time."""

    def __init__(self, build: Callable[[Flow], T], kept: int = 256) -> None:
        self._build, self._kept = build, kept
        self._found: OrderedDict[tuple[Any, ...], T] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, flow: Flow) -> T:
        key = flow_key(flow)
        if key is None:
            return self._build(flow)
        with self._lock:
            if key in self._found:
                self._found.move_to_end(key)
                return self._found[key]
        built = self._build(flow)
        with self._lock:
            self._found[key] = built
            while len(self._found) > self._kept:
                self._found.popitem(last=False)
        return built


def flow_key(flow: Flow) -> tuple[Any, ...] | None:
    """What the meaning of `flow` depends on: its nodes, edges, settings and param names
    (not their values: run overrides change those) under the registered node types. None for
    a flow built in code with params that have no JSON form (never cached: validation says
    what is wrong with them)."""
    if not all(_json_native(node.params) for node in flow.nodes):
        return None  # JSON would not tell inf from None, or a tuple from a list
    try:
        shape = flow.model_dump_json(exclude={"name", "description", "metadata", "ui",
                                              "params"}, warnings=False)
    except (PydanticSerializationError, ValueError, TypeError):
        return None
    return (nodes.registry.generation(), tuple(sorted(flow.params)), shape)


def _json_native(value: Any) -> bool:
    """Whether `value` is made of JSON's own values only (finite numbers), so its JSON text
    stands for exactly it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif item is not None and not isinstance(item, str | int):
            return False
    return True


def _analyse(flow: Flow) -> Analysis:
    parsed: dict[str, Params] = {}
    found: list[Diagnostic] = []
    found += _check_ids(flow)
    for node in flow.nodes:
        found += _check_node(flow, node.id, node.type, node.params, parsed)
    found += _check_edges(flow, parsed)
    found += _check_reachability(flow)
    found += _check_cycles(flow)
    found += _check_expressions(flow, parsed, None)
    found += _check_settings(flow, None)
    found += _check_unconnected_branches(flow, parsed)
    return Analysis(MappingProxyType(parsed), tuple(found))


# Parse and check a flow once per content: a later call with an equal flow (the same file
# loaded again, a copy with other param values) returns the first call's analysis.
analyse: ByContent[Analysis] = ByContent(lambda flow: _analyse(flow))  # late-bound name


def _check_columns(flow: Flow, parsed: Mapping[str, Params], columns: Collection[str]
                   ) -> Iterator[Diagnostic]:
    """The checks against the contact schema (plus the attributes the flow writes)."""
    known = _known_columns(flow, parsed, columns)
    for node in flow.nodes:
        node_type, params = _typed_params(node.type, parsed.get(node.id))
        if node_type is None or params is None:
            continue
        for field, text in node_type.conditions(params).items():
            yield from _condition_columns(node.id, f"params.{field}", text, known)
        yield from _check_fields(node.id, params, known)
    if flow.settings.goal:
        yield from _condition_columns(None, "settings.goal", flow.settings.goal, known)
    yield from _check_template_variables(flow, parsed, known)
    yield from _check_written_case(flow, parsed, columns)


def _check_ids(flow: Flow) -> Iterator[Diagnostic]:
    if not SLUG.match(flow.id):
        yield _error("bad_id", None, "id", f"flow id {flow.id!r} must be a lower-case slug")
    counts = Counter(node.id for node in flow.nodes)
    for node_id, count in counts.items():
        if count > 1:
            yield _error("duplicate_id", node_id, "id", f"{count} nodes share the id {node_id!r}")
        if not SLUG.match(node_id):
            yield _error(
                "bad_id", node_id, "id",
                f"node id {node_id!r} must be a slug: a-z, 0-9, _ and -, at most 64 characters",
            )


def _check_node(
    flow: Flow, node_id: str, type_name: str, params: dict[str, Any], parsed: dict[str, Params]
) -> Iterator[Diagnostic]:
    if not nodes.has(type_name):
        yield _error("unknown_type", node_id, "type", f"unknown node type {type_name!r}")
        return
    try:
        parsed[node_id] = nodes.get(type_name).parse(params)
    except ValidationError as error:
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "params"
            message = plain_message(item)
            yield _error("bad_params", node_id, f"params.{field}" if item["loc"] else "params",
                         message)


def _typed_params(
    type_name: str, params: Params | None
) -> tuple[type[NodeType] | None, Params | None]:
    """The node's type and its parsed params, or Nones. With duplicate ids `parsed` holds the
    params of another node with the same id, possibly of another type, which must not be used."""
    if params is None or not nodes.has(type_name):
        return None, None
    node_type = nodes.get(type_name)
    return (node_type, params) if type(params) is node_type.params_model else (None, None)


def _check_edges(flow: Flow, parsed: Mapping[str, Params]) -> Iterator[Diagnostic]:
    ids = {node.id for node in flow.nodes}
    # Index once: per-node scans of every edge made a 500-node flow quadratic.
    types = {node.id: nodes.get(node.type) for node in reversed(flow.nodes) if nodes.has(node.type)}
    outgoing: dict[str, list[Edge]] = defaultdict(list)
    incoming: Counter[str] = Counter()
    for edge in flow.edges:
        outgoing[edge.source].append(edge)
        incoming[edge.target] += 1
    repeats = Counter((e.source, e.target, e.branch) for e in flow.edges)
    for (source, target, _), count in repeats.items():
        if count > 1:
            yield _error("duplicate_edge", source, "edges", f"edge {source} -> {target} repeated")
    for edge in flow.edges:
        for end in ("source", "target"):
            name = getattr(edge, end)
            if name not in ids:
                owner = edge.source if end == "target" and edge.source in ids else None
                yield _error("missing_node", owner, "edges",
                             f"edge {edge.source} -> {edge.target}: no node {name!r}")
        target_type = types.get(edge.target)
        if target_type is not None and target_type.is_trigger():
            yield _error("trigger_input", edge.target, "edges",
                         f"triggers have no input, but {edge.source} leads into it")
    for node in flow.nodes:
        node_type, params = _typed_params(node.type, parsed.get(node.id))
        if node_type is not None and params is not None:
            yield from _check_outputs(outgoing[node.id], node.id, node_type, params)
        if nodes.has(node.type) and nodes.get(node.type).is_merge and incoming[node.id] < 2:
            yield _error("merge_inputs", node.id, "edges",
                         "a merge needs at least two incoming paths")


def _check_outputs(
    out: list[Edge], node_id: str, node_type: type[NodeType], params: Params
) -> Iterator[Diagnostic]:
    if node_type.outputs is Outputs.FANOUT:
        return
    if node_type.outputs is Outputs.SINGLE:
        if len(out) > 1:
            targets = ", ".join(e.target for e in out)
            yield _error("too_many_edges", node_id, "edges",
                         f"{node_type.label} has one output but leads to {targets}; "
                         "use a parallel or branching node")
        for edge in out:
            if edge.branch is not None:
                yield _error("unknown_branch", node_id, "edges",
                             f"{node_type.label} has no branches, edge to {edge.target} "
                             f"names {edge.branch!r}")
        return
    branches = node_type.branches(params)
    used = Counter(edge.branch for edge in out)
    for edge in out:
        if edge.branch is None:
            yield _error("missing_branch", node_id, "edges",
                         f"edge to {edge.target} needs a branch: one of {', '.join(branches)}")
        elif edge.branch not in branches:
            yield _error("unknown_branch", node_id, "edges",
                         f"edge to {edge.target} names branch {edge.branch!r}; "
                         f"{node_type.label} has {', '.join(branches)}")
    for branch in branches:
        if used[branch] > 1:
            yield _error("duplicate_branch", node_id, "edges",
                         f"branch {branch!r} leads to {used[branch]} nodes; add a parallel node")


def _check_unconnected_branches(flow: Flow, parsed: Mapping[str, Params]
                                ) -> Iterator[Diagnostic]:
    """Warning `unconnected_branch`: a branching step none of whose handles is connected
    ends every path through it (one loose branch is a common way to let contacts leave, so
    only a step with no outgoing edge at all is flagged)."""
    taken: dict[str, set[str | None]] = {}
    for edge in flow.edges:
        taken.setdefault(edge.source, set()).add(edge.branch)
    for node in flow.nodes:
        node_type, params = _typed_params(node.type, parsed.get(node.id))
        if node_type is None or params is None or node_type.outputs is not Outputs.BRANCHES:
            continue
        loose = [b for b in node_type.branches(params) if b not in taken.get(node.id, set())]
        if loose and node.id not in taken:
            names = ", ".join(repr(b) for b in loose)
            yield _warning("unconnected_branch", node.id, "edges",
                           f"branch{'es' * (len(loose) > 1)} {names} of {node_type.label} "
                           "lead nowhere: contacts taking them leave the flow")


# Variables a message may use besides contact attributes and flow params.
_TEMPLATE_BUILTINS = frozenset({"forloop", "tablerowloop", "now", "today", "contact", "flow",
                                "unsubscribe_url", "unsubscribe_link", "view_url"})


def _check_template_variables(flow: Flow, parsed: Mapping[str, Params],
                              columns: set[str] | None) -> Iterator[Diagnostic]:
    """Warning `unknown_variable`: a Liquid variable that is neither a contact attribute of
    the workspace nor a flow param renders empty (`{{ frist_name }}`); needs the columns."""
    if columns is None:
        return
    known = columns | {name.lower() for name in flow.params} | _TEMPLATE_BUILTINS
    for node in flow.nodes:
        node_type, params = _typed_params(node.type, parsed.get(node.id))
        if node_type is None or params is None:
            continue
        for field, text in node_type.templates(params).items():
            if check_template(text):
                continue  # bad_template already says why
            unknown = sorted(name for name in template_variables(text)
                             if name.split(".")[0].lower() not in known)
            if unknown:
                hint = _closest(unknown[0], known)
                yield _warning("unknown_variable", node.id, f"params.{field}",
                               f"{{{{ {unknown[0]} }}}} is not a contact attribute or flow "
                               "param, so it renders empty" + (f"; did you mean {hint}?"
                                                               if hint else ""))


def _closest(name: str, known: Collection[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.75)
    return found[0] if found else None


def _check_reachability(flow: Flow) -> Iterator[Diagnostic]:
    triggers = [n.id for n in flow.nodes if nodes.has(n.type) and nodes.get(n.type).is_trigger()]
    if not triggers:
        yield _error("no_trigger", None, "nodes", "add a trigger: nothing enrolls contacts")
        return
    reached = graph.reachable_from(flow, triggers)
    for node in flow.nodes:
        if node.id not in reached:
            yield _error("unreachable", node.id, None,
                         "no trigger leads here; connect it or delete it")


def _check_cycles(flow: Flow) -> Iterator[Diagnostic]:
    for group in graph.cycles(flow):
        path = " -> ".join(group)
        for node_id in group:
            yield _error("illegal_cycle", node_id, "edges",
                         f"cycle {path}: only a loop_iterator's body may lead back to it")
    closing = {target for _, target, _ in graph.back_edges(flow)}
    for node in flow.nodes:
        if graph.is_loop(node) and node.id not in closing:
            yield _warning("loop_not_closed", node.id, "edges",
                           "the body path never returns to this loop, so it runs once")


def _known_columns(
    flow: Flow, parsed: Mapping[str, Params], columns: Collection[str]
) -> set[str]:
    """The contact schema plus every attribute the flow itself writes."""
    known = {c.lower() for c in columns}
    for params in parsed.values():
        for field in ("set", "increment", "store", "fields"):
            value = getattr(params, field, None)
            if isinstance(value, dict):
                known.update(k.lower() for k in value)
        for name in getattr(params, "columns", None) or []:
            known.add(name.lower())
    return known


def _check_secret_params(flow: Flow) -> Iterator[Diagnostic]:
    """A flow param named like a credential holds a reference, never the value: params are
    copied into the DAG file, its ConfigMap and simulation output."""
    for name, value in flow.params.items():
        if looks_secret(name) and not (isinstance(value, str) and re.match(SECRET_REF, value)):
            yield _error("secret_literal", None, f"params.{name}",
                         f"param {name!r} looks like a credential: give a reference "
                         "(env:NAME, file:PATH, connection:ID), never the value")


def _check_written_case(
    flow: Flow, parsed: Mapping[str, Params], columns: Collection[str]
) -> Iterator[Diagnostic]:
    """A written attribute must use an existing column's exact name: DuckDB compares names
    without case, so `Score` next to `score` is the same column, not a new one."""
    exact = {str(c) for c in columns}
    by_lower = {c.lower(): c for c in exact}
    for node in flow.nodes:
        _, params = _typed_params(node.type, parsed.get(node.id))
        if params is None:
            continue
        for field in ("set", "increment", "store", "fields"):
            value = getattr(params, field, None)
            for name in value if isinstance(value, dict) else ():
                existing = by_lower.get(name.lower())
                if existing is not None and existing != name:
                    yield _error("bad_params", node.id, f"params.{field}",
                                 f"{name!r} differs from the contact column {existing!r} only "
                                 "by case; use the exact name")


def _check_expressions(
    flow: Flow, parsed: Mapping[str, Params], columns: set[str] | None
) -> Iterator[Diagnostic]:
    for node in flow.nodes:
        node_type, params = _typed_params(node.type, parsed.get(node.id))
        if node_type is None or params is None:
            continue
        for field, text in node_type.conditions(params).items():
            yield from _check_condition(flow, node.id, f"params.{field}", text, columns)
        for field in node_type.event_condition_fields:
            text = getattr(params, field)
            if text:  # event properties have no fixed schema, so no column check
                yield from _check_condition(flow, node.id, f"params.{field}", text, None)
        for field, text in node_type.templates(params).items():
            problem = check_template(text) or _never_renders(text)
            if problem:
                yield _error("bad_template", node.id, f"params.{field}", f"Liquid: {problem}")
        yield from _check_fields(node.id, params, columns)


# Tags that read other templates: the sandbox has no loader, so they fail every render.
_PARTIAL_TAGS = ("include", "render")


def _never_renders(text: str) -> str | None:
    """A template that parses but fails whenever it renders: a partial, an unknown filter."""
    try:
        template = compile_template(text)
        analysis = template.analyze(include_partials=False)
    except Exception as error:  # analysis of a parsed template; any failure is the message
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    for tag in _PARTIAL_TAGS:
        if tag in analysis.tags:
            return f"{{% {tag} %}} is not available: message templates cannot load other files"
    unknown = sorted(name for name in analysis.filters if name not in template.env.filters)
    if unknown:
        return f"unknown filter {unknown[0]!r}"
    return None


def _check_fields(
    node_id: str, params: Params, columns: set[str] | None
) -> Iterator[Diagnostic]:
    """Attribute names a node reads by name (date_field, until_field) exist in the schema."""
    if columns is None:
        return
    for field in ("date_field", "until_field"):
        name = getattr(params, field, None)
        if isinstance(name, str) and name.lower() not in columns:
            yield _error("unknown_column", node_id, f"params.{field}",
                         f"contacts have no attribute {name!r}")


def _check_condition(
    flow: Flow, node_id: str | None, field: str, text: str, columns: set[str] | None
) -> Iterator[Diagnostic]:
    try:
        condition = parse_condition(text)
    except ConditionError as error:
        yield _error("bad_condition", node_id, field, error.message)
        return
    depth = _depth(condition.tree)
    if depth > MAX_CONDITION_DEPTH:
        yield _error("bad_condition", node_id, field,
                     f"condition is nested {depth} levels deep (at most {MAX_CONDITION_DEPTH}); "
                     "DuckDB cannot evaluate it: split it or use IN (...)")
        return
    for name in sorted(condition.params - set(flow.params)):
        yield _error("unknown_param", node_id, field,
                     f":{name} is not a flow param; define it under params")
    if columns is not None:
        for name in sorted(c for c in condition.columns if c.lower() not in columns):
            yield _error("unknown_column", node_id, field,
                         f"contacts have no attribute {name!r}")


def _condition_columns(node_id: str | None, field: str, text: str, columns: set[str]
                       ) -> Iterator[Diagnostic]:
    """unknown_column for a condition that `_check_condition` found otherwise fine."""
    try:
        condition = parse_condition(text)
    except ConditionError:
        return
    if _depth(condition.tree) > MAX_CONDITION_DEPTH:
        return
    for name in sorted(c for c in condition.columns if c.lower() not in columns):
        yield _error("unknown_column", node_id, field, f"contacts have no attribute {name!r}")


def _depth(tree: Any) -> int:
    """Nesting depth of a parsed condition (iterative: the tree may be thousands deep)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def _check_settings(flow: Flow, columns: set[str] | None) -> Iterator[Diagnostic]:
    settings = flow.settings
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        yield _error("bad_settings", None, "settings.timezone",
                     f"unknown timezone {settings.timezone!r} (use an IANA name like Europe/Paris)")
    if not TICK.match(settings.tick):
        yield _error("bad_settings", None, "settings.tick",
                     f"tick {settings.tick!r} must look like 5m, 1h or 1d")
    if settings.goal:
        for diagnostic in _check_condition(flow, None, "settings.goal", settings.goal, columns):
            code = diagnostic.code if diagnostic.code != "bad_condition" else "bad_settings"
            yield Diagnostic(diagnostic.severity, code, None, diagnostic.field, diagnostic.message)
