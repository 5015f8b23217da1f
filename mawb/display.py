"""Rich Jupyter display: flows as graphs, diagnostics, simulation and sweep results as tables.

Notebooks are where analysts read flows and results, so the objects of the notebook API render
themselves (`Flow`, `Report`, `SimulationResult` and `SweepResult` call in here from their
`_repr_html_`). Everything is plain HTML and inline SVG generated in Python: it needs no
JavaScript, so it renders the same in JupyterLab, VS Code, nbviewer and on GitHub, and a
committed notebook stays small. Interactive Plotly figures remain available on the results
(`result.figures`, `sweep.figure()`).

Every string that comes from a flow file or a contact (labels, ids, messages) may be hostile
and is escaped. Node colours are the category colours the canvas uses (`CATEGORY_COLORS`).
This module sits below the engine, so it reads results through duck typing, never imports.
"""

from __future__ import annotations

from collections import defaultdict
from html import escape
from typing import TYPE_CHECKING, Any

from mawb import graph, nodes
from mawb.nodes.base import CATEGORY_COLORS, shorten

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd

    from mawb.model import Edge, Flow
    from mawb.validate import Report

UNKNOWN_COLOR = "#64748b"
"""Colour of a node whose type is not registered (the canvas uses the same grey)."""
NODE_WIDTH, NODE_HEIGHT = 176, 52
LAYER_GAP, ROW_GAP = 236, 80
MARGIN = 16
LOOP_LANE = 40.0
"""Room above and below the graph for loop back-edges."""
_MUTED, _BORDER, _INK = "#64748b", "#cbd5e1", "#0f172a"
_SEVERITY_COLORS = {"error": "#b91c1c", "warning": "#b45309"}
_TABLE_STYLE = "border-collapse:collapse;font-size:12px;margin:4px 0 10px 0"


def _text(value: object) -> str:
    """Escape anything for HTML/SVG text and attribute values."""
    return escape(str(value), quote=True)


# -- flow graph ---------------------------------------------------------------------------------
def node_color(node_type: str) -> str:
    """The canvas colour of a node type's category (grey for unknown types)."""
    try:
        return CATEGORY_COLORS[nodes.get(node_type).category]
    except KeyError:
        return UNKNOWN_COLOR


def _node_caption(node_type: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """(type label, one-line summary) as the canvas card shows them; tolerant of bad params."""
    try:
        kind = nodes.get(node_type)
    except KeyError:
        return f"unknown type {node_type}", ""
    try:
        summary = kind.summary(kind.parse(params))
    except Exception:  # invalid params: validation reports them, the picture still draws
        summary = ""
    return kind.label, summary if summary != kind.label else ""


def _acyclic_edges(flow: Flow, ids: list[str]) -> list[Edge]:
    """Edges between known nodes without loop back-edges and with any other cycle broken."""
    known = set(ids)
    loops = graph.back_edges(flow)
    out: dict[str, list[Edge]] = defaultdict(list)
    for edge in flow.edges:
        if (
            edge.source in known
            and edge.target in known
            and edge.source != edge.target
            and (edge.source, edge.target, edge.branch) not in loops
        ):
            out[edge.source].append(edge)
    kept: list[Edge] = []
    state: dict[str, int] = {}  # 1 = on the DFS stack, 2 = done
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, 0)]
        while stack:
            node_id, index = stack.pop()
            if index == len(out[node_id]):
                state[node_id] = 2
                continue
            stack.append((node_id, index + 1))
            edge = out[node_id][index]
            if state.get(edge.target) == 1:
                continue  # closes an (illegal) cycle: ignored for the picture only
            kept.append(edge)
            if edge.target not in state:
                state[edge.target] = 1
                stack.append((edge.target, 0))
    return kept


