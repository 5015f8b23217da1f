"""Rich Jupyter display: flows as SVG graphs, diagnostics and results as HTML tables and charts.

The pictures are checked as data, not as snapshots: every node is drawn with its category
colour, edges go left to right with their branch labels, hostile text stays text, and a
simulation's badges carry the funnel's counts.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

import mawb
from mawb import display, graph, nodes
from mawb.nodes.base import CATEGORY_COLORS, Category

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>'


def _parse(markup: str) -> ET.Element:
    """The markup must be well-formed XML (an escaping bug would break it)."""
    return ET.fromstring(markup)


def _nodes(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.get("data-node-id"): g for g in svg.iter(f"{SVG}g") if g.get("class") == "node"}


def _fill_of_bar(group: ET.Element) -> str:
    rects = group.findall(f"{SVG}rect")
    return rects[1].get("fill")  # the card, then the category bar


@pytest.mark.parametrize("template_id", mawb.template_ids())
def test_every_template_draws_every_node_in_its_category_colour(template_id: str) -> None:
    flow = mawb.load_template(template_id)
    drawn = _nodes(_parse(display.flow_svg(flow)))
    assert set(drawn) == {node.id for node in flow.nodes}
    for node in flow.nodes:
        expected = CATEGORY_COLORS[nodes.get(node.type).category]
        assert _fill_of_bar(drawn[node.id]) == expected
        assert drawn[node.id].get("data-type") == node.type


@pytest.mark.parametrize("template_id", mawb.template_ids())
def test_forward_edges_point_right_and_loops_are_dashed(template_id: str) -> None:
    flow = mawb.load_template(template_id)
    positions = display.layout(flow)
    loops = graph.back_edges(flow)
    for edge in flow.edges:
        if (edge.source, edge.target, edge.branch) not in loops:
            assert positions[edge.source][0] < positions[edge.target][0], edge
    svg = _parse(display.flow_svg(flow))
    edges = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == len(flow.edges)
    dashed = [g for g in edges if g.find(f"{SVG}path").get("stroke-dasharray")]
    assert len(dashed) == len(loops)


def test_branch_labels_are_drawn_and_true_sits_above_false() -> None:
    flow = mawb.load_template("win_back_v1")
    svg = _parse(display.flow_svg(flow))
    labels = {t.text for t in svg.iter(f"{SVG}text")}
    assert {"body", "done", "true", "false"} <= labels
    positions = display.layout(flow)
    assert positions["crm_reactivated"][1] < positions["mark_lost"][1]  # true above false
    added_false_first = mawb.Flow.new("f").add("s", "manual_trigger")
    added_false_first.add("c", "if_condition", condition="score > 1")
    added_false_first.add("no", "email_send").add("yes", "email_send")
    added_false_first.connect("s", "c").connect("c", "no", "false").connect("c", "yes", "true")
    positions = display.layout(added_false_first)
    assert positions["yes"][1] < positions["no"][1]  # handle order, not edge order


def test_unknown_types_are_grey_and_the_categories_have_the_canvas_colours() -> None:
    flow = mawb.Flow.new("f").add("start", "manual_trigger").add("odd", "no_such_type")
    flow.connect("start", "odd")
    drawn = _nodes(_parse(display.flow_svg(flow)))
    assert _fill_of_bar(drawn["odd"]) == display.UNKNOWN_COLOR == "#64748b"
    assert CATEGORY_COLORS == {
        Category.TRIGGER: "#16a34a",
        Category.ACTION: "#2563eb",
        Category.LOGIC: "#d97706",
        Category.INTEGRATION: "#7c3aed",
    }


def test_hostile_ids_labels_and_branches_stay_text() -> None:
    flow = mawb.Flow.new("x", name=HOSTILE, description=HOSTILE, params={"p": HOSTILE})
    flow.add('a"><script>', "manual_trigger", label=HOSTILE)
    flow.add("b", "if_condition", label="ok", condition=HOSTILE)
    flow.connect('a"><script>', "b").connect("b", "b2", branch=HOSTILE)
    html = flow._repr_html_()
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    svg = _parse(display.flow_svg(flow))
    assert set(_nodes(svg)) == {'a"><script>', "b"}
    report = flow.validate()
    table = report._repr_html_()
    assert "<script" not in table
    assert table.count("<tr>") == len(report.diagnostics) + 1  # header + one per diagnostic


def test_diagnostics_render_as_a_table_with_a_verdict() -> None:
    assert "✓ valid" in mawb.load_template("lead_welcome_v1").validate()._repr_html_()
    broken = mawb.Flow.new("broken").add("s", "manual_trigger").add("e", "email_send")
    broken.connect("s", "e").connect("e", "ghost")
    report = broken.validate()
    html = display.diagnostics_html(report)
    assert "✗ invalid" in html
    for diagnostic in report.diagnostics:
        assert f"<code>{diagnostic.code}</code>" in html
    assert re.search(r"missing_node.*ghost", html, re.S)


def test_simulation_and_sweep_render_tables_graphs_and_charts() -> None:
    flow = mawb.load_template("lead_welcome_v1")
    contacts = mawb.synthetic_contacts(60, seed=3)
    result = mawb.sweep(
        flow,
        contacts,
        param="engagement_threshold",
        values=[0.2, 0.8],
        days=1,
        max_step=timedelta(days=1),
        progress=False,
    )
    html = result._repr_html_()
    _parse(f"<div>{html}</div>")
    assert html.count("<svg") == 2 and "Conversions vs messages" in html
    for value in ("0.2", "0.8"):
        assert f">{value}</text>" in html
    simulation = result.results[0]
    page = simulation._repr_html_()
    _parse(f"<div>{page}</div>")
    entered = dict(zip(simulation.funnel["node_id"], simulation.funnel["entered"], strict=True))
    svg = _parse(display.flow_svg(flow, entered))
    for node_id, group in _nodes(svg).items():
        badge = [t.text for t in group.iter(f"{SVG}text")][-1]
        assert badge == f"{entered[node_id]:,}"
    assert entered["welcome"] > 0
    assert "Contacts entered per node" in page and "messages_sent" in page


def test_charts_scale_points_into_the_plot_area() -> None:
    svg = _parse(
        display.line_chart_svg([0, 50, 100], [1, 5, 10], ["a", "b", "c"], x_title="x", y_title="y")
    )
    circles = [(float(c.get("cx")), float(c.get("cy"))) for c in svg.iter(f"{SVG}circle")]
    assert [x for x, _ in circles] == sorted(x for x, _ in circles)
    assert circles[0][1] > circles[1][1] > circles[2][1]  # larger values sit higher
    width, height = float(svg.get("width")), float(svg.get("height"))
    assert all(0 < x < width and 0 < y < height for x, y in circles)
    bars = _parse(display.bar_chart_svg(["a", "b"], [10, 5], ["#111111", "#222222"]))
    lengths = [float(r.get("width")) for r in bars.iter(f"{SVG}rect")]
    assert lengths[0] == 2 * lengths[1]
