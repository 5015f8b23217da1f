"""Hypothesis strategies: random valid flows, populations and event histories.

Flows are built from blocks with one entry and a list of open exits (node, branch): simple
actions, branching nodes (if, switch, condition_check), parallel+merge around two sub-blocks
(or a fork whose two paths meet again at the next block, with no merge), and loops whose body
is a chain of simple nodes returning to the loop. Blocks are chained by wiring the open exits
of one block to the entry of the next (some exits are left open, which ends that contact's
path).

Every registered node type is drawn (`DRAWN_TYPES`, checked against the registry by
test_strategy_coverage.py). Types that call out go through the outbox: to the sandbox, or to
a connection (`STUB_HTTP`, `STUB_CRM`) that the harness's stub provider answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from hypothesis import strategies as st

from mawb.model import Flow

START = datetime(2026, 11, 2, 9, 0)
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Asia/Tokyo", "Australia/Sydney"]
LIFECYCLES = ["lead", "mql", "customer"]
CONDITIONS = [
    "score > 40",
    "engagement_score >= 0.5",
    "lifecycle = 'lead'",
    "lifecycle IN ('mql', 'customer')",
    "email_opens > 0",
    "converted",
    "score IS NULL",
    "score + 10 > :threshold",
    "NOT unsubscribed AND score BETWEEN 20 AND 70",
    "bump >= 2",
    "tag = 'hot'",
    "engagement_score * 100 > score OR lifecycle = 'customer'",
]
GOALS = [None, None, "converted", "bump >= 3", "score > 80"]
EVENT_NAMES = ["customer_signup", "email_open", "purchase", "unsubscribe", "form_submission",
               "webhook", "page_view"]
STUB_HTTP = "stub_http"  # a connection the harness answers with `stub_answer`
STUB_CRM = "stub_crm"
QUERIES = [
    ("SELECT contact_id, count(*) AS event_count FROM events GROUP BY contact_id", []),
    ("SELECT contact_id, coalesce(bump, 0) + 1 AS next_bump, score AS copied_score "
     "FROM contacts", ["next_bump"]),
]
TRIGGER_TYPES = ("manual_trigger", "time_based_trigger", "event_trigger", "behavioral_trigger",
                 "webhook_trigger")


class Builder:
    """Accumulates nodes and edges with fresh ids."""

    def __init__(self) -> None:
        self.nodes: list[tuple[str, str, dict[str, Any]]] = []
        self.edges: list[tuple[str, str, str | None]] = []

    def add(self, node_type: str, **params: Any) -> str:
        node_id = f"n{len(self.nodes)}"
        self.nodes.append((node_id, node_type, params))
        return node_id

    def wire(self, exits: list[tuple[str, str | None]], target: str) -> None:
        for source, branch in exits:
            self.edges.append((source, target, branch))


SIMPLE_KINDS = ["delay", "delay", "local", "update", "email", "sms", "push", "social",
                "api", "fetch", "webhook", "crm", "crm_new", "query"]


@st.composite
def simple_node(draw: st.DrawFn, b: Builder) -> tuple[str, list[tuple[str, str | None]]]:
    kind = draw(st.sampled_from(SIMPLE_KINDS))
    if kind == "delay":
        mode = draw(st.sampled_from(["hours", "minutes", "days", "until"]))
        if mode == "until":
            node = b.add("delay_action", until_field="trial_end_date",
                         offset_days=draw(st.sampled_from([0, -1, 0.5])))
        else:
            node = b.add("delay_action", **{mode: draw(st.sampled_from([1, 2, 5]))})
    elif kind == "local":
        node = b.add("delay_action", hours=draw(st.sampled_from([0, 3])) or 0,
                     at_local_time=draw(st.sampled_from(["09:00", "18:30", "07:15"])))
    elif kind == "update":
        choice = draw(st.sampled_from(["inc", "set", "both"]))
        params: dict[str, Any] = {"increment": {}, "set": {}}
        if choice in ("inc", "both"):
            params["increment"] = {"bump": draw(st.sampled_from([1, 2, -1]))}
        if choice in ("set", "both"):
            params["set"] = {"tag": draw(st.sampled_from(["hot", "cold"]))}
        node = b.add("data_update", **params)
    elif kind == "email":
        node = b.add("email_send", subject="Hi {{ first_name | default: 'there' }}",
                     body="Score {{ score }}")
    elif kind == "sms":
        node = b.add("sms_send", body="Hello {{ first_name }}")
    elif kind == "push":
        node = b.add("web_push", title="News for {{ first_name | default: 'you' }}",
                     body="Score {{ score }}")
    elif kind == "social":
        node = b.add("social_post", networks=draw(st.sampled_from(
            [["twitter"], ["linkedin", "facebook"]])), text="Threshold {{ threshold }}")
    elif kind == "api":
        node = b.add("api_call", url="https://api.example.com/v1/ping/{{ contact_id }}",
                     body='{"score": {{ score | default: 0 }}}',
                     batch=draw(st.booleans()))
    elif kind == "fetch":
        node = b.add("external_api", url="https://api.example.com/v1/people/{{ contact_id }}",
                     connection=STUB_HTTP, store=draw(st.sampled_from(
                         [{"company_size": "data.employees"},
                          {"company_size": "data.employees", "plan": "data.plan"}])))
    elif kind == "webhook":
        node = b.add("webhook_call", url="https://hooks.example.com/mawb", event="flow.step",
                     include=["email", "first_name"])
    elif kind in ("crm", "crm_new"):
        fields = draw(st.sampled_from([{"lead_status": "qualified"},
                                       {"lead_status": "working", "rating": 3,
                                        "owner": "{{ first_name | default: 'team' }}"}]))
        crm = draw(st.sampled_from(["local", "local", STUB_CRM]))
        node = b.add("crm_update" if kind == "crm" else "crm_create", crm=crm, fields=fields,
                     object=draw(st.sampled_from(["lead", "deal"])),
                     mirror_attributes=draw(st.booleans()))
    else:
        sql, columns = draw(st.sampled_from(QUERIES))
        node = b.add("database_query", sql=sql, columns=columns)
    return node, [(node, None)]


@st.composite
def block(draw: st.DrawFn, b: Builder, depth: int) -> tuple[str, list[tuple[str, str | None]]]:
    kinds = ["simple", "simple", "if", "check", "switch"]
    if depth > 0:
        kinds += ["parallel", "loop"]
    kind = draw(st.sampled_from(kinds))
    if kind == "simple":
        return draw(simple_node(b))
    if kind == "if":
        node = b.add("if_condition", condition=draw(st.sampled_from(CONDITIONS)))
        return node, [(node, "true"), (node, "false")]
    if kind == "check":
        node = b.add("condition_check", condition=draw(st.sampled_from(CONDITIONS)),
                     timeout_days=draw(st.sampled_from([0.5, 1, 2])))
        return node, [(node, "met"), (node, "timeout")]
    if kind == "switch":
        chosen = draw(st.lists(st.sampled_from(CONDITIONS), min_size=1, max_size=3, unique=True))
        cases = [{"name": f"c{i}", "condition": text} for i, text in enumerate(chosen)]
        node = b.add("switch_case", cases=cases)
        return node, [(node, case["name"]) for case in cases] + [(node, "default")]
    if kind == "parallel":
        fork = b.add("parallel_execution")
        left_entry, left_exits = draw(block(b, depth - 1))
        right_entry, right_exits = draw(block(b, depth - 1))
        b.wire([(fork, None)], left_entry)
        b.wire([(fork, None)], right_entry)
        if draw(st.integers(0, 3)) == 0:
            # No merge: both paths continue into whatever comes next (and meet there).
            return fork, left_exits + right_exits
        merge = b.add("merge_branches", mode=draw(st.sampled_from(["all", "any"])))
        b.wire(left_exits, merge)
        b.wire(right_exits, merge)
        return fork, [(merge, None)]
    loop = b.add("loop_iterator", max_iterations=draw(st.integers(1, 3)),
                 until=draw(st.sampled_from([None, None, "bump >= 2", "email_opens > 1"])))
    entry, exits = draw(simple_node(b))
    b.wire([(loop, "body")], entry)
    for _ in range(draw(st.integers(0, 1))):
        nxt, nxt_exits = draw(simple_node(b))
        b.wire(exits, nxt)
        exits = nxt_exits
    b.wire(exits, loop)
    return loop, [(loop, "done")]


@st.composite
def flows(draw: st.DrawFn) -> Flow:
    b = Builder()
    trigger = draw(st.sampled_from(["manual", "once", "event", "daily", "date", "behavioral",
                                    "webhook"]))
    if trigger == "manual":
        start = b.add("manual_trigger", contacts=[f"c{i:02d}" for i in
                                                  draw(st.lists(st.integers(0, 39), max_size=20))])
    elif trigger == "once":
        start = b.add("time_based_trigger", schedule="@once",
                      audience=draw(st.sampled_from([None, *CONDITIONS[:5]])))
    elif trigger == "daily":
        start = b.add("time_based_trigger", schedule="@daily",
                      audience=draw(st.sampled_from([None, *CONDITIONS[:5]])))
    elif trigger == "date":
        start = b.add("time_based_trigger", date_field="trial_end_date",
                      offset_days=draw(st.sampled_from([0, -1])))
    elif trigger == "behavioral":
        start = b.add("behavioral_trigger",
                      events=draw(st.sampled_from([["email_open"], ["purchase", "page_view"]])),
                      min_count=draw(st.integers(1, 2)),
                      within_days=draw(st.sampled_from([None, 1, 3])),
                      audience=draw(st.sampled_from([None, *CONDITIONS[:3]])))
    elif trigger == "webhook":
        start = b.add("webhook_trigger", path="signup", event="webhook",
                      where=draw(st.sampled_from([None, "plan = 'pro'"])))
    else:
        start = b.add("event_trigger", event=draw(st.sampled_from(["customer_signup",
                                                                    "form_submission"])),
                      where=draw(st.sampled_from([None, "plan = 'pro'"])))
    exits: list[tuple[str, str | None]] = [(start, None)]
    for _ in range(draw(st.integers(1, 4))):
        entry, new_exits = draw(block(b, depth=2))
        b.wire(exits, entry)
        keep = draw(st.lists(st.booleans(), min_size=len(new_exits), max_size=len(new_exits)))
        exits = [e for e, k in zip(new_exits, keep, strict=True) if k] or new_exits[:1]
    settings: dict[str, Any] = {
        "reentry": draw(st.sampled_from(["never", "after_exit", "always"])),
        "goal": draw(st.sampled_from(GOALS)),
        "timezone": draw(st.sampled_from(["UTC", "America/Chicago"])),
    }
    if draw(st.booleans()):
        settings["quiet_hours"] = draw(st.sampled_from([{"start": "21:00", "end": "08:00"},
                                                        {"start": "12:00", "end": "14:00"}]))
    if draw(st.integers(0, 2)) == 0:
        settings["frequency_cap"] = {"max_messages": draw(st.integers(1, 2)),
                                     "per_days": draw(st.integers(1, 2)),
                                     "mode": draw(st.sampled_from(["hold", "skip"]))}
    flow = Flow.new("prop", params={"threshold": draw(st.sampled_from([30, 60]))},
                    settings=settings)
    for node_id, node_type, params in b.nodes:
        flow.add(node_id, node_type, **params)
    for source, target, branch in b.edges:
        flow.connect(source, target, branch)
    return flow


@st.composite
def populations(draw: st.DrawFn, size: tuple[int, int] = (5, 40)) -> pd.DataFrame:
    n = draw(st.integers(*size))
    rows = []
    for i in range(n):
        rows.append({
            "contact_id": f"c{i:02d}",
            "email": f"c{i:02d}@example.com",
            "phone": draw(st.sampled_from([None, f"+1555000{i:04d}"])),
            "first_name": draw(st.sampled_from([None, "Ada", "Bo"])),
            "timezone": draw(st.sampled_from(ZONES)),
            "lifecycle": draw(st.sampled_from(LIFECYCLES)),
            "score": draw(st.one_of(st.none(), st.integers(0, 100))),
            "engagement_score": draw(st.sampled_from([0.1, 0.35, 0.5, 0.8, 0.95])),
            "email_consent": draw(st.booleans()) or draw(st.booleans()),
            "sms_consent": draw(st.booleans()),
            "unsubscribed": draw(st.integers(0, 9)) == 0,
            "do_not_contact": draw(st.integers(0, 9)) == 0,
            "trial_end_date": draw(st.one_of(st.none(), st.integers(-2, 4).map(
                lambda d: (START + timedelta(days=d)).date().isoformat()))),
            "bump": draw(st.sampled_from([None, 0.0, 1.0])),
            "tag": draw(st.sampled_from([None, "cold"])),
        })
    return pd.DataFrame(rows)


@st.composite
def histories(draw: st.DrawFn, contacts: pd.DataFrame) -> pd.DataFrame:
    ids = list(contacts["contact_id"])
    count = draw(st.integers(0, 30))
    rows = []
    for i in range(count):
        name = draw(st.sampled_from(EVENT_NAMES))
        minutes = draw(st.integers(-24 * 60, 4 * 24 * 60))
        properties = draw(st.sampled_from(['{"plan": "pro"}', '{"plan": "trial"}', "{}"]))
        rows.append({"event_id": f"e{i:03d}", "contact_id": draw(st.sampled_from(ids)),
                     "name": name,
                     "ts": pd.Timestamp(START + timedelta(minutes=minutes), tz="UTC"),
                     "properties": properties})
    return pd.DataFrame(rows, columns=["event_id", "contact_id", "name", "ts", "properties"])


# -- versions published in mid-flight -------------------------------------------------------
REVISIONS = ["params", "settings", "node_params", "add", "remove", "rename"]


def _parts(flow: Flow) -> tuple[list[tuple[str, str, dict[str, Any]]],
                                list[tuple[str, str, str | None]]]:
    nodes = [(n.id, n.type, dict(n.params)) for n in flow.nodes]
    return nodes, [(e.source, e.target, e.branch) for e in flow.edges]


def _rebuild(flow: Flow, nodes: list[tuple[str, str, dict[str, Any]]],
             edges: list[tuple[str, str, str | None]], **changes: Any) -> Flow:
    fields = {"params": dict(flow.params), "settings": flow.settings.model_dump(mode="json"),
              **changes}
    new = Flow.new(flow.id, **fields)
    for node_id, node_type, params in nodes:
        new.add(node_id, node_type, **params)
    for source, target, branch in dict.fromkeys(edges):
        new.connect(source, target, branch)
    return new.model_copy(update={"version": flow.version + 1})


@st.composite
def revisions(draw: st.DrawFn, flow: Flow) -> tuple[Flow, dict[str, str] | None]:
    """The next version of `flow` with one or two edits (flow params, settings, a node's
    params, a node added, a simple node removed, a node renamed), and how in-flight contacts
    are moved: None (they stay and drain), or a mapping (empty: same id = same node)."""
    nodes, edges = _parts(flow)
    changes: dict[str, Any] = {}
    renamed: dict[str, str] = {}
    for kind in draw(st.lists(st.sampled_from(REVISIONS), min_size=1, max_size=2, unique=True)):
        if kind == "params":
            changes["params"] = {"threshold": draw(st.sampled_from([0, 45, 100]))}
        elif kind == "settings":
            settings = flow.settings.model_dump(mode="json")
            settings["goal"] = draw(st.sampled_from(GOALS))
            settings["quiet_hours"] = draw(st.sampled_from(
                [None, {"start": "20:00", "end": "09:00"}]))
            changes["settings"] = settings
        elif kind == "node_params":
            index = draw(st.integers(0, len(nodes) - 1))
            node_id, node_type, params = nodes[index]
            if node_type == "delay_action" and not params.get("until_field"):
                params = {"hours": draw(st.sampled_from([1, 4, 30]))}
            elif node_type in ("if_condition", "condition_check"):
                params = {**params, "condition": draw(st.sampled_from(CONDITIONS))}
            elif node_type == "data_update":
                params = {"increment": {"bump": 3}, "set": {"tag": "hot"}}
            nodes[index] = (node_id, node_type, params)
        elif kind == "add":
            b = Builder()
            b.nodes = list(nodes)
            draw(simple_node(b))
            node_id = f"a{len(nodes)}"
            b.nodes[-1] = (node_id, *b.nodes[-1][1:])
            nodes = b.nodes
            index = draw(st.integers(0, len(edges) - 1)) if edges else None
            if index is not None:
                source, target, branch = edges[index]
                edges[index:index + 1] = [(source, node_id, branch), (node_id, target, None)]
            else:
                edges.append((nodes[0][0], node_id, None))
        elif kind == "remove":
            simple = [n for n in nodes[1:] if n[1] in SIMPLE_TYPES]
            if not simple:
                continue
            gone = draw(st.sampled_from(simple))[0]
            into = [e for e in edges if e[1] == gone]
            out = [e[1] for e in edges if e[0] == gone]
            if any(source == target for source, _, _ in into for target in out):
                continue
            edges = [e for e in edges if gone not in (e[0], e[1])]
            edges += [(source, target, branch) for source, _, branch in into for target in out]
            nodes = [n for n in nodes if n[0] != gone]
        elif kind == "rename":
            original = {n.id for n in flow.nodes}
            index = draw(st.sampled_from([i for i, n in enumerate(nodes) if n[0] in original]))
            old_id = nodes[index][0]
            new_id = f"r{old_id}"
            nodes[index] = (new_id, *nodes[index][1:])
            edges = [(new_id if s == old_id else s, new_id if t == old_id else t, br)
                     for s, t, br in edges]
            renamed[old_id] = new_id
    revised = _rebuild(flow, nodes, edges, **changes)
    move = draw(st.sampled_from(["stay", "move", "move"]))
    return revised, (None if move == "stay" else renamed)


SIMPLE_TYPES = {"delay_action", "data_update", "email_send", "sms_send", "web_push",
                "social_post", "api_call", "external_api", "webhook_call", "crm_update",
                "crm_create", "database_query"}
