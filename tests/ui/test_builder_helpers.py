"""The Builder's pure helpers: canvas graph translation, auto layout, config panel, state."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import mawb
from mawb import nodes
from mawb.layout import LAYER_GAP, ROW_GAP, layered_positions
from mawb.model import Flow
from mawb.nodes.base import CATEGORY_COLORS, Category
from mawb.ui import builder_state as bs
from mawb.ui.config_panel import (
    GENERAL,
    field_errors,
    field_specs,
    initial_values,
    params_from_values,
)
from mawb.ui.flow_graph import flow_to_graph, graph_to_flow, palette_items

if TYPE_CHECKING:
    from pathlib import Path


def branching() -> Flow:
    return (
        Flow.new("branching")
        .add("start", "manual_trigger")
        .add("check", "if_condition")
        .add("yes", "email_send")
        .add("no", "sms_send")
        .add("join", "merge_branches", mode="any")
        .connect("start", "check")
        .connect("check", "yes", "true")
        .connect("check", "no", "false")
        .connect("yes", "join")
        .connect("no", "join")
    )


# -- canvas graph ------------------------------------------------------------------------------
def test_palette_lists_every_type_with_its_category_colour() -> None:
    items = palette_items()
    assert len(items) == 23 == len(nodes.all_types())
    by_type = {item["type"]: item for item in items}
    assert by_type["if_condition"]["branches"] == ["true", "false"]
    assert by_type["condition_check"]["branches"] == ["met", "timeout"]
    assert by_type["parallel_execution"]["outputs"] == "fanout"
    assert by_type["event_trigger"]["is_trigger"] is True
    assert by_type["crm_update"]["color"] == CATEGORY_COLORS[Category.INTEGRATION]


def test_flow_to_graph_draws_errors_branches_and_counts() -> None:
    flow = branching().add("cases", "switch_case", cases=[
        {"name": "saas", "condition": "industry = 'SaaS'"}, {"name": "retail", "condition": "x"}
    ])
    report = flow.validate()
    graph = flow_to_graph(flow, diagnostics=report.diagnostics, counts={"yes": {"entered": 4}},
                          selected="check")
    by_id = {node["id"]: node for node in graph["nodes"]}
    assert by_id["cases"]["data"]["branches"] == ["saas", "retail", "default"]
    assert "no trigger leads here" in by_id["cases"]["data"]["error"]
    assert by_id["check"]["data"]["error"] is None
    assert by_id["yes"]["data"]["counts"] == {"entered": 4}
    assert by_id["check"]["data"]["summary"] == "engagement_score > 0.5"
    assert graph["selected"] == "check"
    handles = {(e["source"], e["sourceHandle"]) for e in graph["edges"]}
    assert ("check", "true") in handles and ("check", "false") in handles
    assert len({e["id"] for e in graph["edges"]}) == len(graph["edges"])


def test_invalid_switch_params_keep_readable_case_handles() -> None:
    flow = Flow.new("f").add("s", "switch_case", cases=[{"name": "vip"}])  # condition missing
    data = flow_to_graph(flow)["nodes"][0]["data"]
    assert data["branches"] == ["vip", "default"]
    assert data["summary"] == "check the settings"


def test_graph_round_trip_keeps_behaviour_labels_and_positions() -> None:
    flow = mawb.load_template("lead_qualification_v1")
    flow.nodes[0] = flow.nodes[0].model_copy(update={"label": "Entry"})
    graph = flow_to_graph(flow, positions=layered_positions(flow))
    graph["nodes"][1]["position"] = {"x": 999, "y": 5}
    back = graph_to_flow(graph, flow)
    assert back.model_dump(exclude={"ui"}) == flow.model_dump(exclude={"ui"})
    assert back.ui.positions[graph["nodes"][1]["id"]] == (999.0, 5.0)
    assert back.nodes[0].label == "Entry"


def test_canvas_edits_become_flow_edges_with_branches() -> None:
    flow = Flow.new("f")
    graph = {
        "nodes": [
            {"id": "t", "type": "event_trigger", "position": {"x": 0, "y": 0},
             "data": {"params": {}}},
            {"id": "if_condition_1", "type": "if_condition", "position": {"x": 300, "y": 0},
             "data": {"params": {"condition": "score > 3"}, "error": "stale"}},
        ],
        "edges": [{"id": "e", "source": "t", "target": "if_condition_1", "sourceHandle": None},
                  {"id": "f", "source": "if_condition_1", "target": "t", "sourceHandle": "true"}],
        "selected": None,
    }
    edited = graph_to_flow(graph, flow)
    assert [(e.source, e.target, e.branch) for e in edited.edges] == [
        ("t", "if_condition_1", None), ("if_condition_1", "t", "true")
    ]
    assert edited.node("if_condition_1").params == {"condition": "score > 3"}


# -- layout ------------------------------------------------------------------------------------
def test_layout_puts_layers_left_to_right_and_branches_in_handle_order() -> None:
    positions = layered_positions(branching())
    assert positions["start"][0] == 0 and positions["check"][0] == LAYER_GAP
    assert positions["yes"][0] == positions["no"][0] == 2 * LAYER_GAP
    assert positions["join"][0] == 3 * LAYER_GAP
    assert positions["yes"][1] < positions["no"][1]  # `true` above `false`
    assert positions["no"][1] - positions["yes"][1] == ROW_GAP


def test_layout_copes_with_loops_cycles_and_loose_nodes() -> None:
    flow = (
        Flow.new("loops")
        .add("start", "manual_trigger").add("loop", "loop_iterator").add("body", "email_send")
        .add("a", "delay_action").add("b", "delay_action").add("alone", "sms_send")
        .connect("start", "loop").connect("loop", "body", "body").connect("body", "loop")
        .connect("a", "b").connect("b", "a")  # an illegal cycle while editing
    )
    positions = layered_positions(flow)
    assert set(positions) == {"start", "loop", "body", "a", "b", "alone"}
    assert positions["start"][0] < positions["loop"][0] < positions["body"][0]
    assert positions["a"][0] != positions["b"][0]
    assert len(set(positions.values())) == len(positions)  # nothing stacked on another node
    assert layered_positions(flow) == positions  # deterministic


@pytest.mark.parametrize("template_id", mawb.template_ids())
def test_layout_of_templates_has_no_overlaps(template_id: str) -> None:
    flow = mawb.load_template(template_id)
    positions = layered_positions(flow)
    assert len(set(positions.values())) == len(flow.nodes)
    for edge in flow.edges:
        if edge.source != edge.target and flow.node(edge.target).type != "loop_iterator":
            assert positions[edge.source][0] < positions[edge.target][0]


# -- config panel ------------------------------------------------------------------------------
def test_field_specs_pick_inputs_from_the_params_model() -> None:
    kinds = {spec.name: spec for spec in field_specs(nodes.get("api_call"))}
    assert kinds["method"].kind == "choice" and "POST" in kinds["method"].choices
    assert kinds["batch"].kind == "bool" and kinds["batch"].default is False
    assert kinds["timeout_seconds"].kind == "float"
    assert kinds["headers"].kind == "dict" and kinds["headers"].text_values
    assert (kinds["timeout_seconds"].high, kinds["timeout_seconds"].unit) == (120, "seconds")
    assert kinds["secret"].optional and kinds["secret"].kind == "text"
    assert "never the value" in kinds["secret"].help
    social = {spec.name: spec for spec in field_specs(nodes.get("social_post"))}
    assert social["networks"].kind == "multichoice" and "linkedin" in social["networks"].choices
    assert {s.name: s.kind for s in field_specs(nodes.get("loop_iterator"))} == {
        "max_iterations": "int", "until": "text"
    }
    assert {s.name: s.kind for s in field_specs(nodes.get("switch_case"))} == {"cases": "json"}
    for node_type in nodes.all_types():  # every type gets a panel
        field_specs(node_type)


def test_looking_at_a_node_does_not_change_its_params() -> None:
    for node_type in nodes.all_types():
        values = initial_values(node_type, {})
        assert params_from_values(node_type, values, {}) == ({}, {}), node_type.type


def test_editing_one_input_writes_it_and_model_filled_values() -> None:
    delay = nodes.get("delay_action")
    values = initial_values(delay, {})
    assert values["days"] == 1  # the model's own default for a fresh delay
    values["hours"] = 3.0
    params, errors = params_from_values(delay, values, {})
    assert params == {"days": 1.0, "hours": 3.0} and errors == {}


def test_inputs_parse_lists_json_and_empty_optionals() -> None:
    webhook = nodes.get("webhook_call")
    values = initial_values(webhook, {})
    assert values["include"] == "email, first_name"
    values["include"] = "email, plan ,"
    params, _ = params_from_values(webhook, values, {})
    assert params["include"] == ["email", "plan"]
    update = nodes.get("data_update")
    values = initial_values(update, {"set": {"tier": "gold"}})
    values["set"] = '{"tier": "gold", "vip": true}'
    params, _ = params_from_values(update, values, {"set": {"tier": "gold"}})
    assert params["set"] == {"tier": "gold", "vip": True}
    values["set"] = '{"tier": '
    params, errors = params_from_values(update, values, {"set": {"tier": "gold"}})
    assert params["set"] == {"tier": "gold"} and "not valid JSON" in errors["set"]
    email = nodes.get("email_send")
    values = initial_values(email, {"to": "sales@example.com"})
    values["to"] = "  "
    params, _ = params_from_values(email, values, {"to": "sales@example.com"})
    assert params["to"] is None


def test_field_errors_come_from_the_params_model() -> None:
    errors = field_errors(nodes.get("if_condition"), {"condition": ""})
    assert errors["condition"] == "should not be empty"  # plain words, not pydantic's
    assert field_errors(nodes.get("if_condition"), {"condition": "x > 1"}) == {}
    delay = field_errors(nodes.get("delay_action"), {"days": 0})
    assert "set a duration" in delay[GENERAL]
    switch = field_errors(nodes.get("switch_case"), {"cases": [{"name": "Bad Name",
                                                                 "condition": "x"}]})
    assert switch["cases"].startswith("0.name:")
    assert "^" not in switch["cases"] and "lower-case name" in switch["cases"]  # no regex shown


# -- builder state -----------------------------------------------------------------------------
def test_a_canvas_edit_is_applied_once() -> None:
    state = bs.BuilderState(flow=branching())
    graph = flow_to_graph(state.flow)
    graph["selected"] = "check"
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] != "join"]
    graph["edges"] = [e for e in graph["edges"] if e["target"] != "join"]
    assert bs.apply_canvas_edit(state, graph)
    assert state.selected == "check" and len(state.flow.nodes) == 4
    assert bs.apply_node_config(state, "check", "Engaged?", {"condition": "score > 9"})
    # The same graph seen again on the next rerun must not undo the config edit.
    assert not bs.apply_canvas_edit(state, graph)
    assert state.flow.node("check").params == {"condition": "score > 9"}
    assert state.flow.node("check").label == "Engaged?"
    assert not bs.apply_node_config(state, "check", "Engaged?", {"condition": "score > 9"})


def test_replacing_and_laying_out_start_fresh_canvas_keys() -> None:
    state = bs.BuilderState(flow=bs.new_flow())
    assert not state.dirty
    key = state.canvas_key
    template = mawb.load_template("lead_welcome_v1")
    bs.replace_flow(state, template)
    assert state.canvas_key != key and state.dirty
    assert set(state.flow.ui.positions) == {node.id for node in template.nodes}
    bs.replace_flow(state, template, based_on=1, saved=state.flow)
    assert not state.dirty
    key = state.canvas_key
    bs.auto_layout(state)
    assert state.canvas_key != key


def test_a_shared_flow_is_adopted_once() -> None:
    state = bs.BuilderState(flow=bs.new_flow())
    shared = mawb.load_template("win_back_v1")
    assert bs.adopt_shared_flow(state, shared)
    assert state.flow.id == "win_back_v1" and state.flow is not shared
    assert not bs.adopt_shared_flow(state, shared)
    assert not bs.adopt_shared_flow(state, "not a flow")


def test_importing_a_flow_file_opens_it_or_names_the_problem() -> None:
    state = bs.BuilderState(flow=bs.new_flow())
    before = state.generation
    problem = bs.import_file(state, "broken.yaml", b"id: a\nnodes: [\n")
    assert problem is not None and problem.startswith("broken.yaml at 3:1: invalid YAML")
    problem = bs.import_file(state, "binary.json", b"\xff\xfe")
    assert problem == "binary.json is not a UTF-8 text file"
    assert state.flow.id == bs.NEW_FLOW_ID and state.generation == before
    exported = mawb.load_template("lead_welcome_v1").to_json().encode()
    assert bs.import_file(state, "welcome.json", exported) is None
    assert state.flow.id == "lead_welcome_v1" and state.generation == before + 1
    assert state.based_on is None and state.dirty


def test_home_overview_counts_flows_contacts_and_runs(tmp_path: Path) -> None:
    from datetime import datetime

    import pandas as pd

    from mawb.engine.workspace import Workspace
    from mawb.ui.home import workspace_overview
    from mawb.versions import VersionStore

    empty = workspace_overview(tmp_path)
    assert empty.flows == [] and empty.contacts is None and "No store yet" in str(empty.store_note)
    flow = mawb.load_template("lead_welcome_v1")
    VersionStore(tmp_path).save(flow, "seeded")
    workspace = Workspace(tmp_path)
    workspace.import_contacts(pd.DataFrame({"contact_id": ["c1", "c2", "c3"]}))
    workspace.tick(flow, datetime(2026, 1, 5, 9))
    overview = workspace_overview(tmp_path)
    assert overview.contacts == 3 and overview.events == 0 and overview.store_note is None
    assert overview.flows == [{"flow": "lead_welcome_v1", "name": flow.name, "versions": 1,
                               "latest": "v1", "steps": len(flow.nodes),
                               "last message": "seeded"}]
    assert [run["flow"] for run in overview.runs] == ["lead_welcome_v1"]