def layout(flow: Flow) -> dict[str, tuple[float, float]]:
    """Top-left corner of every node: layers left to right by longest path from a trigger,
    rows ordered by their parents' rows (branch order kept, so `true` sits above `false`)."""
    ids = list(dict.fromkeys(node.id for node in flow.nodes))
    edges = _acyclic_edges(flow, ids)
    layer = dict.fromkeys(ids, 0)
    for _ in ids:  # longest path by relaxation; edges are acyclic, so len(ids) rounds suffice
        changed = False
        for edge in edges:
            if layer[edge.target] < layer[edge.source] + 1:
                layer[edge.target] = layer[edge.source] + 1
                changed = True
        if not changed:
            break
    rows: dict[int, list[str]] = defaultdict(list)
    for node_id in ids:
        rows[layer[node_id]].append(node_id)
    rank: dict[str, float] = {}
    for index in sorted(rows):
        rank.update(_order_layer(flow, rows[index], edges, rank))
    tallest = max((len(row) for row in rows.values()), default=0)
    positions = {}
    for index, row in rows.items():
        top = (tallest - len(row)) * ROW_GAP / 2
        for at, node_id in enumerate(sorted(row, key=lambda n: rank[n])):
            positions[node_id] = (MARGIN + index * LAYER_GAP, MARGIN + top + at * ROW_GAP)
    return positions


def _declared_branches(flow: Flow, node_id: str) -> list[str]:
    """The branches a node's type declares, in handle order (true before false, ...)."""
    node = flow.node(node_id)
    try:
        kind = nodes.get(node.type)
        return list(kind.branches(kind.parse(node.params)))
    except Exception:  # unknown type or bad params: edge order will do
        return []


def _branch_order(flow: Flow, edges: list[Edge]) -> dict[str, list[str | None]]:
    """Per source, its branches in handle order, then any others in edge order."""
    order: dict[str, list[str | None]] = {}
    for edge in edges:
        if edge.source not in order:
            order[edge.source] = list(_declared_branches(flow, edge.source))
        if edge.branch not in order[edge.source]:
            order[edge.source].append(edge.branch)
    return order


def _order_layer(
    flow: Flow, row: list[str], edges: list[Edge], rank: dict[str, float]
) -> dict[str, float]:
    """Rank each node of a layer by the mean rank of its parents plus its branch offset."""
    branch_order = _branch_order(flow, edges)
    keys = {}
    for at, node_id in enumerate(row):
        parents = [
            rank[e.source] + branch_order[e.source].index(e.branch) / 10
            for e in edges
            if e.target == node_id and e.source in rank
        ]
        keys[node_id] = (sum(parents) / len(parents) if parents else float(at), at)
    ordered = sorted(row, key=lambda n: keys[n])
    return {node_id: float(at) for at, node_id in enumerate(ordered)}


def _edge_svg(
    edge: Edge, positions: Mapping[str, tuple[float, float]], loop_lane: float | None
) -> str:
    """A curve from the source's right side to the target's left side; a loop back-edge
    (`loop_lane` set) runs dashed along a lane above or below the whole graph instead."""
    (sx, sy), (tx, ty) = positions[edge.source], positions[edge.target]
    dash = ""
    if loop_lane is not None:
        above = loop_lane < min(sy, ty)
        x1, x2 = sx + NODE_WIDTH / 2, tx + NODE_WIDTH / 2
        y1, y2 = (sy, ty) if above else (sy + NODE_HEIGHT, ty + NODE_HEIGHT)
        path = (
            f"M{x1:.0f},{y1:.0f} C{x1:.0f},{loop_lane:.0f} {x2:.0f},{loop_lane:.0f} "
            f"{x2:.0f},{y2:.0f}"
        )
        mid_x, mid_y = (x1 + x2) / 2, loop_lane + (ROW_GAP if above else -ROW_GAP) * 0.2
        dash = ' stroke-dasharray="5,4"'
    else:
        x1, y1, x2, y2 = sx + NODE_WIDTH, sy + NODE_HEIGHT / 2, tx, ty + NODE_HEIGHT / 2
        bend = max((x2 - x1) / 2, 30)
        path = (
            f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} {x2 - bend:.0f},{y2:.0f} "
            f"{x2:.0f},{y2:.0f}"
        )
        mid_x, mid_y = (x1 + x2) / 2, (y1 + y2) / 2
    parts = [
        f'<path d="{path}" fill="none" stroke="#94a3b8" stroke-width="1.5"{dash} '
        'marker-end="url(#mawb-arrow)"/>'
    ]
    if edge.branch:
        label = _text(shorten(edge.branch, 16))
        width = 7 * len(shorten(edge.branch, 16)) + 8
        parts.append(
            f'<rect x="{mid_x - width / 2:.0f}" y="{mid_y - 8:.0f}" width="{width}" height="16" '
            f'rx="4" fill="#f1f5f9" stroke="{_BORDER}"/>'
            f'<text x="{mid_x:.0f}" y="{mid_y + 4:.0f}" text-anchor="middle" font-size="10" '
            f'fill="#334155">{label}</text>'
        )
    return f'<g class="edge" data-branch="{_text(edge.branch or "")}">{"".join(parts)}</g>'


