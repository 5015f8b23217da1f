"""The template library: eight valid flows that show every node type, four shaped by the brief.

Analysts start from these templates in the gallery and the CLI, so each must validate cleanly,
carry gallery metadata, and do what its description says. The structural checks walk the graph
(edges, branches, delays, Liquid variables) rather than comparing the files to a snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mawb import nodes
from mawb.personalize import template_variables
from mawb.templates import list_templates, load_template, template_ids

if TYPE_CHECKING:
    from mawb.model import Flow, Node

EXPECTED_IDS = {
    "abandoned_cart_v1",
    "customer_onboarding_v1",
    "lead_qualification_v1",
    "lead_welcome_v1",
    "product_launch_drip_v1",
    "trial_to_paid_v1",
    "webinar_reminders_v1",
    "win_back_v1",
}


def next_node(flow: Flow, node_id: str, branch: str | None = None) -> Node:
    """The single node after `node_id` (along `branch` for branching nodes)."""
    targets = [e.target for e in flow.outgoing(node_id) if e.branch == branch]
    assert len(targets) == 1, f"{node_id} --{branch}--> {targets}"
    return flow.node(targets[0])


def triggers(flow: Flow) -> list[Node]:
    return [n for n in flow.nodes if nodes.get(n.type).category is nodes.Category.TRIGGER]


def message_variables(node: Node) -> set[str]:
    found: set[str] = set()
    for field in ("subject", "body", "text", "title"):
        if field in node.params:
            found |= template_variables(node.params[field])
    return found


def test_there_are_eight_templates() -> None:
    assert set(template_ids()) == EXPECTED_IDS
    assert {flow.id for flow in list_templates()} == EXPECTED_IDS


@pytest.mark.parametrize("template_id", sorted(EXPECTED_IDS))
def test_template_validates_with_zero_diagnostics(template_id: str) -> None:
    flow = load_template(template_id)
    assert flow.id == template_id
    assert [str(d) for d in flow.validate().diagnostics] == []


@pytest.mark.parametrize("template_id", sorted(EXPECTED_IDS))
def test_template_has_gallery_metadata(template_id: str) -> None:
    flow = load_template(template_id)
    assert flow.name and len(flow.description) > 20
    assert flow.metadata.category and flow.metadata.category != "general"
    assert flow.metadata.duration_days is not None
    assert flow.metadata.tags
    assert flow.metadata.channels


@pytest.mark.parametrize("template_id", sorted(EXPECTED_IDS))
def test_declared_channels_cover_the_channels_used(template_id: str) -> None:
    flow = load_template(template_id)
    used = {nodes.get(n.type).channel for n in flow.nodes} - {None, "crm", "http"}
    assert used <= set(flow.metadata.channels)


def test_templates_together_use_all_23_node_types() -> None:
    used = {node.type for flow in list_templates() for node in flow.nodes}
    assert used == {cls.type for cls in nodes.all_types()}
    assert len(used) == 23


def test_load_template_returns_a_fresh_copy() -> None:
    flow = load_template("lead_welcome_v1")
    flow.nodes.clear()
    assert len(load_template("lead_welcome_v1").nodes) == 7


def test_unknown_template_lists_the_available_ones() -> None:
    with pytest.raises(KeyError, match="lead_welcome_v1"):
        load_template("no_such_template")


def test_lead_welcome_structure() -> None:
    flow = load_template("lead_welcome_v1")
    assert flow.params == {"engagement_threshold": 0.7}
    (start,) = triggers(flow)
    assert "lifecycle = 'lead'" in start.params["audience"]

    welcome = next_node(flow, start.id)
    assert welcome.type == "email_send"
    assert {"first_name", "company", "industry"} <= message_variables(welcome)

    wait_2d = next_node(flow, welcome.id)
    assert (wait_2d.type, wait_2d.params) == ("delay_action", {"days": 2})
    guide = next_node(flow, wait_2d.id)
    assert guide.type == "email_send"
    assert "guide" in guide.params["body"].lower()
    wait_3d = next_node(flow, guide.id)
    assert (wait_3d.type, wait_3d.params) == ("delay_action", {"days": 3})

    engaged = next_node(flow, wait_3d.id)
    assert engaged.type == "if_condition"
    assert engaged.params["condition"] == "engagement_score > :engagement_threshold"
    webinar = next_node(flow, engaged.id, "true")
    assert webinar.type == "email_send"
    assert "webinar" in webinar.params["subject"].lower()
    assert flow.outgoing(webinar.id) == []


def test_lead_qualification_structure() -> None:
    flow = load_template("lead_qualification_v1")
    entry = triggers(flow)
    events = {t.params.get("event") for t in entry} | {
        e for t in entry for e in t.params.get("events", [])
    }
    assert {"form_submission", "content_download", "page_view", "email_open"} <= events
    scores = {next_node(flow, t.id).id for t in entry}
    assert len(scores) == 1, "every entry point adds to the same score"
    score = flow.node(scores.pop())
    assert score.type == "data_update"
    assert score.params["increment"]["score"] > 0

    qualified = next_node(flow, score.id)
    assert qualified.type == "if_condition"
    assert qualified.params["condition"] == "score >= :score_threshold"
    assert flow.params["score_threshold"] == 50

    crm = next_node(flow, qualified.id, "true")
    assert crm.type == "crm_update"
    assert crm.params["fields"] == {"lead_status": "qualified"}
    fanout = next_node(flow, crm.id)
    assert fanout.type == "parallel_execution"
    notified = {flow.node(e.target).type for e in flow.outgoing(fanout.id)}
    assert notified == {"email_send", "webhook_call"}
    for t in entry:  # qualified leads do not re-enter scoring
        assert "qualified" in t.params["audience"]


def elapsed_days_before(flow: Flow, target: str) -> float:
    """Days of delay_action on the (single) path from the trigger to `target`."""
    (current,) = triggers(flow)
    days = 0.0
    while current.id != target:
        if current.type == "delay_action":
            days += current.params.get("days", 0)
        current = next_node(flow, current.id)
    return days


def test_customer_onboarding_structure() -> None:
    flow = load_template("customer_onboarding_v1")
    (signup,) = triggers(flow)
    assert (signup.type, signup.params["event"]) == ("event_trigger", "customer_signup")
    assert next_node(flow, signup.id).id == "email_confirmation"
    emails = ["getting_started_guide", "feature_tour", "quick_win_setup"]
    assert [elapsed_days_before(flow, e) for e in emails] == [1, 3, 5]
    assert elapsed_days_before(flow, "engagement_check") == 7

    check = flow.node("engagement_check")
    assert check.params["condition"] == "engagement_score < :engagement_threshold"
    re_engage = next_node(flow, check.id, "true")
    assert re_engage.type == "email_send"
    wait = next_node(flow, re_engage.id)
    assert wait.type == "condition_check"
    assert next_node(flow, wait.id, "timeout").type == "sms_send"


def test_product_launch_drip_structure() -> None:
    flow = load_template("product_launch_drip_v1")
    (start,) = triggers(flow)
    assert start.params["date_field"] == "launch_date"
    assert start.params["offset_days"] == -14
    assert next_node(flow, start.id).type == "social_post"

    launch = next(n for n in flow.nodes if n.params.get("until_field") == "launch_date")
    before = elapsed_days_before(flow, launch.id)
    assert 0 < before < 14, "pre-launch emails fit in the two weeks before launch"
    fork = next_node(flow, launch.id)
    assert fork.type == "parallel_execution"
    channels = {flow.node(e.target).type for e in flow.outgoing(fork.id)}
    assert channels == {"api_call", "email_send", "web_push"}
    joins = {next_node(flow, e.target).id for e in flow.outgoing(fork.id)}
    assert len(joins) == 1
    join = flow.node(joins.pop())
    assert (join.type, join.params["mode"]) == ("merge_branches", "all")
    follow_ups = []
    current = join
    while flow.outgoing(current.id):
        current = next_node(flow, current.id)
        if current.type == "email_send":
            follow_ups.append(current.id)
    assert len(follow_ups) >= 2, "post-launch follow-up emails"
