"""Shared look of the notebook displays: colours, escaping and number formatting.

Every string shown may come from a flow file or a contact and may be hostile, so all text goes
through `escaped` before it reaches HTML or SVG.
"""

from __future__ import annotations

from html import escape

MUTED, BORDER, INK = "#64748b", "#cbd5e1", "#0f172a"
UNKNOWN_COLOR = "#64748b"
"""Colour of a node whose type is not registered (the canvas uses the same grey)."""


def escaped(value: object) -> str:
    """Escape anything for HTML/SVG text and attribute values."""
    return escape(str(value), quote=True)


def number(value: object) -> str:
    """Thousands separators for counts, three significant digits for rates."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"