def _node_svg(flow: Flow, node_id: str, x: float, y: float, count: int | None) -> str:
    node = flow.node(node_id)
    color = node_color(node.type)
    type_label, summary = _node_caption(node.type, node.params)
    title = shorten(node.label or type_label, 26)
    subtitle = shorten(summary or f"{type_label} · {node.id}", 30)
    badge = ""
    if count is not None:
        text = f"{count:,}"
        width = 7 * len(text) + 10
        badge = (
            f'<rect x="{x + NODE_WIDTH - width + 6}" y="{y - 8}" width="{width}" '
            f'height="16" rx="8" fill="{_INK}"/><text x="{x + NODE_WIDTH - width / 2 + 6}" '
            f'y="{y + 4}" text-anchor="middle" font-size="10" fill="#fff">{text}</text>'
        )
    return (
        f'<g class="node" data-node-id="{_text(node.id)}" data-type="{_text(node.type)}">'
        f"<title>{_text(node.id)} ({_text(node.type)})</title>"
        f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="8" fill="#fff" '
        f'stroke="{_BORDER}"/>'
        f'<rect x="{x}" y="{y}" width="6" height="{NODE_HEIGHT}" rx="3" fill="{color}"/>'
        f'<text x="{x + 14}" y="{y + 21}" font-size="12" font-weight="600" fill="{_INK}">'
        f"{_text(title)}</text>"
        f'<text x="{x + 14}" y="{y + 38}" font-size="10" fill="{_MUTED}">{_text(subtitle)}</text>'
        f"{badge}</g>"
    )


def flow_svg(flow: Flow, counts: Mapping[str, int] | None = None) -> str:
    """The flow as an SVG graph; `counts` (e.g. contacts entered per node) become badges.

    Loop back-edges run along a lane above the graph (when they sit in its upper half) or
    below it, so they never cross a node."""
    loops = graph.back_edges(flow)
    room = LOOP_LANE if loops else 0.0
    positions = {node_id: (x, y + room) for node_id, (x, y) in layout(flow).items()}
    width = max((x for x, _ in positions.values()), default=0) + NODE_WIDTH + MARGIN
    bottom = max((y for _, y in positions.values()), default=0) + NODE_HEIGHT
    middle = (room + MARGIN + bottom) / 2
    edges = []
    for edge in flow.edges:
        if edge.source not in positions or edge.target not in positions:
            continue
        lane = None
        if (edge.source, edge.target, edge.branch) in loops or edge.source == edge.target:
            upper = (positions[edge.source][1] + positions[edge.target][1]) / 2 < middle - 1
            lane = MARGIN + room / 2 if upper else bottom + room / 2
        edges.append(_edge_svg(edge, positions, lane))
    shapes = [
        _node_svg(flow, node_id, x, y, None if counts is None else counts.get(node_id, 0))
        for node_id, (x, y) in positions.items()
    ]
    height = bottom + room + MARGIN
    return (
        f'<div style="overflow-x:auto"><svg xmlns="http://www.w3.org/2000/svg" class="mawb-flow" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'style="font-family:system-ui,sans-serif">'
        '<defs><marker id="mawb-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#94a3b8"/></marker></defs>'
        f"{''.join(edges)}{''.join(shapes)}</svg></div>"
    )


def _legend() -> str:
    items = "".join(
        f'<span style="margin-right:12px"><span style="display:inline-block;width:10px;'
        f'height:10px;border-radius:2px;background:{color};margin-right:4px"></span>'
        f"{category.value}</span>"
        for category, color in CATEGORY_COLORS.items()
    )
    return f'<div style="font-size:11px;color:{_MUTED};margin:2px 0 6px 0">{items}</div>'


def flow_html(flow: Flow) -> str:
    """A flow's header (name, id, version, params) above its graph and the colour legend."""
    params = ", ".join(f"{_text(k)}={_text(v)}" for k, v in flow.params.items()) or "none"
    description = f"<div>{_text(flow.description)}</div>" if flow.description else ""
    return (
        '<div class="mawb-flow-view">'
        f"<div><b>{_text(flow.name or flow.id)}</b> "
        f'<span style="color:{_MUTED}">{_text(flow.id)} v{flow.version} · '
        f"{len(flow.nodes)} nodes · params: {params}</span></div>{description}"
        f"{_legend()}{flow_svg(flow)}</div>"
    )


