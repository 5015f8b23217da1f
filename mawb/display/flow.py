"""Flows as SVG graphs: a layered layout, left to right like the canvas.

Layers follow the longest path from a trigger, rows follow their parents (branches in handle
order, so `true` sits above `false`), loop back-edges run dashed along a lane outside the graph.
Nodes carry the canvas's category colours, labels and one-line summaries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mawb import nodes
from mawb.display.style import BORDER, INK, MUTED, UNKNOWN_COLOR, escaped
from mawb.flowplan import plan
from mawb.layout import layered_positions
from mawb.nodes.base import CATEGORY_COLORS, shorten

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mawb.model import Edge, Flow

NODE_WIDTH, NODE_HEIGHT = 176, 52
LAYER_GAP, ROW_GAP = 236, 80
MARGIN = 16
LOOP_LANE = 40.0
"""Room above and below the graph for loop back-edges."""


def node_color(node_type: str) -> str:
    """The canvas colour of a node type's category (grey for unknown types)."""
    try:
        return CATEGORY_COLORS[nodes.get(node_type).category]
    except KeyError:
        return UNKNOWN_COLOR


def _node_caption(flow: Flow, node_id: str) -> tuple[str, str]:
    """(type label, one-line summary) as the canvas card shows them; tolerant of bad params."""
    planned = plan(flow)
    kind = planned.types.get(node_id)
    if kind is None:
        return f"unknown type {flow.node(node_id).type}", ""
    params = planned.params.get(node_id)
    # Invalid params: validation reports them, the picture still draws.
    summary = kind.summary(params) if params is not None else ""
    return kind.label, summary if summary != kind.label else ""


def layout(flow: Flow) -> dict[str, tuple[float, float]]:
    """Top-left corner of every node: the canvas's layered layout at picture spacing."""
    return {
        node_id: (MARGIN + x, MARGIN + y)
        for node_id, (x, y) in layered_positions(flow, LAYER_GAP, ROW_GAP).items()
    }


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
        label = escaped(shorten(edge.branch, 16))
        width = 7 * len(shorten(edge.branch, 16)) + 8
        parts.append(
            f'<rect x="{mid_x - width / 2:.0f}" y="{mid_y - 8:.0f}" width="{width}" height="16" '
            f'rx="4" fill="#f1f5f9" stroke="{BORDER}"/>'
            f'<text x="{mid_x:.0f}" y="{mid_y + 4:.0f}" text-anchor="middle" font-size="10" '
            f'fill="#334155">{label}</text>'
        )
    return f'<g class="edge" data-branch="{escaped(edge.branch or "")}">{"".join(parts)}</g>'


def _node_svg(flow: Flow, node_id: str, x: float, y: float, count: int | None) -> str:
    node = flow.node(node_id)
    color = node_color(node.type)
    type_label, summary = _node_caption(flow, node_id)
    title = shorten(node.label or type_label, 26)
    subtitle = shorten(summary or f"{type_label} · {node.id}", 30)
    badge = ""
    if count is not None:
        text = f"{count:,}"
        width = 7 * len(text) + 10
        badge = (
            f'<rect x="{x + NODE_WIDTH - width + 6}" y="{y - 8}" width="{width}" '
            f'height="16" rx="8" fill="{INK}"/><text x="{x + NODE_WIDTH - width / 2 + 6}" '
            f'y="{y + 4}" text-anchor="middle" font-size="10" fill="#fff">{text}</text>'
        )
    return (
        f'<g class="node" data-node-id="{escaped(node.id)}" data-type="{escaped(node.type)}">'
        f"<title>{escaped(node.id)} ({escaped(node.type)})</title>"
        f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="8" fill="#fff" '
        f'stroke="{BORDER}"/>'
        f'<rect x="{x}" y="{y}" width="6" height="{NODE_HEIGHT}" rx="3" fill="{color}"/>'
        f'<text x="{x + 14}" y="{y + 21}" font-size="12" font-weight="600" fill="{INK}">'
        f"{escaped(title)}</text>"
        f'<text x="{x + 14}" y="{y + 38}" font-size="10" fill="{MUTED}">{escaped(subtitle)}</text>'
        f"{badge}</g>"
    )


def flow_svg(flow: Flow, counts: Mapping[str, int] | None = None) -> str:
    """The flow as an SVG graph; `counts` (e.g. contacts entered per node) become badges.

    Loop back-edges run along a lane above the graph (when they sit in its upper half) or
    below it, so they never cross a node."""
    loops = plan(flow).back_edges
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
    return f'<div style="font-size:11px;color:{MUTED};margin:2px 0 6px 0">{items}</div>'


def flow_html(flow: Flow) -> str:
    """A flow's header (name, id, version, params) above its graph and the colour legend."""
    params = ", ".join(f"{escaped(k)}={escaped(v)}" for k, v in flow.params.items()) or "none"
    description = f"<div>{escaped(flow.description)}</div>" if flow.description else ""
    return (
        '<div class="mawb-flow-view">'
        f"<div><b>{escaped(flow.name or flow.id)}</b> "
        f'<span style="color:{MUTED}">{escaped(flow.id)} v{flow.version} · '
        f"{len(flow.nodes)} nodes · params: {params}</span></div>{description}"
        f"{_legend()}{flow_svg(flow)}</div>"
    )
