"""Validation reports every problem at once, in a stable order, and refuses unsafe conditions.

The canvas highlights all bad nodes together and scripts match on codes, so a report must be
complete (one flow with several problems lists them all) and sorted (errors first, flow-level
before node-level, nodes in file order). Conditions are user text that ends up near SQL: any
injection attempt must surface as `bad_condition` with a message naming what was refused.
"""

from __future__ import annotations

import pytest

from mawb.model import Flow
from mawb.validate import Diagnostic, Report, Severity, validate_document, validate_flow


def three_problem_flow() -> Flow:
    """A flow with a bad setting, a bad condition, an orphan node and an open loop."""
    flow = Flow.new("three_problems", settings={"timezone": "Nowhere/City"})
    flow.add("start", "manual_trigger")
    flow.add("attempts", "loop_iterator", max_iterations=2)
    flow.add("check", "if_condition", condition="score >> 2 ==")
    flow.add("hello", "email_send", subject="Hi", body="Hello")
    flow.add("orphan", "sms_send", body="Nobody reaches me")
    flow.connect("start", "attempts").connect("attempts", "check", "body")
    flow.connect("check", "hello", "true")
    return flow


def test_a_flow_with_several_problems_reports_all_of_them() -> None:
    report = validate_flow(three_problem_flow())
    found = {(d.code, d.node_id, d.field) for d in report.diagnostics}
    assert found == {
        ("bad_settings", None, "settings.timezone"),
        ("bad_condition", "check", "params.condition"),
        ("unreachable", "orphan", None),
        ("loop_not_closed", "attempts", "edges"),
    }
    assert not report.valid
    assert len(report.errors) == 3
    assert set(report.by_node()) == {"check", "orphan", "attempts"}


def test_diagnostics_are_sorted_errors_first_then_flow_level_then_file_order() -> None:
    flow = three_problem_flow()
    report = validate_flow(flow)
    position = {node.id: i for i, node in enumerate(flow.nodes)}

    def rank(d: Diagnostic) -> tuple[int, int]:
        severity = 0 if d.severity is Severity.ERROR else 1
        return severity, -1 if d.node_id is None else position[d.node_id]

    ranks = [rank(d) for d in report.diagnostics]
    assert ranks == sorted(ranks)
    assert [d.code for d in report.diagnostics] == [
        "bad_settings",
        "bad_condition",
        "unreachable",
        "loop_not_closed",
    ]


def test_node_order_in_the_file_decides_the_order_of_diagnostics() -> None:
    flow = three_problem_flow()
    flow.nodes.reverse()  # orphan now comes before check
    codes = [d.code for d in validate_flow(flow).errors]
    assert codes == ["bad_settings", "unreachable", "bad_condition"]


def test_validation_is_deterministic_and_free_of_duplicates() -> None:
    flow = three_problem_flow()
    first, second = validate_flow(flow), validate_flow(flow)
    assert first == second
    assert len(set(first.diagnostics)) == len(first.diagnostics)


def test_report_serialises_to_the_cli_contract() -> None:
    data = validate_flow(three_problem_flow()).to_dict()
    assert data["valid"] is False
    for item in data["diagnostics"]:
        assert set(item) == {"severity", "code", "node_id", "field", "message"}
        assert item["severity"] in {"error", "warning"}


def test_shape_errors_of_a_raw_document_are_all_reported_as_schema() -> None:
    document = {
        "id": "shape",
        "nodes": [{"id": "a"}, {"id": "b", "type": "email_send", "params": []}],
        "edges": [{"source": "a"}],
        "settings": {"reentry": "sometimes"},
    }
    report = validate_document(document)
    found = {(d.code, d.node_id, d.field) for d in report.diagnostics}
    assert found == {
        ("schema", "a", "type"),
        ("schema", "b", "params"),
        ("schema", None, "edges.0.target"),
        ("schema", None, "settings.reentry"),
    }


@pytest.mark.parametrize("document", [None, [], "flow", 3, [{"id": "x"}]])
def test_a_document_that_is_not_an_object_is_a_schema_error(document: object) -> None:
    report = validate_document(document)
    assert isinstance(report, Report)
    assert [(d.code, d.node_id) for d in report.diagnostics] == [("schema", None)]


