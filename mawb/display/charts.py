"""Small SVG charts for results: horizontal bars (a funnel) and labelled points (a sweep).

They need no JavaScript, so they render wherever a notebook does (GitHub and nbviewer too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mawb.display.style import BORDER, MUTED, escaped, number
from mawb.nodes.base import shorten

if TYPE_CHECKING:
    from collections.abc import Sequence


def bar_chart_svg(
    labels: Sequence[str], values: Sequence[float], colors: Sequence[str], title: str = ""
) -> str:
    """Horizontal bars, one per label (the funnel): values written at the bar ends."""
    label_width, bar_width, row = 170, 300, 22
    top = 22 if title else 4
    peak = max([*values, 1])
    parts = [
        f'<text x="0" y="14" font-size="12" font-weight="600">{escaped(title)}</text>'
        if title
        else ""
    ]
    for at, (label, value, color) in enumerate(zip(labels, values, colors, strict=True)):
        y = top + at * row
        length = bar_width * value / peak
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end" font-size="11">'
            f"{escaped(shorten(label, 26))}</text>"
            f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="15" rx="2" '
            f'fill="{escaped(color)}"/><text x="{label_width + length + 4:.1f}" y="{y + 14}" '
            f'font-size="10" fill="{MUTED}">{escaped(number(value))}</text>'
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
        f'font-size="10">{escaped(label)}</text>'
        for at, ((px, py), label) in enumerate(zip(points, labels, strict=True))
    )
    axes = (
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" '
        f'stroke="{BORDER}"/><line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" '
        f'stroke="{BORDER}"/>'
        f'<text x="{left}" y="{height - bottom + 14}" font-size="10" fill="{MUTED}">'
        f"{escaped(number(x_low))}</text>"
        f'<text x="{width - right}" y="{height - bottom + 14}" text-anchor="end" font-size="10" '
        f'fill="{MUTED}">{escaped(number(x_high))}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="10" '
        f'fill="{MUTED}">{escaped(number(y_low))}</text>'
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="10" fill="{MUTED}">'
        f"{escaped(number(y_high))}</text>"
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" text-anchor="middle" '
        f'font-size="11">{escaped(x_title)}</text>'
        f'<text x="12" y="{(top + height - bottom) / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 12 {(top + height - bottom) / 2})">{escaped(y_title)}</text>'
        f'<text x="{left}" y="14" font-size="12" font-weight="600">{escaped(title)}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="mawb-line" width="{width}" '
        f'height="{height}" style="font-family:system-ui,sans-serif">{axes}'
        f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>'
        f"{marks}</svg>"
    )
