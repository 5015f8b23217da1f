"""Benchmark: how long `validate_flow` takes on a large, realistic flow.

The canvas re-validates the whole flow on every edit, so validation must stay interactive even
for flows far larger than any template. This script builds a valid flow of N nodes (default 500)
out of repeated blocks that exercise every check: chains of Liquid messages and delays, if/else
and switch branches joined by merges, parallel fan-out, wait-for-condition, loops with a body that
returns, and SQL conditions with :params. It times `validate_flow` after a warm-up and, in the
same run, a baseline: pydantic's `Flow.model_validate` of the same document (the shape check
alone). Liquid templates and SQL conditions are parsed through LRU caches, so the warm figure is
what the canvas sees on re-validation and the cold figure (caches cleared before every run) what
a fresh process sees.

    python bench/validate.py [--nodes 500] [--runs 30] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

from mawb import expr
from mawb.model import Flow
from mawb.personalize import compile_template
from mawb.validate import validate_document, validate_flow

if TYPE_CHECKING:
    from collections.abc import Callable

SUBJECT = "{{ first_name | default: 'there' }}, news for {{ company | default: 'your team' }}"
BODY = (
    "Hi {{ first_name | default: 'there' }},\n\n{% if industry %}Teams in {{ industry }}"
    "{% else %}Teams like yours{% endif %} save {{ score | default: 3 }} hours a week.\n"
    "{% for tag in tags %}#{{ tag | upcase }} {% endfor %}"
)


class FlowBuilder:
    """Appends single-entry, single-exit blocks to a growing chain of nodes."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.params: dict[str, float] = {}
        self.tail = self.node("manual_trigger", list_name="bench")

    def node(self, node_type: str, **params: Any) -> str:
        node_id = f"n{len(self.nodes):04d}_{node_type}"
        self.nodes.append({"id": node_id, "type": node_type, "params": params})
        return node_id

    def edge(self, source: str, target: str, branch: str | None = None) -> None:
        edge = {"source": source, "target": target}
        if branch is not None:
            edge["branch"] = branch
        self.edges.append(edge)

    def then(self, node_id: str, branch: str | None = None) -> str:
        self.edge(self.tail, node_id, branch)
        self.tail = node_id
        return node_id

    def param(self, value: float) -> str:
        name = f"threshold_{len(self.params)}"
        self.params[name] = value
        return name

    def email(self) -> str:
        return self.node("email_send", subject=SUBJECT, body=BODY, preheader="{{ company }}")

    # -- blocks ----------------------------------------------------------------------------
    def message_chain(self) -> None:
        self.then(self.email())
        self.then(self.node("delay_action", days=2))
        self.then(self.node("sms_send", body="Hi {{ first_name | default: 'there' }}!"))

    def if_else(self) -> None:
        threshold = self.param(0.5)
        check = self.then(
            self.node(
                "if_condition",
                condition=f"engagement_score > :{threshold} AND lifecycle IN ('lead', 'mql')",
            )
        )
        yes, no = self.email(), self.node("web_push", title="Hi {{ first_name }}", body="New")
        join = self.node("merge_branches", mode="any")
        self.edge(check, yes, "true")
        self.edge(check, no, "false")
        self.edge(yes, join)
        self.edge(no, join)
        self.tail = join

    def switch(self) -> None:
        cases = [
            {"name": "saas", "condition": "industry = 'SaaS'"},
            {"name": "retail", "condition": "lower(industry) LIKE 'retail%'"},
            {"name": "big", "condition": "coalesce(score, 0) BETWEEN 50 AND 100"},
        ]
        route = self.then(self.node("switch_case", cases=cases))
        join = self.node("merge_branches", mode="any")
        for branch in ("saas", "retail", "big", "default"):
            target = self.email()
            self.edge(route, target, branch)
            self.edge(target, join)
        self.tail = join

    def parallel(self) -> None:
        fork = self.then(self.node("parallel_execution"))
        join = self.node("merge_branches", mode="all")
        targets = [
            self.node("data_update", increment={"score": 5}),
            self.node("crm_update", fields={"lead_status": "{{ lifecycle }}"}),
            self.node("api_call", url="https://api.example.com/{{ contact_id }}", body=BODY),
        ]
        for target in targets:
            self.edge(fork, target)
            self.edge(target, join)
        self.tail = join

    def wait_for(self) -> None:
        threshold = self.param(2)
        check = self.then(
            self.node("condition_check", condition=f"score >= :{threshold}", timeout_days=3)
        )
        met, timeout = self.email(), self.node("sms_send", body="Still there?")
        join = self.node("merge_branches", mode="any")
        for source, branch in ((met, "met"), (timeout, "timeout")):
            self.edge(check, source, branch)
            self.edge(source, join)
        self.tail = join

    def loop(self) -> None:
        loop = self.then(
            self.node("loop_iterator", max_iterations=3, until="email_opens > 0 OR unsubscribed")
        )
        body = self.email()
        wait = self.node("delay_action", days=1)
        self.edge(loop, body, "body")
        self.edge(body, wait)
        self.edge(wait, loop)
        self.tail = loop
        self.then(self.node("delay_action", hours=6), "done")

    def document(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "id": "bench_large",
            "name": f"Benchmark flow ({len(self.nodes)} nodes)",
            "params": self.params,
            "settings": {"timezone": "Europe/Paris", "goal": "plan IN ('pro', 'enterprise')"},
            "nodes": self.nodes,
            "edges": self.edges,
        }


