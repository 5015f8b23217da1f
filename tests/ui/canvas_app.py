"""A tiny Streamlit app that renders mawb's flow canvas for the browser tests.

It shows a three-node flow (trigger -> if/else -> email) with a palette of all 23 node types,
one node carrying a diagnostic, and writes the graph the canvas returns as JSON into a code
block (``st.code``) so the test can read what Python received. ``?read_only=1`` renders the
read-only variant; ``?mode=builder`` works like the Builder page: it feeds the latest edited
graph back in, annotated with an error on every step that has no incoming edge.
"""

from __future__ import annotations

import json
from typing import Any

CATEGORY_COLORS = {
    "trigger": "#16a34a",
    "action": "#2563eb",
    "logic": "#d97706",
    "integration": "#7c3aed",
}

# (type, category, label, icon, branches, outputs)
NODE_TYPES: list[tuple[str, str, str, str, list[str], str]] = [
    ("time_based_trigger", "trigger", "Schedule", "clock", [], "single"),
    ("behavioral_trigger", "trigger", "Behaviour", "activity", [], "single"),
    ("event_trigger", "trigger", "Business event", "zap", [], "single"),
    ("webhook_trigger", "trigger", "Webhook", "webhook", [], "single"),
    ("manual_trigger", "trigger", "Manual list", "hand", [], "single"),
    ("email_send", "action", "Send email", "mail", [], "single"),
    ("sms_send", "action", "Send SMS", "message", [], "single"),
    ("web_push", "action", "Web push", "bell", [], "single"),
    ("social_post", "action", "Social post", "share", [], "single"),
    ("delay_action", "action", "Delay", "hourglass", [], "single"),
    (
        "condition_check",
        "action",
        "Wait for condition",
        "check-circle",
        ["met", "timeout"],
        "branches",
    ),
    ("data_update", "action", "Update data", "edit", [], "single"),
    ("api_call", "action", "API call", "globe", [], "single"),
    ("if_condition", "logic", "If / else", "branch", ["true", "false"], "branches"),
    ("switch_case", "logic", "Switch", "switch", ["default"], "branches"),
    ("loop_iterator", "logic", "Loop", "repeat", ["body", "done"], "branches"),
    ("parallel_execution", "logic", "Parallel", "split", [], "fanout"),
    ("merge_branches", "logic", "Merge", "merge", [], "single"),
    ("crm_update", "integration", "Update CRM", "user-check", [], "single"),
    ("crm_create", "integration", "Create CRM record", "user-plus", [], "single"),
    ("database_query", "integration", "Database query", "database", [], "single"),
    ("external_api", "integration", "External API", "download", [], "single"),
    ("webhook_call", "integration", "Call webhook", "send", [], "single"),
]


def palette_items() -> list[dict[str, Any]]:
    """The palette Python would build from the node registry."""
    return [
        {
            "type": node_type,
            "category": category,
            "label": label,
            "icon": icon,
            "color": CATEGORY_COLORS[category],
            "help": f"{label} ({node_type})",
            "branches": branches,
            "outputs": outputs,
            "is_trigger": category == "trigger",
        }
        for node_type, category, label, icon, branches, outputs in NODE_TYPES
    ]


def sample_graph() -> dict[str, Any]:
    """Signup trigger -> if/else -> welcome email, the email carrying a diagnostic and counts."""
    welcome = _node("welcome", "email_send", 620, 40, "Welcome email", "action", "mail", [])
    welcome["data"].update(
        summary="Welcome, {{ first_name }}",
        error="Template refers to unknown attribute 'frist_name'",
        counts={"entered": 10, "waiting": 2, "completed": 8, "failed": 0, "converted": 1},
    )
    return {
        "nodes": [
            _node(
                "start", "event_trigger", 0, 120, "Signup", "trigger", "zap", [], is_trigger=True
            ),
            _node(
                "check", "if_condition", 300, 120, "Opted in?", "logic", "branch", ["true", "false"]
            ),
            welcome,
        ],
        "edges": [{"id": "e1", "source": "start", "target": "check", "sourceHandle": None}],
        "selected": None,
    }


def _node(
    node_id: str,
    node_type: str,
    x: int,
    y: int,
    label: str,
    category: str,
    icon: str,
    branches: list[str],
    *,
    is_trigger: bool = False,
) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": node_type,
        "position": {"x": x, "y": y},
        "data": {
            "label": label,
            "category": category,
            "color": CATEGORY_COLORS[category],
            "icon": icon,
            "summary": "",
            "branches": branches,
            "outputs": "branches" if branches else "single",
            "is_trigger": is_trigger,
            "error": None,
            "counts": None,
            "params": {},
        },
    }


NOT_CONNECTED = "Not connected: draw an edge into this step"


def annotate_unconnected(graph: dict[str, Any]) -> dict[str, Any]:
    """Mark every non-trigger node without an incoming edge, clear the mark elsewhere."""
    targets = {edge["target"] for edge in graph["edges"]}
    nodes = []
    for node in graph["nodes"]:
        data = dict(node["data"])
        if not data.get("is_trigger"):
            data["error"] = None if node["id"] in targets else NOT_CONNECTED
        nodes.append({**node, "data": data})
    return {**graph, "nodes": nodes}


def main() -> None:
    import streamlit as st

    from mawb.ui.canvas import flow_canvas, latest_graph

    st.set_page_config(page_title="mawb canvas test", layout="wide")
    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    read_only = st.query_params.get("read_only") == "1"
    graph = sample_graph()
    if st.query_params.get("mode") == "builder":
        graph = annotate_unconnected(latest_graph("canvas") or graph)
    result = flow_canvas(
        graph, palette=palette_items(), key="canvas", read_only=read_only, height=520
    )
    st.code(json.dumps(result, sort_keys=True), language="json")
    st.text(f"runs={st.session_state['runs']}")


if __name__ == "__main__":
    main()