# -- tables -------------------------------------------------------------------------------------
def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(
        f'<th style="text-align:left;padding:3px 8px;border-bottom:1px solid '
        f'{_BORDER}">{_text(c)}</th>'
        for c in columns
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td style="padding:3px 8px">{cell}</td>' for cell in row.values())
        + "</tr>"
        for row in rows
    )
    return (
        f'<table style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def diagnostics_html(report: Report) -> str:
    """Validation diagnostics as a table, errors first (the report's own order)."""
    if not report.diagnostics:
        return '<div style="color:#15803d"><b>✓ valid</b>: no diagnostics</div>'
    errors = len(report.errors)
    warnings = len(report.diagnostics) - errors
    verdict = (
        "<b style='color:#15803d'>✓ valid</b>"
        if report.valid
        else "<b style='color:#b91c1c'>✗ invalid</b>"
    )
    rows = [
        {
            "severity": f'<span style="color:{_SEVERITY_COLORS.get(d.severity.value, _INK)};'
            f'font-weight:600">{_text(d.severity.value)}</span>',
            "code": f"<code>{_text(d.code)}</code>",
            "node": _text(d.node_id or "(flow)"),
            "field": _text(d.field or ""),
            "message": _text(d.message),
        }
        for d in report.diagnostics
    ]
    return (
        f"<div>{verdict}: {errors} error(s), {warnings} warning(s)</div>"
        f"{_table(rows, ['severity', 'code', 'node', 'field', 'message'])}"
    )


def _frame_html(frame: pd.DataFrame) -> str:
    rows = [
        {column: _text(_format(value)) for column, value in record.items()}
        for record in frame.to_dict("records")
    ]
    return _table(rows, [str(c) for c in frame.columns])


def _format(value: object) -> str:
    """Thousands separators for counts, three significant digits for rates."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"


# -- charts -------------------------------------------------------------------------------------
def bar_chart_svg(
    labels: Sequence[str], values: Sequence[float], colors: Sequence[str], title: str = ""
) -> str:
    """Horizontal bars, one per label (the funnel): values written at the bar ends."""
    label_width, bar_width, row = 170, 300, 22
    top = 22 if title else 4
    peak = max([*values, 1])
    parts = [
        f'<text x="0" y="14" font-size="12" font-weight="600">{_text(title)}</text>'
        if title
        else ""
    ]
    for at, (label, value, color) in enumerate(zip(labels, values, colors, strict=True)):
        y = top + at * row
        length = bar_width * value / peak
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" font-size="11">'
            f"{_text(shorten(label, 26))}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="15" rx="2" '
            f'fill="{_text(color)}"/><text x="{label_width + length + 4:.1f}" y="{y + 14}" '
            f'font-size="10" fill="{_MUTED}">{_text(_format(value))}</text>'
        )
    height = top + len(labels) * row + 4
    width = label_width + bar_width + 60
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="mawb-bars" width="{width}" '
        f'height="{height}" style="font-family:system-ui,sans-serif">{"".join(parts)}</svg>'
    )


def line_chart_svg(
    xs: Sequence[float],
    ys: Sequence[float],
    labels: Sequence[str],
    *,
    x_title: str,
    y_title: str,
    color: str = "#2563eb",
    title: str = "",
) -> str:
    """Points joined in the given order, each labelled (a sweep: one point per value)."""
    width, height, left, bottom, top, right = 420, 270, 52, 36, 44, 34
    x_low, x_high = float(min(xs, default=0)), float(max(xs, default=1))
    y_low, y_high = float(min([*ys, 0])), float(max([*ys, 1]))
    x_span, y_span = (x_high - x_low) or 1, (y_high - y_low) or 1

    def place(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_low) / x_span * (width - left - right),
            height - bottom - (y - y_low) / y_span * (height - bottom - top),
        )

    points = [place(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]
    line = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
    # Labels alternate above and below their points, so neighbours close together stay legible.
    marks = "".join(
        f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{color}"/>'
        f'<text x="{px:.1f}" y="{py - 8 if at % 2 == 0 else py + 16:.1f}" text-anchor="middle" '
        f'font-size="10">{_text(label)}</text>'
        for at, ((px, py), label) in enumerate(zip(points, labels, strict=True))
    )
    axes = (
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        f'stroke="{_BORDER}"/><line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" '
        f'stroke="{_BORDER}"/>'
        f'<text x="{left}" y="{height - bottom + 14}" font-size="10" fill="{_MUTED}">'
        f"{_text(_format(x_low))}</text>"
        f'<text x="{width - right}" y="{height - bottom + 14}" text-anchor="end" font-size="10" '
        f'fill="{_MUTED}">{_text(_format(x_high))}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="10" '
        f'fill="{_MUTED}">{_text(_format(y_low))}</text>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10" fill="{_MUTED}">'
        f"{_text(_format(y_high))}</text>"
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle" '
        f'font-size="11">{_text(x_title)}</text>'
        f'<text x="12" y="{(top + height - bottom) / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 12 {(top + height - bottom) / 2})">{_text(y_title)}</text>'
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{_text(title)}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="mawb-line" width="{width}" '
        f'height="{height}" style="font-family:system-ui,sans-serif">{axes}'
        f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>'
        f"{marks}</svg>"
    )


# -- results ------------------------------------------------------------------------------------
_KPIS = (
    "enrolled",
    "messages_sent",
    "opens",
    "clicks",
    "conversions",
    "unsubscribes",
    "converted_contacts",
)


def simulation_html(result: Any) -> str:
    """A SimulationResult: KPIs, the flow with contacts entered per node, funnel and channels."""
    flow, funnel, summary = result.flow, result.funnel, result.summary
    kpis = [{k: _text(_format(summary.get(k, 0))) for k in _KPIS}]
    params = ", ".join(f"{_text(k)}={_text(v)}" for k, v in result.params.items()) or "none"
    counts = dict(zip(funnel["node_id"], (int(v) for v in funnel["entered"]), strict=True))
    by_name = {category.value: color for category, color in CATEGORY_COLORS.items()}
    colors = [by_name.get(str(c), UNKNOWN_COLOR) for c in funnel["category"]]
    bars = bar_chart_svg(
        list(funnel["label"]),
        [int(v) for v in funnel["entered"]],
        colors,
        title="Contacts entered per node",
    )
    channels = {k: v for k, v in result.messages_per_channel.items() if v}
    channel_rows = [{k: _text(_format(v)) for k, v in channels.items()}] if channels else []
    return (
        f"<div class='mawb-simulation'><div><b>Simulation of {_text(flow.name or flow.id)}</b> "
        f'<span style="color:{_MUTED}">{_text(flow.id)} v{flow.version} · seed {result.seed} · '
        f"params: {params}</span></div>"
        f"{_table(kpis, list(_KPIS))}{flow_svg(flow, counts)}<div>{bars}</div>"
        f"{_frame_html(funnel.drop(columns=['category']))}"
        + (
            f"<div>Messages sent per channel</div>{_table(channel_rows, list(channels))}"
            if channel_rows
            else ""
        )
        + "</div>"
    )


def sweep_html(result: Any) -> str:
    """A SweepResult: the comparison table and conversions against messages sent."""
    table = result.table
    labels = [f"{value}" for value in table["value"]]
    conversions = line_chart_svg(
        list(table["messages_sent"]),
        list(table["converted_contacts"]),
        labels,
        x_title="messages sent",
        y_title="converted contacts",
        title=f"Conversions vs messages ({result.param})",
    )
    unsubscribes = line_chart_svg(
        [float(v) for v in table["value"]] if _numeric(table["value"]) else list(range(len(table))),
        list(table["unsubscribes"]),
        labels,
        x_title=result.param,
        y_title="unsubscribes",
        color="#dc2626",
        title=f"Unsubscribes by {result.param}",
    )
    columns = [
        c
        for c in (
            "value",
            "enrolled",
            "messages_sent",
            "opens",
            "clicks",
            "unsubscribes",
            "converted_contacts",
            "conversion_rate",
        )
        if c in table.columns
    ]
    return (
        f"<div class='mawb-sweep'><div><b>Sweep of {_text(result.param)}</b> "
        f'<span style="color:{_MUTED}">{len(table)} variants</span></div>'
        f"{_frame_html(table[columns])}<div>{conversions}{unsubscribes}</div></div>"
    )


def _numeric(values: Any) -> bool:
    try:
        return all(not isinstance(v, bool | str) and float(v) == float(v) for v in values)
    except (TypeError, ValueError):
        return False
