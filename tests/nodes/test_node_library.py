"""The node library: the 23 registered types, their defaults, metadata and the registry rules.

Flows name node types by string, so the registry is a security boundary as well as a catalogue:
only registered classes are ever used, a second class cannot take an existing name, and a dotted
path in a flow file is just an unknown type, never an import.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest
from pydantic import ValidationError

from mawb import nodes
from mawb.expr import parse_condition
from mawb.model import Flow
from mawb.nodes import (
    CATEGORY_COLORS,
    Category,
    DuplicateNodeTypeError,
    NodeType,
    Outputs,
    UnknownNodeTypeError,
)
from mawb.nodes.registry import unregister
from mawb.personalize import check_template
from mawb.validate import validate_flow

ALL = nodes.all_types()
NAMES = [cls.type for cls in ALL]

DESIGN_TYPES = {
    Category.TRIGGER: {
        "time_based_trigger", "behavioral_trigger", "event_trigger", "webhook_trigger",
        "manual_trigger",
    },
    Category.ACTION: {
        "email_send", "sms_send", "web_push", "social_post", "delay_action", "condition_check",
        "data_update", "api_call",
    },
    Category.LOGIC: {
        "if_condition", "switch_case", "loop_iterator", "parallel_execution", "merge_branches",
    },
    Category.INTEGRATION: {
        "crm_update", "crm_create", "database_query", "external_api", "webhook_call",
    },
}  # fmt: skip
DESIGN_BRANCHES = {
    "if_condition": ("true", "false"),
    "condition_check": ("met", "timeout"),
    "loop_iterator": ("body", "done"),
    "switch_case": ("default",),
}


def test_exactly_23_types_5_8_5_5_per_category() -> None:
    assert len(ALL) == 23
    assert len(set(NAMES)) == 23
    counts = Counter(cls.category for cls in ALL)
    assert counts == {
        Category.TRIGGER: 5,
        Category.ACTION: 8,
        Category.LOGIC: 5,
        Category.INTEGRATION: 5,
    }
    for category, names in DESIGN_TYPES.items():
        assert {cls.type for cls in ALL if cls.category is category} == names


def test_all_types_is_in_palette_order() -> None:
    order = list(Category)
    keys = [(order.index(cls.category), cls.type) for cls in ALL]
    assert keys == sorted(keys)


@pytest.mark.parametrize("node_type", ALL, ids=NAMES)
def test_defaults_parse_and_their_conditions_and_templates_are_valid(
    node_type: type[NodeType],
) -> None:
    params = node_type.parse({})
    assert isinstance(params, node_type.params_model)
    for text in node_type.conditions(params).values():
        parse_condition(text)
    for text in node_type.templates(params).values():
        assert check_template(text) is None, text
    assert isinstance(node_type.summary(params), str) and node_type.summary(params)


@pytest.mark.parametrize("node_type", ALL, ids=NAMES)
def test_a_default_node_in_a_flow_is_valid(node_type: type[NodeType]) -> None:
    flow = Flow.new("defaults")
    if node_type.category is Category.TRIGGER:
        flow.add("node", node_type.type)
    else:
        flow.add("start", "manual_trigger").add("node", node_type.type).connect("start", "node")
    codes = [d.code for d in validate_flow(flow).errors]
    expected = ["merge_inputs"] if node_type.type == "merge_branches" else []
    assert codes == expected


@pytest.mark.parametrize("node_type", ALL, ids=NAMES)
def test_describe_is_json_ready_and_consistent(node_type: type[NodeType]) -> None:
    described = node_type.describe()
    assert json.loads(json.dumps(described)) == described
    assert described["type"] == node_type.type
    assert described["category"] == node_type.category.value
    assert described["color"] == CATEGORY_COLORS[node_type.category]
    assert described["label"] and described["icon"] and described["help"]
    assert described["params_schema"]["type"] == "object"
    assert described["outputs"] in {o.value for o in Outputs}


@pytest.mark.parametrize("node_type", ALL, ids=NAMES)
def test_branches_match_the_design(node_type: type[NodeType]) -> None:
    branches = node_type.branches(node_type.parse({}))
    if node_type.type in DESIGN_BRANCHES:
        assert node_type.outputs is Outputs.BRANCHES
        assert node_type.fixed_branches == DESIGN_BRANCHES[node_type.type]
    elif node_type.type == "parallel_execution":
        assert node_type.outputs is Outputs.FANOUT
        assert branches == ()
    else:
        assert node_type.outputs is Outputs.SINGLE
        assert branches == ()


def test_params_reject_unknown_keys_so_typos_surface() -> None:
    with pytest.raises(ValidationError, match="subjcet"):
        nodes.get("email_send").parse({"subjcet": "Hi"})


def test_registry_rejects_a_second_class_with_an_existing_name() -> None:
    original = nodes.get("email_send")

    class Impostor(NodeType):
        type = "email_send"
        category = Category.ACTION
        label = "Impostor"
        icon = "mail"
        help = "Tries to replace email_send."
        params_model = original.params_model

    with pytest.raises(DuplicateNodeTypeError, match="email_send"):
        nodes.register(Impostor)
    assert nodes.get("email_send") is original
    assert nodes.register(original) is original  # re-registering the same class is harmless


def test_registering_a_new_type_makes_it_usable_in_flows() -> None:
    class Note(NodeType):
        type = "test_note"
        category = Category.ACTION
        label = "Note"
        icon = "edit"
        help = "Does nothing (test type)."
        params_model = nodes.get("parallel_execution").params_model

    nodes.register(Note)
    try:
        assert nodes.get("test_note") is Note
        flow = Flow.new("note").add("start", "manual_trigger").add("n", "test_note")
        assert validate_flow(flow.connect("start", "n")).valid
    finally:
        unregister("test_note")
    assert not nodes.has("test_note")


@pytest.mark.parametrize("name", ["send_fax", "", "Email_Send", "email_send "])
def test_unknown_type_lookups_raise(name: str) -> None:
    assert not nodes.has(name)
    with pytest.raises(UnknownNodeTypeError):
        nodes.get(name)
    with pytest.raises(KeyError):  # UnknownNodeTypeError is a KeyError for dict-like callers
        nodes.get(name)


def test_switch_case_branches_follow_its_cases() -> None:
    switch = nodes.get("switch_case")
    params = switch.parse(
        {"cases": [{"name": "saas", "condition": "industry = 'SaaS'"},
                   {"name": "retail", "condition": "industry = 'Retail'"}]}
    )  # fmt: skip
    assert switch.branches(params) == ("saas", "retail", "default")
    assert switch.conditions(params) == {
        "cases.0.condition": "industry = 'SaaS'",
        "cases.1.condition": "industry = 'Retail'",
    }

    def flow_with(branch: str) -> Flow:
        return (
            Flow.new("switch")
            .add("start", "manual_trigger")
            .add("route", "switch_case", cases=[c.model_dump() for c in params.cases])
            .add("hello", "email_send")
            .connect("start", "route")
            .connect("route", "hello", branch)
        )

    for branch in ("saas", "retail", "default"):
        assert validate_flow(flow_with(branch)).valid
    codes = [(d.code, d.node_id) for d in validate_flow(flow_with("fintech")).diagnostics]
    assert codes == [("unknown_branch", "route")]


@pytest.mark.parametrize(
    ("cases", "fragment"),
    [
        ([{"name": "a", "condition": "x = 1"}, {"name": "a", "condition": "x = 2"}], "duplicate"),
        ([{"name": "default", "condition": "x = 1"}], "reserved"),
        ([{"name": "Has Space", "condition": "x = 1"}], "pattern"),
        ([], "at least 1"),
    ],
)
def test_switch_case_names_are_unique_slugs(cases: list[dict[str, str]], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        nodes.get("switch_case").parse({"cases": cases})


@pytest.mark.parametrize(
    "type_name",
    [
        "os.system",
        "mawb.cli:app",
        "mawb.nodes.logic.IfCondition",
        "subprocess.Popen",
        "__import__('os')",
        "antigravity",
    ],
)
def test_flow_files_cannot_import_code(type_name: str) -> None:
    loaded_before = set(sys.modules)
    flow = (
        Flow.new("imports")
        .add("start", "manual_trigger")
        .add("evil", type_name, command="touch /tmp/pwned")
        .connect("start", "evil")
    )
    report = validate_flow(flow)
    assert [(d.code, d.node_id, d.field) for d in report.diagnostics] == [
        ("unknown_type", "evil", "type")
    ]
    newly_loaded = set(sys.modules) - loaded_before  # lazy imports of mawb's own deps may appear
    assert not [module for module in newly_loaded if module.split(".")[0] in type_name]
    assert "antigravity" not in sys.modules


@pytest.mark.parametrize(
    ("type_name", "params", "field"),
    [
        ("delay_action", {"days": 1, "until_field": "trial_end"}, "params"),
        ("delay_action", {"days": 0}, "params"),
        ("data_update", {"set": {"contact_id": "x"}, "increment": {}}, "params.set"),
        ("data_update", {"set": {"bad name": 1}, "increment": {}}, "params.set"),
        ("time_based_trigger", {"schedule": "@fortnightly"}, "params.schedule"),
        ("time_based_trigger", {"schedule": "0 9 * *"}, "params.schedule"),
        ("webhook_trigger", {"secret": "hunter2"}, "params.secret"),
        ("api_call", {"url": "file:///etc/passwd"}, "params.url"),
        ("webhook_call", {"url": "ftp://example.com"}, "params.url"),
        ("sms_send", {"body": "x" * 1601}, "params.body"),
        ("social_post", {"networks": ["myspace"]}, "params.networks.0"),
        ("merge_branches", {"mode": "some"}, "params.mode"),
        ("loop_iterator", {"max_iterations": 0}, "params.max_iterations"),
    ],
)
def test_bad_params_name_the_field(type_name: str, params: dict, field: str) -> None:
    flow = Flow.new("params")
    if nodes.get(type_name).category is Category.TRIGGER:
        flow.add("node", type_name, **params)
    else:
        flow.add("start", "manual_trigger").add("node", type_name, **params)
        flow.connect("start", "node")
    found = [(d.code, d.node_id, d.field) for d in validate_flow(flow).diagnostics]
    assert ("bad_params", "node", field) in found