def build_document(size: int) -> dict[str, Any]:
    """A valid flow document with exactly `size` nodes."""
    builder = FlowBuilder()
    blocks = [
        builder.message_chain, builder.if_else, builder.switch, builder.parallel,
        builder.wait_for, builder.loop,
    ]  # fmt: skip
    index = 0
    while len(builder.nodes) < size - 8:  # the largest block adds 6 nodes
        blocks[index % len(blocks)]()
        index += 1
    while len(builder.nodes) < size:
        builder.then(builder.email())
    return builder.document()


def time_runs(func: Callable[[], object], runs: int, before: Callable[[], None] | None = None
              ) -> list[float]:  # fmt: skip
    """Milliseconds per call over `runs` calls after one warm-up call."""
    func()
    timings = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        func()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(label: str, timings: list[float], baseline: float | None = None) -> str:
    median = statistics.median(timings)
    text = f"{label:<38} median {median:8.2f} ms   p95 {percentile(timings, 0.95):8.2f} ms"
    if baseline:
        text += f"   x{median / baseline:6.1f} baseline"
    return text


def profile(flow: Flow, top: int = 15) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        validate_flow(flow)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def clear_parse_caches() -> None:
    compile_template.cache_clear()
    expr._checked.cache_clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of validate_flow")
    args = parser.parse_args(argv)

    document = build_document(args.nodes)
    flow = Flow.model_validate(document)
    report = validate_flow(flow)
    if report.diagnostics:
        print("benchmark flow is not clean:", *report.diagnostics[:10], sep="\n  ")
        return 1
    types = {node.type for node in flow.nodes}
    print(
        f"flow: {len(flow.nodes)} nodes, {len(flow.edges)} edges, {len(types)} node types, "
        f"{len(flow.params)} params; {args.runs} runs after a warm-up; "
        f"Python {sys.version.split()[0]}"
    )

    baseline = time_runs(lambda: Flow.model_validate(document), args.runs)
    base = statistics.median(baseline)
    print(summary("baseline Flow.model_validate", baseline))
    print(
        summary(
            "validate_flow (warm parse caches)",
            time_runs(lambda: validate_flow(flow), args.runs),
            base,
        )
    )
    print(
        summary(
            "validate_flow (cold parse caches)",
            time_runs(lambda: validate_flow(flow), args.runs, clear_parse_caches),
            base,
        )
    )
    print(
        summary(
            "validate_document (shape + meaning)",
            time_runs(lambda: validate_document(document), args.runs),
            base,
        )
    )
    if args.profile:
        print(profile(flow))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