def test_a_future_schema_version_is_a_schema_error_not_an_exception() -> None:
    report = validate_document({"schema_version": 99, "id": "future"})
    assert [(d.code, d.field) for d in report.diagnostics] == [("schema", "schema_version")]
    assert "newer" in report.diagnostics[0].message


INJECTIONS = [
    ("1=1; DROP TABLE x", "';' is not allowed"),
    ("engagement_score > 0.5; DELETE FROM contacts", "';' is not allowed"),
    ("score > (SELECT max(score) FROM contacts)", "subqueries"),
    ("lifecycle IN (SELECT lifecycle FROM contacts)", "subqueries"),
    ("EXISTS (SELECT 1 FROM contacts)", "subqueries"),
    ("1=1 UNION SELECT * FROM contacts", "UNION"),
    ("DROP TABLE contacts", "DROP"),
    ("score > 1 -- AND consent", "comments"),
    ("score > 1 /* hidden */ OR 1=1", "comments"),
    ("read_csv('/etc/passwd') IS NOT NULL", "function read_csv() is not allowed"),
    ("getenv('HOME') = 'root'", "function getenv() is not allowed"),
    ("load_extension('httpfs') IS NULL", "function load_extension() is not allowed"),
    ("contacts.score > 1", "plain column name"),
    ("'x' || password = 'x'", "string concatenation"),
]


@pytest.mark.parametrize(("condition", "fragment"), INJECTIONS)
def test_condition_injection_is_a_bad_condition_with_a_clear_message(
    condition: str, fragment: str
) -> None:
    flow = (
        Flow.new("injection")
        .add("start", "manual_trigger")
        .add("check", "if_condition", condition=condition)
        .add("hello", "email_send")
        .connect("start", "check")
        .connect("check", "hello", "true")
    )
    report = validate_flow(flow)
    assert [(d.code, d.node_id, d.field) for d in report.diagnostics] == [
        ("bad_condition", "check", "params.condition")
    ]
    assert fragment in report.diagnostics[0].message
    assert not report.valid


@pytest.mark.parametrize(
    ("node_type", "params", "field"),
    [
        ("time_based_trigger", {"audience": "1=1; DROP TABLE contacts"}, "params.audience"),
        ("event_trigger", {"where": "(SELECT 1) = 1"}, "params.where"),
        (
            "switch_case",
            {"cases": [{"name": "a", "condition": "x = 1 --"}]},
            "params.cases.0.condition",
        ),
    ],
)
def test_every_condition_field_is_checked(node_type: str, params: dict, field: str) -> None:
    flow = Flow.new("fields").add("start", "manual_trigger").add("node", node_type, **params)
    if node_type == "switch_case":  # triggers take no input; the switch needs one
        flow.connect("start", "node")
    found = [(d.code, d.field) for d in validate_flow(flow).diagnostics if d.node_id == "node"]
    assert ("bad_condition", field) in found


def test_an_injection_in_the_goal_is_a_bad_setting() -> None:
    flow = Flow.new("goal", settings={"goal": "converted; DROP TABLE contacts"})
    flow.add("start", "manual_trigger")
    report = validate_flow(flow)
    assert [(d.code, d.field) for d in report.diagnostics] == [("bad_settings", "settings.goal")]
    assert "';' is not allowed" in report.diagnostics[0].message


def test_duplicate_ids_of_different_types_are_reported_not_crashed_on() -> None:
    """Regression: the params of one 'step' were checked with the other 'step''s node type."""
    flow = (
        Flow.new("dup_types")
        .add("start", "manual_trigger")
        .add("step", "switch_case")
        .add("step", "delay_action", days=1)
        .add("hello", "email_send")
        .connect("start", "step")
        .connect("step", "hello", "case_1")
    )
    report = validate_flow(flow)
    assert ("duplicate_id", "step", "id") in {
        (d.code, d.node_id, d.field) for d in report.diagnostics
    }
    assert not report.valid
