"""Property tests: no document, however mangled, makes validation or parsing crash.

The canvas validates on every edit and the CLI on every file, so `validate_document` must turn
anything (random JSON values, templates with nodes dropped or duplicated, edges rewired, random
params and branch names) into a Report, and `parse_text` must turn any text into a document or a
FlowFileError, never another exception.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mawb import nodes
from mawb.model import FlowFileError, parse_text
from mawb.templates import list_templates
from mawb.validate import Report, validate_document

TEMPLATES = [flow.to_dict() for flow in list_templates()]
TYPE_NAMES = [cls.type for cls in nodes.all_types()]
KEYS = [
    "schema_version", "id", "name", "nodes", "edges", "params", "settings", "type", "source",
    "target", "branch", "condition", "subject", "body", "days", "cases", "timezone", "goal", "tick",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from([*TYPE_NAMES, "true", "false", "body", "done", "default", "{{", ":x", ";"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=6),
    ),
    max_leaves=40,
)


def check(document: Any, columns: set[str] | None = None) -> Report:
    report = validate_document(document, columns=columns)
    assert isinstance(report, Report)
    assert isinstance(report.valid, bool)
    for diagnostic in report.diagnostics:
        assert diagnostic.code and diagnostic.message
    return report


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_documents_never_crash_validation(document: Any) -> None:
    check(document)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8))
def test_random_top_level_objects_never_crash_validation(document: dict[str, Any]) -> None:
    check(document)


@st.composite
def mutated_templates(draw: st.DrawFn) -> dict[str, Any]:
    """A template with a few random edits of the kinds an editor or a bad merge makes."""
    document = copy.deepcopy(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        node_list = document["nodes"]
        edges = document["edges"]
        ids = [n["id"] for n in node_list] + ["ghost"]
        action = draw(
            st.sampled_from(
                ["drop_node", "dup_node", "rewire", "add_edge", "params", "branch", "type", "value"]
            )
        )
        if action == "drop_node" and node_list:
            node_list.pop(draw(st.integers(0, len(node_list) - 1)))
        elif action == "dup_node" and node_list:
            node_list.append(copy.deepcopy(draw(st.sampled_from(node_list))))
        elif action == "rewire" and edges:
            edge = draw(st.sampled_from(edges))
            edge[draw(st.sampled_from(["source", "target"]))] = draw(st.sampled_from(ids))
        elif action == "add_edge":
            edge = {"source": draw(st.sampled_from(ids)), "target": draw(st.sampled_from(ids))}
            if draw(st.booleans()):
                edge["branch"] = draw(
                    st.sampled_from(["true", "false", "body", "done", "met", "default", "x"])
                )
            edges.append(edge)
        elif action == "params" and node_list:
            node = draw(st.sampled_from(node_list))
            node["params"] = draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4))
        elif action == "branch" and edges:
            draw(st.sampled_from(edges))["branch"] = draw(st.one_of(st.none(), st.text(max_size=8)))
        elif action == "type" and node_list:
            draw(st.sampled_from(node_list))["type"] = draw(st.sampled_from(TYPE_NAMES))
        elif action == "value" and node_list:
            node = draw(st.sampled_from(node_list))
            if node["params"]:
                key = draw(st.sampled_from(sorted(node["params"])))
                node["params"][key] = draw(json_values)
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_templates(), st.one_of(st.none(), st.sets(st.sampled_from(KEYS), max_size=5)))
def test_mutated_templates_never_crash_validation(
    document: dict[str, Any], columns: set[str] | None
) -> None:
    check(document, columns)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["json", "yaml"]))
def test_parse_text_raises_only_flow_file_errors(text: str, fmt: str) -> None:
    try:
        document = parse_text(text, "random.flow", fmt)
    except FlowFileError as error:
        assert str(error).startswith("random.flow")
    else:
        assert isinstance(document, dict)


@settings(max_examples=100, deadline=None)
@given(json_values.map(repr), st.sampled_from(["json", "yaml"]))
def test_parse_text_of_structured_noise_raises_only_flow_file_errors(text: str, fmt: str) -> None:
    try:
        parse_text(text, "noise.flow", fmt)
    except FlowFileError:
        pass


def test_parser_edge_cases_become_flow_file_errors() -> None:
    """Values the parsers reject after tokenising used to escape as ValueError/RecursionError."""
    cases = [
        ("created: 2024-02-30\n", "yaml"),  # impossible date
        ('{"n": ' + "9" * 5000 + "}", "json"),  # over Python's integer digit limit
        ("[" * 100_000, "json"),  # nesting beyond the recursion limit
        ("[" * 5_000, "yaml"),
    ]
    for text, fmt in cases:
        try:
            parse_text(text, "edge.flow", fmt)
        except FlowFileError as error:
            assert str(error).startswith("edge.flow: invalid")
        else:
            raise AssertionError(f"{text[:20]!r} parsed")
