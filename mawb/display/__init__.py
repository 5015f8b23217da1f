"""Rich Jupyter display: flows as graphs, diagnostics, simulation and sweep results as tables.

Notebooks are where analysts read flows and results, so the objects of the notebook API render
themselves (`Flow`, `Report`, `SimulationResult` and `SweepResult` call in here from their
`_repr_html_`). Everything is plain HTML and inline SVG generated in Python: it needs no
JavaScript, so it renders the same in JupyterLab, VS Code, nbviewer and on GitHub, and a
committed notebook stays small. Interactive Plotly figures remain available on the results
(`result.figures`, `sweep.figure()`).

Every string that comes from a flow file or a contact (labels, ids, messages) may be hostile
and is escaped. Node colours are the category colours the canvas uses (`CATEGORY_COLORS`).
The package sits below the engine, so it reads results through duck typing, never imports.
"""

from __future__ import annotations

from mawb.display.charts import bar_chart_svg, line_chart_svg
from mawb.display.flow import flow_html, flow_svg, layout, node_color
from mawb.display.reports import diagnostics_html, simulation_html, sweep_html
from mawb.display.style import UNKNOWN_COLOR

__all__ = [
    "UNKNOWN_COLOR",
    "bar_chart_svg",
    "diagnostics_html",
    "flow_html",
    "flow_svg",
    "layout",
    "line_chart_svg",
    "node_color",
    "simulation_html",
    "sweep_html",
]
